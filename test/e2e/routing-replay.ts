/**
 * Replays a real capture of a call routed by the dialplan (test/fixtures/esl/routing/)
 * against the adapter, over TCP, as FreeSWITCH would:
 *  - the capture's own CHANNEL_DATA is the reply to `connect` (plus the channel variables a test
 *    adds, as if the gate had `set` them);
 *  - every command gets FreeSWITCH's reply (mod_event_socket.c parse_command()): `event`,
 *    `myevents`, `linger`, `filter`, `sendmsg`, `api` (uuid_getvar / user_data from the test's
 *    tables, answered like mod_commands: `_undef_`, `-ERR no reply`), `exit`;
 *  - once the adapter sends the same call command the capture's program sent (`transfer` for a
 *    hand-back, `bridge` in bridge mode), every event FreeSWITCH sent after that command is sent
 *    again — the captured headers, in the captured order, serialised in the format the adapter
 *    subscribed to (modesl asks for JSON) and passed through the adapter's subscription exactly
 *    as event_handler() does (event list, then the filters: a listener with filters gets an
 *    event only when a positive filter matches and no negative one does).
 * What the adapter sent is recorded for the test to judge.
 */
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { records } from '../../bench/frames.js';
import { eslFixture } from '../fixtures/index.js';
import {
  CommandParser,
  FrameParser,
  apiResponse,
  commandReply,
  disconnectNotice,
  eventFrame,
  parsePlainEvent,
  plainHeaderLine,
  serializeJson,
  serializePlain,
  type Header,
  type ParsedCommand,
} from '@freeswitch-zammad-cti/sim/esl-wire';
import { passesFilters } from '@freeswitch-zammad-cti/sim/event-filter';
import { commandLines } from './command-lines.js';
import { MYEVENTS_LIST } from '@freeswitch-zammad-cti/sim/transcript-constants';

interface CapturedEvent {
  name: string;
  headers: Header[];
  map: Record<string, string>;
  body?: string;
}

interface Capture {
  /** The reply to `connect`: CHANNEL_DATA and the reply headers, as on the wire (URL-encoded values). */
  channelData: Header[];
  /** The app command that hands the call over (`transfer` or `bridge`) and the events after it. */
  handover: { app: string; events: CapturedEvent[] };
  uuid: string;
}

/** Reads a routing capture: its channel data, and what FreeSWITCH sent after the program's transfer/bridge. */
export function readCapture(name: string): Capture {
  const parser = new FrameParser();
  let channelData: Header[] | undefined;
  let handoverApp: string | undefined;
  const after: CapturedEvent[] = [];
  // `name` is a capture of routing/, or `folder/name` for one of another folder of captures.
  for (const rec of records(eslFixture(name.includes('/') ? `${name}.txt` : `routing/${name}.txt`))) {
    if (rec.dir === 'APP->FS') {
      const text = rec.data.toString('utf8');
      const app = /execute-app-name: (transfer|bridge)\b/.exec(text)?.[1];
      if (app && handoverApp === undefined) handoverApp = app;
      continue;
    }
    if (rec.dir !== 'FS->APP') continue;
    for (const frame of parser.push(rec.data)) {
      if (channelData === undefined && frame.headers['Event-Name'] === 'CHANNEL_DATA') {
        channelData = [...frame.headerList];
        continue;
      }
      if (handoverApp === undefined || frame.headers['Content-Type'] !== 'text/event-plain') continue;
      const ev = parsePlainEvent(frame.body);
      after.push({
        name: ev.map['Event-Name'] ?? '',
        headers: ev.headers,
        map: ev.map,
        ...(ev.body !== undefined ? { body: ev.body } : {}),
      });
    }
  }
  if (!channelData || !handoverApp)
    throw new Error(`${name}: no channel data or no transfer/bridge command in the capture`);
  const uuid = channelData.find(([k]) => k === 'Unique-ID')?.[1] ?? '';
  return { channelData, handover: { app: handoverApp, events: after }, uuid };
}

/** switch_event_get_header(): header names are case-insensitive. */
function lookup(e: CapturedEvent, header: string): string | undefined {
  return e.map[header] ?? Object.entries(e.map).find(([k]) => k.toLowerCase() === header.toLowerCase())?.[1];
}

export interface Leg {
  dialed_user?: string;
  dialed_domain?: string;
  cc_agent?: string;
}

export interface ReplayOptions {
  /** Channel variables added to the channel data, as if the gate had `set` them. */
  variables?: Record<string, string>;
  /** B-legs by Other-Leg-Destination-Number: their variables, for `api uuid_getvar`. */
  legs?: Record<string, Leg>;
  /** `user@domain` → variables of the directory user, for `api user_data`. */
  directory?: Record<string, Record<string, string>>;
  timeoutMs?: number;
  /**
   * The call's Unique-ID in this replay (default: a fresh one, so that replays of one capture are distinct calls);
   * 'capture' keeps the captured one.
   */
  uuid?: string;
}

export interface ReplayResult {
  uuid: string;
  commands: ParsedCommand[];
  /** Names of the events the adapter was sent (after its subscription and filters). */
  eventsSent: string[];
  /** Events the switch had for the channel but the subscription kept back. */
  eventsHeldBack: number;
  closed: Promise<void>;
}

/** The capture with its caller channel's uuid replaced everywhere it appears. */
function withUuid(capture: Capture, uuid: string): Capture {
  const swap = (v: string) => v.split(capture.uuid).join(uuid);
  const headers = (list: Header[]): Header[] => list.map(([k, v]) => [k, swap(v)]);
  return {
    uuid,
    channelData: headers(capture.channelData),
    handover: {
      app: capture.handover.app,
      events: capture.handover.events.map((e) => ({
        ...e,
        headers: headers(e.headers),
        map: Object.fromEntries(Object.entries(e.map).map(([k, v]) => [k, swap(v)])),
      })),
    },
  };
}

export async function replayRouting(name: string, eslPort: number, opts: ReplayOptions = {}): Promise<ReplayResult> {
  const captured = readCapture(name);
  const capture = opts.uuid === 'capture' ? captured : withUuid(captured, opts.uuid ?? randomUUID());
  const socket = net.connect({ port: eslPort, host: '127.0.0.1' });
  socket.setNoDelay(true);
  const parser = new CommandParser();
  const commands: ParsedCommand[] = [];
  const eventsSent: string[] = [];
  let heldBack = 0;
  let format: 'plain' | 'json' = 'plain';
  const subscribed = new Set<string>();
  const filters: Header[] = [];
  // B-leg uuids of the capture → the leg's number, for uuid_getvar.
  const legByUuid = new Map<string, string>();
  for (const e of capture.handover.events) {
    const uuid = e.map['Other-Leg-Unique-ID'];
    if (uuid) legByUuid.set(uuid, e.map['Other-Leg-Destination-Number'] ?? '');
  }

  const write = (text: string) => {
    if (!socket.destroyed) socket.write(text);
  };
  // The gate's variables go where FreeSWITCH puts channel variables: before the reply headers.
  const replyAt = capture.channelData.findIndex(([k]) => k === 'Content-Type');
  const added = Object.entries(opts.variables ?? {}).flatMap(([k, v]) =>
    v === '' ? [] : [plainHeaderLine(`variable_${k}`, v)],
  );
  const wire = capture.channelData.map(([k, v]) => `${k}: ${v}\n`);
  const connectReply = `${[...wire.slice(0, replyAt), ...added, ...wire.slice(replyAt)].join('')}\n`;

  const serialize = (e: CapturedEvent) =>
    format === 'json'
      ? eventFrame(serializeJson(e.headers, e.body), 'json')
      : eventFrame(serializePlain(e.headers, e.body), 'plain');
  const deliver = (e: CapturedEvent) => {
    if (!subscribed.has(e.name) || !passesFilters(filters, (h) => lookup(e, h))) {
      heldBack++;
      return;
    }
    eventsSent.push(
      e.name === 'CHANNEL_EXECUTE' || e.name === 'CHANNEL_EXECUTE_COMPLETE'
        ? `${e.name}[${e.map['Application'] ?? ''}]`
        : e.name,
    );
    write(serialize(e));
  };
  const playHandover = async () => {
    // The capture's own pace, ten times faster (at most 100 ms between two events): the adapter's
    // api look-ups interleave with the events as on the real switch.
    let last: number | undefined;
    for (const e of capture.handover.events) {
      const at = Number(e.map['Event-Date-Timestamp'] ?? '0') / 1000;
      const gap = last === undefined ? 0 : Math.min(100, Math.max(0, (at - last) / 10));
      last = at;
      await new Promise((r) => (gap > 0 ? setTimeout(r, gap) : setImmediate(r)));
      deliver(e);
    }
    write(
      `Content-Type: text/disconnect-notice\nControlled-Session-UUID: ${capture.uuid}\nContent-Disposition: ` +
        'linger\nChannel-Name: x\nLinger-Time: -1\nContent-Length: 0\n\n',
    );
  };

  const api = (line: string): string => {
    const [cmd, ...args] = line.trim().split(/\s+/);
    if (cmd === 'uuid_getvar') {
      const number = legByUuid.get(args[0] ?? '');
      if (number === undefined) return '-ERR No such channel!\n';
      const value = opts.legs?.[number]?.[args[1] as keyof Leg];
      return value ?? '_undef_';
    }
    if (cmd === 'user_data' && args[1] === 'var') return opts.directory?.[args[0] ?? '']?.[args[2] ?? ''] ?? '';
    return `-ERR ${cmd} Command not found!\n`;
  };

  const handle = (c: ParsedCommand) => {
    commands.push(c);
    switch (c.name) {
      case 'connect':
        write(connectReply);
        return;
      case 'event': {
        const words = c.args.split(/\s+/);
        if (words[0] === 'json') format = 'json';
        for (const w of words.slice(1)) subscribed.add(w);
        write(commandReply(`+OK event listener enabled ${format}`));
        return;
      }
      case 'myevents':
        if (/json/i.test(c.args)) format = 'json';
        for (const n of MYEVENTS_LIST) subscribed.add(n);
        write(commandReply('+OK Events Enabled'));
        return;
      case 'linger':
        write(commandReply('+OK will linger'));
        return;
      case 'filter': {
        const [h, ...v] = c.args.split(' ');
        filters.push([h ?? '', v.join(' ')]);
        write(commandReply(`+OK filter added. [${h}]=[${v.join(' ')}]`));
        return;
      }
      case 'sendmsg':
        write(commandReply('+OK'));
        if (c.headers['call-command'] === 'execute' && c.headers['execute-app-name'] === capture.handover.app)
          void playHandover();
        return;
      case 'api':
        write(apiResponse(api(c.args)));
        return;
      case 'exit':
        write(commandReply('+OK bye'));
        write(disconnectNotice(capture.uuid));
        socket.end();
        return;
      default:
        write(commandReply('-ERR command not found'));
    }
  };
  socket.on('data', (d: Buffer) => {
    for (const c of parser.push(d)) handle(c);
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(
          `${name}: the adapter did not close the connection within ${opts.timeoutMs ?? 10_000} ms; commands: ` +
            `${commandLines(commands).join(' | ')}`,
        ),
      );
    }, opts.timeoutMs ?? 10_000);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  write(''); // FreeSWITCH waits for the program's `connect`
  return {
    uuid: capture.uuid,
    commands,
    eventsSent,
    get eventsHeldBack() {
      return heldBack;
    },
    closed,
  };
}
