/**
 * FreeSWITCH's INBOUND event socket (mod_event_socket, port 8021) for a FakeSwitch: the adapter
 * connects here after a restart to ask which calls still exist and to watch them to their end.
 *
 * Wire behaviour from mod_event_socket.c (FreeSWITCH 1.10, listener_run() and parse_command()):
 *  - on connect: "Content-Type: auth/request\n\n", sent unprompted;
 *  - `auth <pw>` → "Content-Type: command/reply\nReply-Text: +OK accepted\n\n", or
 *    "-ERR invalid", then the listener stops: disconnect notice ("Disconnected, goodbye. …") and close;
 *  - any other command before auth: "-ERR command not found" … (only auth/userauth/exit are parsed);
 *  - `event [plain|json|xml] NAME …` (additive) → "+OK event listener enabled <format>",
 *    "-ERR no keywords supplied" without a known name;
 *  - `filter <Header> <value>` → "+OK filter added. [<Header>]=[<value>]"; an event passes when any
 *    filter's header equals its value (no filter: every subscribed event);
 *  - `api uuid_exists <uuid>` → "Content-Type: api/response\nContent-Length: N\n\ntrue|false"
 *    (mod_commands writes "true"/"false" without a newline); unknown api → "-ERR <cmd> Command not found!\n";
 *  - `exit` → "+OK bye", then the disconnect notice and close.
 * modesl's inbound Connection sends `auth`, then at once `event json BACKGROUND_JOB
 * CHANNEL_EXECUTE_COMPLETE` (its reqEvents) before handing the connection over.
 *
 * A wedged switch (or a proxy in front of one), by `behaviour`, read when a connection arrives:
 * 'mute' sends auth/request and accepts the password, then answers no command; 'silent' accepts
 * the TCP connection and never sends anything. Commands are recorded either way.
 *
 * Events are those of the FakeSwitch the double is attached to: every CallerChannel event goes
 * to every listener (FakeSwitch.fire), this one included, so calls placed with
 * `sw.placeCall(...)` can be watched here after the adapter's outbound socket is gone.
 */
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import {
  CommandParser,
  apiResponse,
  commandReply,
  disconnectNotice,
  eventFrame,
  serializeJson,
  serializePlain,
  type EventFormat,
} from '@freeswitch-zammad-cti/sim/esl-wire';
import type { FakeSwitch, FiredEvent } from '@freeswitch-zammad-cti/sim/switch';

export interface InboundCommand {
  line: string;
  at: number;
}

interface EventSink {
  onEvent(ev: FiredEvent): void;
}

/** What the switch keeps per channel, as far as uuid_exists needs it. */
interface ChannelLike {
  up: boolean;
}

class InboundListener implements EventSink {
  private readonly parser = new CommandParser();
  private authed = false;
  private running = true;
  private format: EventFormat = 'plain';
  private readonly events = new Set<string>();
  private readonly filters: [string, string][] = [];
  readonly commands: InboundCommand[] = [];
  readonly eventsSent: string[] = [];

  constructor(
    private readonly owner: InboundSwitch,
    readonly socket: net.Socket,
    private readonly behaviour: InboundBehaviour,
  ) {
    socket.setNoDelay(true);
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('close', () => this.stop());
    if (behaviour !== 'silent') socket.write('Content-Type: auth/request\n\n');
  }

  onEvent(ev: FiredEvent): void {
    if (!this.running || !this.authed) return;
    if (!this.events.has('ALL') && !this.events.has(ev.name)) return;
    if (this.filters.length > 0 && !this.filters.some(([h, v]) => ev.get(h)?.toLowerCase() === v.toLowerCase())) return;
    const serialized =
      this.format === 'json' ? serializeJson(ev.headers(), ev.body) : serializePlain(ev.headers(), ev.body);
    this.socket.write(eventFrame(serialized, this.format === 'json' ? 'json' : 'plain'));
    this.eventsSent.push(ev.name);
  }

  private onData(d: Buffer): void {
    for (const cmd of this.parser.push(d)) {
      if (!this.running) return;
      this.commands.push({ line: cmd.line, at: Date.now() });
      if (this.behaviour === 'silent' || (this.behaviour === 'mute' && this.authed)) continue;
      this.command(cmd.line);
    }
  }

  private reply(text: string): void {
    this.socket.write(commandReply(text));
  }

  private command(line: string): void {
    const lc = line.toLowerCase();
    if (lc.startsWith('exit') || lc.startsWith('...')) {
      this.reply('+OK bye');
      return this.finish();
    }
    if (!this.authed) {
      if (lc.startsWith('auth ')) {
        if (line.slice(5).replace(/\r$/, '') === this.owner.password) {
          this.authed = true;
          this.reply('+OK accepted');
        } else {
          this.reply('-ERR invalid');
          this.finish();
        }
        return;
      }
      return this.reply('-ERR command not found');
    }
    if (lc.startsWith('filter ')) {
      const [header = '', ...rest] = line.slice(7).trim().split(' ');
      if (rest.length === 0) return this.reply('-ERR invalid syntax');
      const value = rest.join(' ');
      this.filters.push([header, value]);
      return this.reply(`+OK filter added. [${header}]=[${value}]`);
    }
    if (lc.startsWith('api ')) {
      const [name = '', ...args] = line.slice(4).trim().split(' ');
      if (name === 'uuid_exists') {
        const channels = (this.owner.sw as unknown as { channels: Map<string, ChannelLike> }).channels;
        this.socket.write(apiResponse(channels.get(args[0] ?? '')?.up ? 'true' : 'false'));
      } else {
        this.socket.write(apiResponse(`-ERR ${name} Command not found!\n`));
      }
      return;
    }
    if (lc.startsWith('event')) {
      let keys = 0;
      line
        .slice(5)
        .trim()
        .split(' ')
        .filter((w) => w !== '')
        .forEach((w, i) => {
          const lw = w.toLowerCase();
          if (i === 0 && (lw === 'plain' || lw === 'json' || lw === 'xml')) {
            this.format = lw;
            return;
          }
          if (/^[A-Z_]+$/.test(w.toUpperCase())) {
            keys++;
            this.events.add(w.toUpperCase());
          }
        });
      return this.reply(keys === 0 ? '-ERR no keywords supplied' : `+OK event listener enabled ${this.format}`);
    }
    this.reply('-ERR command not found');
  }

  /** listener_run() "done:": the disconnect notice, then close. */
  private finish(): void {
    if (!this.running) return;
    this.socket.write(disconnectNotice(null));
    this.socket.end();
    this.stop();
  }

  stop(): void {
    this.running = false;
    this.owner.detach(this);
  }
}

/** 'normal': FreeSWITCH; 'mute': logs in, then answers nothing; 'silent': never asks for the password. */
export type InboundBehaviour = 'normal' | 'mute' | 'silent';

export class InboundSwitch {
  private readonly server: net.Server;
  private readonly open = new Set<InboundListener>();
  /** Every listener that ever connected, in order (for assertions). */
  readonly sessions: { commands: InboundCommand[]; eventsSent: string[] }[] = [];
  port = 0;
  /** For the connections that arrive from now on. */
  behaviour: InboundBehaviour = 'normal';

  constructor(
    readonly sw: FakeSwitch,
    readonly password = 'ClueCon',
  ) {
    this.server = net.createServer((socket) => {
      const l = new InboundListener(this, socket, this.behaviour);
      this.open.add(l);
      this.sessions.push(l);
      (this.sw.listeners as unknown as Set<EventSink>).add(l);
    });
  }

  async start(port = 0): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
    return this.port;
  }

  /** @internal */
  detach(l: InboundListener): void {
    this.open.delete(l);
    (this.sw.listeners as unknown as Set<EventSink>).delete(l);
  }

  /** Connections open now. */
  get connections(): number {
    return this.open.size;
  }

  async stop(): Promise<void> {
    for (const l of [...this.open]) {
      l.socket.destroy();
      l.stop();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
