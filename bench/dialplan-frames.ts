/**
 * The bytes of a dialplan-mode call, taken once from a real capture of a call the dialplan
 * routed (routing/handback-group-ring.txt: hand-back by `transfer`, a ring group, 2003 answers)
 * and pre-encoded like frames.ts does for bridge mode. The shop's dialplan runs `setApps` `set`
 * applications per call (a FusionPBX inbound route runs 30–60 `set`/`export`): their
 * CHANNEL_EXECUTE / CHANNEL_EXECUTE_COMPLETE pairs are made from the capture's own `set` pair.
 *
 * What reaches the adapter after the hand-back is what FreeSWITCH's event_handler() lets through
 * its subscription: the `myevents` list, then its `filter`s (passesFilters, the same loop as
 * mod_event_socket.c). The result is computed once per distinct filter list and cached, so the
 * generator still only copies buffers.
 */
import {
  FrameParser,
  apiResponse,
  commandReply,
  disconnectNotice,
  eventFrame,
  lingerNotice,
  parsePlainEvent,
  serializeJson,
  type Header,
} from '@freeswitch-zammad-cti/sim/esl-wire';
import { passesFilters } from '@freeswitch-zammad-cti/sim/event-filter';
import { MYEVENTS_LIST } from '@freeswitch-zammad-cti/sim/transcript-constants';
import { records, step, template, type Step, type Template } from './frames.js';
import { eslFixture } from '../test/fixtures/index.js';

export const DIALPLAN_TRANSCRIPT = 'routing/handback-group-ring.txt';

export interface DialplanTemplates {
  source: string;
  captureUuid: string;
  setApps: number;
  connect: Step;
  eventReply: Step;
  myeventsReply: Step;
  /** `linger` reply, then CHANNEL_PARK. */
  lingerReply: Step;
  ok: Step;
  bye: Step;
  unknown: Step;
  filterReply(line: string): Step;
  /** `sendmsg execute transfer`: +OK, then every event of the routed call that passes `filters`. */
  routed(filters: readonly Header[]): Step;
  /** An `api` look-up, answered as the capture's switch would (uuid_getvar / user_data). */
  api(line: string): Step;
  /** Events and bytes the switch has for one call before any filter. */
  eventsPerCall: number;
  bytesPerCall: number;
}

interface Ev {
  name: string;
  headers: Header[];
  map: Record<string, string>;
  body?: string;
}

/** The `myevents` list (mod_event_socket.c): the adapter subscribes with `myevents json`. */
const SUBSCRIBED = new Set(MYEVENTS_LIST);

/** The directory of the capture's switch, for the adapter's look-ups of who answered. */
const API_ANSWERS: [RegExp, string][] = [
  [/^api uuid_getvar \S+ dialed_user$/, '2003'],
  [/^api uuid_getvar \S+ dialed_domain$/, 'test.local'],
  [/^api uuid_getvar \S+ \S+$/, '_undef_'],
  [/^api user_data \S+ var effective_caller_id_name$/, 'Bob Agent'],
];

export function loadDialplanTemplates(setApps = 40): DialplanTemplates {
  const path = eslFixture(DIALPLAN_TRANSCRIPT);
  const parser = new FrameParser();
  let connectHeaders: Header[] | undefined;
  let handedOver = false;
  let park: Ev | undefined;
  const routed: Ev[] = [];
  for (const r of records(path)) {
    if (r.dir === 'APP->FS' && r.data.includes('execute-app-name: transfer')) handedOver = true;
    if (r.dir !== 'FS->APP') continue;
    for (const f of parser.push(r.data)) {
      if (connectHeaders === undefined && f.headers['Event-Name'] === 'CHANNEL_DATA') {
        connectHeaders = f.headerList;
        continue;
      }
      if (f.headers['Content-Type'] !== 'text/event-plain') continue;
      const p = parsePlainEvent(f.body);
      const ev: Ev = {
        name: p.map['Event-Name'] ?? '',
        headers: p.headers,
        map: p.map,
        ...(p.body !== undefined ? { body: p.body } : {}),
      };
      if (ev.name === 'CHANNEL_PARK' && park === undefined) park = ev;
      if (handedOver) routed.push(ev);
    }
  }
  if (!connectHeaders || !park) throw new Error(`${path}: no connect reply or no CHANNEL_PARK in the capture`);
  const uuid = parsePlainEvent(connectHeaders.map(([k, v]) => `${k}: ${v}`).join('\n')).map['Unique-ID'] ?? '';

  // The dialplan's `set` apps: copies of the capture's first set pair, each with its own data,
  // where the routing extension starts (the first CHANNEL_EXECUTE after the hand-back's states).
  const setAt = routed.findIndex((e) => e.name === 'CHANNEL_EXECUTE' && e.map['Application'] === 'set');
  const pair = [
    routed[setAt],
    routed.find((e, i) => i > setAt && e.name === 'CHANNEL_EXECUTE_COMPLETE' && e.map['Application'] === 'set'),
  ];
  if (setAt < 0 || !pair[0] || !pair[1]) throw new Error(`${path}: no set application after the hand-back`);
  const present = routed.filter((e) => e.name === 'CHANNEL_EXECUTE' && e.map['Application'] === 'set').length;
  const extra: Ev[] = [];
  for (let i = present; i < setApps; i++) {
    for (const e of pair as Ev[]) {
      const headers = e.headers.map(
        ([k, v]): Header => [k, k === 'Application-Data' ? `cti_bench_var_${i}=value ${i} of the shop's dialplan` : v],
      );
      extra.push({ ...e, headers, map: Object.fromEntries(headers) });
    }
  }
  const events = [...routed.slice(0, setAt), ...extra, ...routed.slice(setAt)];

  // The gate set zammad_handled: the adapter hands back with the transfer alone.
  const replyAt = connectHeaders.findIndex(([k]) => k === 'Content-Type');
  const lines = connectHeaders.map(([k, v]) => `${k}: ${v}\n`);
  const connectText = `${[
    ...lines.slice(0, replyAt),
    'variable_zammad_handled: true\n',
    'variable_zammad_direction: in\n',
    ...lines.slice(replyAt),
  ].join('')}\n`;

  const ev = (e: Ev): Template => template(eventFrame(serializeJson(e.headers, e.body), 'json'), uuid, true);
  const reply = (text: string): Template => template(commandReply(text), uuid, false);
  const rendered = events.map((e) => ({ e, t: ev(e) }));
  const routedCache = new Map<string, Step>();
  const filterCache = new Map<string, Step>();
  const apiCache = new Map<string, Step>();
  const channelName =
    parsePlainEvent(connectHeaders.map(([k, v]) => `${k}: ${v}`).join('\n')).map['Channel-Name'] ?? '';
  const end = template(lingerNotice(uuid, channelName, -1), uuid, false);
  const all = step([...rendered.map((r) => r.t), end]);
  return {
    source: path,
    captureUuid: uuid,
    setApps,
    connect: step([template(connectText, uuid, false)]),
    eventReply: step([reply('+OK event listener enabled json')]),
    myeventsReply: step([reply('+OK Events Enabled')]),
    lingerReply: step([reply('+OK will linger'), ev(park)]),
    ok: step([reply('+OK')]),
    bye: step([reply('+OK bye'), template(disconnectNotice(uuid), uuid, false)]),
    unknown: step([reply('-ERR command not found')]),
    filterReply(line) {
      let s = filterCache.get(line);
      if (!s) {
        const [h, ...v] = line.slice('filter '.length).split(' ');
        s = step([reply(`+OK filter added. [${h}]=[${v.join(' ')}]`)]);
        filterCache.set(line, s);
      }
      return s;
    },
    routed(filters) {
      const key = filters.map(([h, v]) => `${h}\0${v}`).join('\n');
      let s = routedCache.get(key);
      if (!s) {
        const through = rendered
          .filter((r) => SUBSCRIBED.has(r.e.name) && passesFilters(filters, (h) => r.e.map[h]))
          .map((r) => r.t);
        s = step([reply('+OK'), ...through, end]);
        routedCache.set(key, s);
      }
      return s;
    },
    api(line) {
      let s = apiCache.get(line);
      if (!s) {
        const answer = API_ANSWERS.find(([re]) => re.test(line))?.[1] ?? '';
        s = step([template(apiResponse(answer), uuid, false)]);
        if (apiCache.size < 1000) apiCache.set(line, s);
      }
      return s;
    },
    eventsPerCall: all.events + 1,
    bytesPerCall: all.bytes,
  };
}
