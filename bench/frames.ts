/**
 * The bytes a call puts on the wire, taken once from a real FreeSWITCH 1.10.12 capture
 * (test/fixtures/esl/) and pre-encoded, so that the load generator only copies buffers
 * and writes the call's uuid into them.
 *
 * The capture is a real SIP inbound call (answered-normal-sip.txt: mod_sofia caller leg, the
 * largest events of the set, 4–12 KB each). The adapter subscribes with `myevents json`, which
 * switches FreeSWITCH's listener to JSON for every later event; so the captured events are
 * re-serialised exactly as FreeSWITCH's
 * switch_event_serialize_json does (packages/sim/src/esl-wire.ts), same headers, same order.
 * The connect reply (CHANNEL_DATA) is always plain and is used as captured, byte for byte.
 */
import { existsSync, readFileSync } from 'node:fs';
import {
  FrameParser,
  apiResponse,
  commandReply,
  disconnectNotice,
  eventFrame,
  lingerNotice,
  parsePlainEvent,
  serializeJson,
  serializePlain,
  type EventFormat,
} from '@freeswitch-zammad-cti/sim/esl-wire';
import { eslFixture } from '../test/fixtures/index.js';

export const DEFAULT_TRANSCRIPT = 'answered-normal-sip.txt';

/** A frame with the places where the channel's uuid goes. All uuids are 36 ASCII bytes. */
export interface Template {
  readonly bytes: Buffer;
  readonly uuidAt: readonly number[];
  readonly isEvent: boolean;
}

/** One step of a call: what FreeSWITCH writes in answer to one command (or on its own). */
export interface Step {
  readonly frames: readonly Template[];
  readonly events: number;
  readonly bytes: number;
}

export interface CallTemplates {
  source: string;
  /** The channel's Unique-ID in the capture (replaced by each call's own). */
  captureUuid: string;
  /** The dial string the captured call bridged to (the bench's DEFAULT_BRIDGE). */
  bridge: string;
  connect: Step;
  /** Replies to the opening commands. */
  eventReply: Step;
  myeventsReply: Step;
  /** `linger` reply, then CHANNEL_PARK (the socket app parks the channel). */
  lingerReply: Step;
  /** `sendmsg execute bridge`: +OK, CHANNEL_EXECUTE[bridge], CHANNEL_ANSWER, CHANNEL_BRIDGE (somebody picked up). */
  bridged: Step;
  /** The far end hangs up: CHANNEL_UNBRIDGE, CHANNEL_EXECUTE_COMPLETE[bridge]. */
  unbridged: Step;
  /** `sendmsg hangup`: +OK, CHANNEL_HANGUP … CHANNEL_HANGUP_COMPLETE, linger notice. */
  hungUp: Step;
  /** `exit`: +OK bye, disconnect notice (then FreeSWITCH closes). */
  bye: Step;
  /** Reply to any other sendmsg (e.g. `set`). */
  ok: Step;
  /** Reply to `api …` (user_data look-ups): a directory name. */
  api: Step;
  /** Reply to an unknown command. */
  unknown: Step;
  /** Events one full call carries (what a reader must see). */
  eventsPerCall: number;
  /** Bytes FreeSWITCH sends in one full call. */
  bytesPerCall: number;
}

interface Rec {
  dir: string;
  data: Buffer;
}

/** The records of a transcript file (format in the transcripts' README). */
export function records(file: string): Rec[] {
  const data = readFileSync(file);
  const out: Rec[] = [];
  const re = /===== (\d+) (\S+) \+(\S+) (\S+) (\d+) bytes =====\n/g;
  const text = data.toString('latin1'); // 1 byte = 1 char: offsets stay byte offsets
  let pos = 0;
  for (;;) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) break;
    const n = parseInt(m[5] as string, 10);
    const s = m.index + m[0].length;
    out.push({ dir: m[4] as string, data: data.subarray(s, s + n) });
    pos = s + n + 1;
  }
  return out;
}

export function template(text: string, uuid: string, isEvent: boolean): Template {
  const bytes = Buffer.from(text, 'utf8');
  const needle = Buffer.from(uuid, 'latin1');
  const uuidAt: number[] = [];
  for (let at = bytes.indexOf(needle); at >= 0; at = bytes.indexOf(needle, at + needle.length)) uuidAt.push(at);
  return { bytes, uuidAt, isEvent };
}

export function step(frames: Template[]): Step {
  return {
    frames,
    events: frames.filter((f) => f.isEvent).length,
    bytes: frames.reduce((n, f) => n + f.bytes.length, 0),
  };
}

/** Loads the capture and builds every step of a call. `format` is what the adapter's subscription asks for. */
export function loadTemplates(file = DEFAULT_TRANSCRIPT, format: EventFormat = 'json'): CallTemplates {
  // A bare name is one of the repository's captures; anything with a slash is the user's own file.
  const path = file.includes('/') ? file : eslFixture(file);
  if (!existsSync(path)) throw new Error(`transcript not found: ${path}`);
  const parser = new FrameParser();
  let connectHeaders: [string, string][] | undefined;
  const events: { name: string; app: string; headers: [string, string][]; body?: string }[] = [];
  for (const r of records(path)) {
    if (r.dir !== 'FS->APP') continue;
    for (const f of parser.push(r.data)) {
      if (f.headers['Event-Name'] === 'CHANNEL_DATA' && connectHeaders === undefined) {
        connectHeaders = f.headerList.map(([k, v]) => [k, v] as [string, string]);
        continue;
      }
      const ct = f.headers['Content-Type'];
      if (ct === 'text/event-plain') {
        const ev = parsePlainEvent(f.body);
        events.push({
          name: ev.map['Event-Name'] ?? '',
          app: ev.map['Application'] ?? '',
          headers: ev.headers.map(([k, v]) => [k, v]),
          ...(ev.body !== undefined ? { body: ev.body } : {}),
        });
      } else if (ct === 'text/event-json') {
        const o = JSON.parse(f.body) as Record<string, string | string[]>;
        const headers: [string, string][] = [];
        let body: string | undefined;
        for (const [k, v] of Object.entries(o)) {
          if (k === '_body') body = String(v);
          else headers.push([k, Array.isArray(v) ? `ARRAY::${v.join('|:')}` : v]);
        }
        events.push({
          name: o['Event-Name'] as string,
          app: (o['Application'] as string | undefined) ?? '',
          headers,
          ...(body !== undefined ? { body } : {}),
        });
      }
    }
  }
  if (!connectHeaders) throw new Error(`${path}: no connect reply (CHANNEL_DATA) in the capture`);
  const decoded = new Map(parsePlainEvent(connectHeaders.map(([k, v]) => `${k}: ${v}`).join('\n')).headers);
  const uuid = decoded.get('Unique-ID') ?? '';
  if (uuid.length !== 36) throw new Error(`${path}: the channel's Unique-ID is not a 36-character uuid`);
  const channelName = decoded.get('Channel-Name') ?? '';

  const pick = (name: string, app?: string): (typeof events)[number] => {
    const i = events.findIndex((e) => e.name === name && (app === undefined || e.app === app));
    if (i < 0) throw new Error(`${path}: no ${name}${app ? `[${app}]` : ''} event in the capture`);
    return events.splice(i, 1)[0] as (typeof events)[number];
  };
  const ev = (e: (typeof events)[number]): Template => {
    const ser = format === 'json' ? serializeJson(e.headers, e.body) : serializePlain(e.headers, e.body);
    return template(eventFrame(ser, format), uuid, true);
  };
  const reply = (text: string): Template => template(commandReply(text), uuid, false);
  const bridgeExec = events.find((e) => e.name === 'CHANNEL_EXECUTE' && e.app === 'bridge');
  const bridge = bridgeExec?.headers.find(([k]) => k === 'Application-Data')?.[1] ?? 'user/1000';

  // The connect reply as captured (its headers are already URL-encoded on the wire).
  const connectText = `${connectHeaders.map(([k, v]) => `${k}: ${v}\n`).join('')}\n`;
  const park = pick('CHANNEL_PARK');
  const bridgedFrames = [
    reply('+OK'),
    ev(pick('CHANNEL_EXECUTE', 'bridge')),
    ev(pick('CHANNEL_ANSWER')),
    ev(pick('CHANNEL_BRIDGE')),
  ];
  const unbridgedFrames = [ev(pick('CHANNEL_UNBRIDGE')), ev(pick('CHANNEL_EXECUTE_COMPLETE', 'bridge'))];
  const endFrames = [
    reply('+OK'),
    ev(pick('CHANNEL_HANGUP')),
    ev(pick('CHANNEL_UNPARK')),
    ev(pick('CHANNEL_EXECUTE_COMPLETE', 'socket')),
    ev(pick('CHANNEL_STATE')),
    ev(pick('CHANNEL_STATE')),
    ev(pick('CHANNEL_HANGUP_COMPLETE')),
    template(lingerNotice(uuid, channelName, -1), uuid, false),
  ];
  const t: Omit<CallTemplates, 'eventsPerCall' | 'bytesPerCall'> = {
    source: path,
    captureUuid: uuid,
    bridge,
    connect: step([template(connectText, uuid, false)]),
    eventReply: step([reply(`+OK event listener enabled ${format}`)]),
    myeventsReply: step([reply('+OK Events Enabled')]),
    lingerReply: step([reply('+OK will linger'), ev(park)]),
    bridged: step(bridgedFrames),
    unbridged: step(unbridgedFrames),
    hungUp: step(endFrames),
    bye: step([reply('+OK bye'), template(disconnectNotice(uuid), uuid, false)]),
    ok: step([reply('+OK')]),
    api: step([template(apiResponse('Agent Smith'), uuid, false)]),
    unknown: step([reply('-ERR command not found')]),
  };
  const full = [t.connect, t.eventReply, t.myeventsReply, t.lingerReply, t.bridged, t.unbridged, t.hungUp, t.bye];
  return {
    ...t,
    eventsPerCall: full.reduce((n, s) => n + s.events, 0),
    bytesPerCall: full.reduce((n, s) => n + s.bytes, 0),
  };
}

/** A step's bytes for one call: one buffer, the call's uuid written in. */
export function render(s: Step, uuid: Buffer): Buffer {
  const out = Buffer.allocUnsafe(s.bytes);
  let off = 0;
  for (const f of s.frames) {
    f.bytes.copy(out, off);
    for (const at of f.uuidAt) uuid.copy(out, off + at);
    off += f.bytes.length;
  }
  return out;
}
