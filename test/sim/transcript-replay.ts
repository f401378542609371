/**
 * Helpers of the switch double's tests: parse a capture (the frames FreeSWITCH sent, the app's writes),
 * replay a capture's app against the double, compare frame sequences and headers, and a minimal
 * scripted app (connect, myevents, linger, then commands in lock-step).
 * Used by switch.test.ts (the 20 captures) and routing.test.ts (the routing/ captures).
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { FrameParser, type FsFrame, encodeCommand, parsePlainEvent } from '@freeswitch-zammad-cti/sim/esl-wire';
import { FakeSwitch, type CallScript, type SwitchCall } from '@freeswitch-zammad-cti/sim/switch';
import { records } from '../../bench/frames.js';

// ---------------------------------------------------------------------------
// Transcript parsing (the record format: test/fixtures/esl/README.md)
// ---------------------------------------------------------------------------

export interface Labeled {
  label: string;
  /** decoded event headers (events only) */
  ev?: Record<string, string>;
  frame: FsFrame;
}

export const RACY = new Set(['CHANNEL_PARK', 'notice:linger']);

export function labelFrame(f: FsFrame): Labeled {
  const ct = f.headers['Content-Type'];
  if (f.headers['Event-Name'] !== undefined) return { label: 'connect-reply', frame: f };
  if (ct === 'command/reply') return { label: `reply:${f.headers['Reply-Text'] ?? ''}`, frame: f };
  if (ct === 'api/response') return { label: 'api-response', frame: f };
  if (ct === 'text/disconnect-notice') return { label: `notice:${f.headers['Content-Disposition'] ?? ''}`, frame: f };
  let ev: Record<string, string> = {};
  if (ct === 'text/event-plain') ev = parsePlainEvent(f.body).map;
  else if (ct === 'text/event-json') {
    const o = JSON.parse(f.body) as Record<string, string | string[]>;
    for (const [k, v] of Object.entries(o)) ev[k] = Array.isArray(v) ? `ARRAY::${v.join('|:')}` : v;
  } else return { label: `unknown:${String(ct)}`, frame: f };
  const name = ev['Event-Name'] ?? '?';
  let label = name;
  if (name === 'CHANNEL_EXECUTE' || name === 'CHANNEL_EXECUTE_COMPLETE') label += `[${ev.Application ?? ''}]`;
  if (name === 'CHANNEL_HANGUP' || name === 'CHANNEL_HANGUP_COMPLETE') label += `[${ev['Hangup-Cause'] ?? ''}]`;
  return { label, ev, frame: f };
}

export function transcriptFrames(file: string): Labeled[] {
  const p = new FrameParser();
  const out: Labeled[] = [];
  for (const r of records(file)) if (r.dir === 'FS->APP') for (const f of p.push(r.data)) out.push(labelFrame(f));
  return out;
}

/** The app's writes, each with the number of complete non-racy FS frames seen before it. */
export function appPlan(file: string): Array<{ data: Buffer; afterFrames: number }> {
  const p = new FrameParser();
  let count = 0;
  const plan: Array<{ data: Buffer; afterFrames: number }> = [];
  for (const r of records(file)) {
    if (r.dir === 'FS->APP') {
      for (const f of p.push(r.data)) if (!RACY.has(labelFrame(f).label)) count++;
    } else if (r.dir === 'APP->FS') {
      plan.push({ data: r.data, afterFrames: count });
    }
  }
  return plan;
}

// ---------------------------------------------------------------------------
// Scripted app + double
// ---------------------------------------------------------------------------

export interface RunResult {
  frames: Labeled[];
  call: SwitchCall;
  reads: number;
}

export async function withServer<T>(fn: (port: number, conn: Promise<net.Socket>) => Promise<T>): Promise<T> {
  const server = net.createServer();
  const conn = new Promise<net.Socket>((r) => server.once('connection', r));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    return await fn(port, conn);
  } finally {
    server.close();
  }
}

export async function replay(
  file: string,
  script: CallScript,
  hooks: { onFrame?: (l: Labeled, call: SwitchCall) => void } = {},
  sw: FakeSwitch = new FakeSwitch(),
): Promise<RunResult> {
  const plan = appPlan(file);
  return withServer(async (port, connP) => {
    const call = await sw.placeCall({ host: '127.0.0.1', port }, script);
    const sock = await connP;
    const frames: Labeled[] = [];
    const parser = new FrameParser();
    let nonRacy = 0;
    let next = 0;
    let reads = 0;
    const pump = (): void => {
      while (next < plan.length && (plan[next]?.afterFrames ?? 0) <= nonRacy) {
        const w = plan[next++];
        if (w && !sock.destroyed) sock.write(w.data);
      }
    };
    const done = new Promise<void>((resolve) => {
      sock.on('data', (d: Buffer) => {
        reads++;
        for (const f of parser.push(d)) {
          const l = labelFrame(f);
          frames.push(l);
          if (!RACY.has(l.label)) nonRacy++;
          hooks.onFrame?.(l, call);
        }
        pump();
      });
      sock.on('end', () => sock.end());
      sock.on('close', () => resolve());
      sock.on('error', () => resolve());
    });
    pump();
    const timeout = setTimeout(() => sock.destroy(), 8000);
    await done;
    await call.closed;
    clearTimeout(timeout);
    return { frames, call, reads };
  });
}

export function labels(fs: Labeled[]): string[] {
  return fs.map((f) => f.label);
}

/** Tolerant comparison: equal without the racy frames; then PARK/linger presence and bounds. */
export function assertTolerant(got: Labeled[], want: Labeled[]): void {
  const g = labels(got);
  const w = labels(want);
  assert.deepEqual(
    g.filter((l) => !RACY.has(l)),
    w.filter((l) => !RACY.has(l)),
    'frame sequence (without racy PARK/linger)',
  );
  for (const racy of RACY) {
    const wc = w.filter((l) => l === racy).length;
    const gc = g.filter((l) => l === racy).length;
    if (racy === 'CHANNEL_PARK') {
      assert.ok(gc <= 1 && (wc === 0 || gc === 1), 'CHANNEL_PARK at most once (and present if the capture has it)');
      if (gc === 1) {
        const pi = g.indexOf('CHANNEL_PARK');
        const firstChan = g.findIndex((l) => l.startsWith('CHANNEL_') && l !== 'CHANNEL_PARK');
        assert.ok(
          pi > g.indexOf('connect-reply') && (firstChan < 0 || pi < firstChan),
          'PARK after the connect reply, before any other channel event',
        );
      }
    } else {
      assert.equal(gc, wc, 'linger notice count');
      if (gc === 1) {
        const li = g.indexOf(racy);
        const bye = g.indexOf('reply:+OK bye');
        assert.ok(bye < 0 || li < bye, 'linger notice before the exit reply');
        assert.ok(li > g.indexOf('reply:+OK will linger'), 'linger notice after linger was enabled');
      }
    }
  }
}

/** Headers whose values must match event by event (ids and times excluded). */
export const KEY_HEADERS = [
  'Event-Name',
  'Channel-State',
  'Channel-Call-State',
  'Channel-State-Number',
  'Answer-State',
  'Hangup-Cause',
  'Call-Direction',
  'Channel-Name',
  'Caller-Caller-ID-Name',
  'Caller-Caller-ID-Number',
  'Caller-Orig-Caller-ID-Number',
  'Caller-Callee-ID-Name',
  'Caller-Callee-ID-Number',
  'Caller-Destination-Number',
  'Caller-Context',
  'Caller-Source',
  'Caller-Privacy-Hide-Number',
  'Other-Type',
  'Other-Leg-Destination-Number',
  'Other-Leg-Caller-ID-Name',
  'Other-Leg-Caller-ID-Number',
  'Other-Leg-Channel-Name',
  'Other-Leg-Callee-ID-Number',
  'Other-Leg-Source',
  'Application',
  'Application-Data',
  'Application-Response',
  'variable_originate_disposition',
  'variable_DIALSTATUS',
  'variable_originate_failed_cause',
  'variable_last_bridge_hangup_cause',
  'variable_bridge_hangup_cause',
  'variable_last_bridge_proto_specific_hangup_cause',
  'variable_sip_invite_failure_status',
  'variable_hangup_cause',
  'variable_hangup_cause_q850',
  'variable_endpoint_disposition',
  'variable_continue_on_fail',
  'variable_effective_caller_id_number',
  'variable_effective_caller_id_name',
  'variable_current_application',
  'variable_current_application_data',
  'variable_last_app',
  'variable_last_arg',
  'variable_sip_hangup_disposition',
  'variable_last_sent_callee_id_number',
  'variable_DP_MATCH',
  'variable_socket_host',
  'variable_loopback_no_pre_answer',
  'variable_caller_id',
  'variable_digits_dialed',
  'variable_sip_from_user',
  'variable_sip_req_user',
];

/** The events of the double and of the capture side by side (CHANNEL_PARK left out: its place is racy); same count. */
export function eventPairs(
  got: Labeled[],
  want: Labeled[],
): { i: number; label: string; ge: Record<string, string>; we: Record<string, string> }[] {
  const g = got.filter((l) => l.ev !== undefined && l.label !== 'CHANNEL_PARK');
  const w = want.filter((l) => l.ev !== undefined && l.label !== 'CHANNEL_PARK');
  assert.equal(g.length, w.length);
  return w.map((l, i) => ({ i, label: l.label, ge: g[i]?.ev ?? {}, we: l.ev ?? {} }));
}

export function assertKeyHeaders(got: Labeled[], want: Labeled[]): void {
  for (const { i, label, ge, we } of eventPairs(got, want)) {
    for (const h of KEY_HEADERS) {
      assert.equal(ge[h], we[h], `event #${i} ${label}: header ${h}`);
    }
    // a header present in the capture must be present in the double (same header set modulo SIP stats noise)
    // racy in the captures: the SIP caller's ACK lands before CHANNEL_BRIDGE or only before CHANNEL_UNBRIDGE
    const ackRacy = label === 'CHANNEL_BRIDGE' ? ['variable_sip_to_tag', 'variable_sip_cseq'] : [];
    const missing = Object.keys(we).filter((k) => !(k in ge) && !k.startsWith('variable_rtp_') && !ackRacy.includes(k));
    assert.deepEqual(missing, [], `event #${i} ${label}: headers missing in the double`);
    const extra = Object.keys(ge).filter((k) => !(k in we) && !k.startsWith('variable_rtp_') && !ackRacy.includes(k));
    assert.deepEqual(extra, [], `event #${i} ${label}: headers only in the double`);
  }
}

/** The connect reply must carry the same headers (names, order) as the capture's. */
export function assertConnectReply(got: Labeled[], want: Labeled[]): void {
  const g = got[0]?.frame.headerList.map(([k]) => k) ?? [];
  const w = want[0]?.frame.headerList.map(([k]) => k) ?? [];
  assert.deepEqual(g, w, 'connect reply header names and order');
  const gh = got[0]?.frame.headers ?? {};
  assert.equal(gh['Reply-Text'], '%2BOK%0A');
  assert.equal(gh['Socket-Mode'], 'async');
  assert.equal(gh.Control, 'full');
  assert.equal(gh['Content-Length'], undefined);
}

// ---------------------------------------------------------------------------
// Behaviour beyond the captures (docs/reference/freeswitch.md, mod_event_socket.c)
// ---------------------------------------------------------------------------

export async function waitFor(cond: () => boolean, ms = 3000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timeout waiting for condition');
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Minimal scripted app: connect, myevents, linger, then the given commands in lock-step. */
export class MiniApp {
  frames: Labeled[] = [];
  private parser = new FrameParser();
  constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      for (const f of this.parser.push(d)) this.frames.push(labelFrame(f));
    });
  }
  async send(cmd: string, until?: (ls: string[]) => boolean): Promise<void> {
    const n = this.frames.length;
    this.sock.write(cmd);
    await waitFor(() => (until ? until(this.labels()) : this.frames.length > n));
  }
  labels(): string[] {
    return this.frames.map((f) => f.label);
  }
  event(label: string): Record<string, string> {
    const f = this.frames.find((x) => x.label === label);
    assert.ok(f?.ev, `no ${label} in ${this.labels().join(', ')}`);
    return f.ev;
  }
}

export const bridgeCmd = (arg: string, uuid = 'e0000000-0000-4000-8000-000000000001'): string =>
  encodeCommand('sendmsg', [
    ['call-command', 'execute'],
    ['execute-app-name', 'bridge'],
    ['execute-app-arg', arg],
    ['Event-UUID', uuid],
  ]);

export async function startApp(
  script: CallScript,
  sw = new FakeSwitch(),
): Promise<{ app: MiniApp; call: SwitchCall; stop: () => Promise<void> }> {
  const server = net.createServer();
  const conn = new Promise<net.Socket>((r) => server.once('connection', r));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const call = await sw.placeCall({ host: '127.0.0.1', port }, script);
  const app = new MiniApp(await conn);
  await app.send('connect\n\n');
  await app.send('myevents\n\n');
  await app.send('linger\n\n');
  return {
    app,
    call,
    stop: async () => {
      app.sock.destroy();
      await call.closed;
      server.close();
    },
  };
}
