/** The API commands the simulated switch answers (`api`, `bgapi`); anything else: "-ERR … Command not found!". */
import type { CallScript } from './call-script.js';
import type { CallerChannel } from './caller-channel.js';
import type { FakeSwitch } from './fake-switch.js';
import { normalizeCause } from './transcript-constants.js';

/** A few API commands; anything else answers like switch_api_execute() for an unknown command. */
export function apiCommand(sw: FakeSwitch, script: CallScript, cmdline: string): { text: string; after?: () => void } {
  const sp = cmdline.indexOf(' ');
  const name = (sp < 0 ? cmdline : cmdline.slice(0, sp)).toLowerCase();
  const arg = sp < 0 ? '' : cmdline.slice(sp + 1).trim();
  const args = arg.split(' ').filter((a) => a !== '');
  switch (name) {
    case 'uptime':
      return { text: `${sw.uptimeSeconds()}\n` };
    case 'hostname':
      return { text: sw.hostname };
    case 'version':
      return { text: 'FreeSWITCH Version 1.10.12-release~64bit ( 64bit)\n' };
    case 'status':
      return {
        text:
          'UP 0 years, 0 days, 0 hours, 0 minutes, ' +
          sw.uptimeSeconds() +
          ' seconds, 0 milliseconds, 0 microseconds\n' +
          'FreeSWITCH (Version 1.10.12-release  64bit) is ready\n' +
          sw.channels.size +
          ' session(s) since startup\n' +
          sw.channels.size +
          ' session(s) - peak 1, last 5min 1 \n' +
          '0 session(s) per Sec out of max 30, peak 1, last 5min 1 \n' +
          '1000 session(s) max\nmin idle cpu 0.00/99.00\nCurrent Stack Size/Max 240K/8192K\n',
      };
    case 'echo':
    case 'eval':
      return { text: arg };
    case 'global_getvar':
      return { text: '' };
    case 'user_data': {
      // user_data <user@domain> <var|param|attr> <name>  [MC]: nothing written for an unknown user or variable
      const v = directoryVar(script, args[0] ?? '', args[2] ?? '');
      return { text: v ?? '' };
    }
    case 'user_exists': {
      // user_exists id <user> <domain>
      const who = `${args[1] ?? ''}@${args[2] ?? ''}`;
      return { text: who in (script.directory ?? {}) ? 'true' : 'false' };
    }
    case 'uuid_exists':
      return { text: findChannel(sw, args[0])?.up ? 'true' : 'false' };
    case 'uuid_getvar': {
      // uuid_getvar <uuid> <var>: the caller channel or a live B-leg; "_undef_" for an unset variable [MC]
      if (args.length < 2) return { text: '-USAGE: <uuid> <var>\n' };
      const ch = findChannel(sw, args[0]);
      if (ch) return { text: ch.getVar(args[1] ?? '') ?? '_undef_' };
      const leg = sw.legs.get(args[0] ?? '');
      if (leg) return { text: leg.vars[args[1] ?? ''] ?? '_undef_' };
      return { text: '-ERR No such channel!\n' };
    }
    case 'uuid_transfer': {
      // uuid_transfer <uuid> [-bleg|-both] <dest> [<dialplan>] [<context>]  [MC transfer_function]
      if (args.length < 2 || args.length > 5)
        return { text: '-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n' };
      const ch = findChannel(sw, args[0]);
      if (!ch?.up) return { text: '-ERR No such channel!\n' };
      const rest = (args[1] ?? '').startsWith('-') ? args.slice(2) : args.slice(1);
      const dest = rest[0] ?? '';
      const context = rest[2];
      return { text: '+OK\n', after: () => ch.transferFromOutside(dest, context, 'uuid') };
    }
    case 'uuid_setvar': {
      const ch = findChannel(sw, args[0]);
      if (!ch) return { text: '-ERR No such channel!\n' };
      ch.setVar(args[1] ?? '', args.length > 2 ? args.slice(2).join(' ') : null);
      return { text: '+OK\n' };
    }
    case 'uuid_kill': {
      const ch = findChannel(sw, args[0]);
      if (!ch?.up) return { text: '-ERR No such channel!\n' };
      const cause = normalizeCause(args[1] ?? 'NORMAL_CLEARING');
      return { text: '+OK\n', after: () => ch.externalHangup(cause) };
    }
    default:
      return { text: `-ERR ${name} Command not found!\n` };
  }
}

/** A directory user's variable: a string entry is its effective_caller_id_name. */
export function directoryVar(script: CallScript, who: string, name: string): string | undefined {
  const e = script.directory?.[who];
  if (e === undefined) return undefined;
  if (typeof e === 'string') return name.toLowerCase() === 'effective_caller_id_name' ? e : undefined;
  return e[name];
}

function findChannel(sw: FakeSwitch, uuid: string | undefined): CallerChannel | undefined {
  if (uuid === undefined) return undefined;
  return sw.channels.get(uuid);
}
