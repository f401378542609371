/**
 * Fuzzing the event socket (issue 4): tens of thousands of random and mutated frames from many
 * connections against the running adapter, while real calls go through beside them. Afterwards
 * the process is alive, nothing is left open, its memory is back near where it started, and
 * every real call was reported exactly as it happened.
 *
 * Seeded and reproducible: FUZZ_SEED=<n> replays the same frames (each connection draws from its
 * own generator, so the content does not depend on timing; only the interleaving does).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { placeCall, type CallScript, type SwitchCall } from '@freeswitch-zammad-cti/sim/switch';
import { ZammadDouble } from '@freeswitch-zammad-cti/sim/zammad';
import {
  apiResponse,
  commandReply,
  connectReply,
  disconnectNotice,
  encodeEvent,
  GOODBYE,
  type Header,
} from '@freeswitch-zammad-cti/sim/esl-wire';
import { startAdapter, type AdapterProcess } from './adapter-process.js';
import { RawSwitch, channelData, metric, metrics, prng, rssBytes, waitUntil } from './raw-switch.js';

const SEED = Number(process.env['FUZZ_SEED'] ?? 20261125);
/** Frames written to open connections; a connection the adapter closes (a fatal frame) is replaced by a new one. */
const FRAMES = 40_000;
const MAX_CONNECTIONS = 4000;
const AT_ONCE = 16;
const FRAMES_PER_CONNECTION = 120;
const REAL_CALLS = 40;
/** Resident memory may grow by this much over the run (V8 keeps some heap it once needed). */
const RSS_MARGIN = 96 * 1024 * 1024;

let zammad: ZammadDouble;
let adapter: AdapterProcess;

before(async () => {
  zammad = new ZammadDouble({ token: `tok-${randomUUID()}` });
  await zammad.start();
  adapter = await startAdapter({
    ZAMMAD_CTI_URL: zammad.url,
    ESL_IDLE_TIMEOUT_MS: '1000',
    ESL_MAX_FRAME_BYTES: '65536',
    LOG_LEVEL: 'info',
    RETRY_BASE_MS: '50',
    RETRY_MAX_MS: '500',
  });
});

after(async () => {
  await adapter?.stop('SIGKILL');
  await zammad?.stop();
});

// ---------------------------------------------------------------------------------------------
// Frames

type Rnd = () => number;
const pick = <T>(r: Rnd, list: readonly T[]): T => list[Math.floor(r() * list.length)] as T;
const int = (r: Rnd, n: number) => Math.floor(r() * n);

const NAMES = [
  'CHANNEL_BRIDGE',
  'CHANNEL_UNBRIDGE',
  'CHANNEL_ANSWER',
  'CHANNEL_HANGUP',
  'CHANNEL_HANGUP_COMPLETE',
  'CHANNEL_EXECUTE',
  'CHANNEL_EXECUTE_COMPLETE',
  'CHANNEL_PARK',
  'CHANNEL_PROGRESS',
  'CHANNEL_STATE',
  'CHANNEL_DATA',
  'HEARTBEAT',
  'CUSTOM',
  'BACKGROUND_JOB',
  '',
  '*',
  '**',
  '__proto__',
  'constructor',
  'command::reply',
  'auth::request',
  'NO_SUCH_EVENT',
];
const HEADERS = [
  'Unique-ID',
  'Hangup-Cause',
  'Application',
  'Application-Data',
  'Other-Leg-Destination-Number',
  'Caller-Caller-ID-Number',
  'variable_originate_disposition',
  'variable_zammad_bridge',
  'Content-Length',
  'Content-Type',
  'Event-Name',
  'Reply-Text',
  'X-Random',
  '',
  ':',
  '__proto__',
];
const VALUES = [
  'NORMAL_CLEARING',
  'USER_BUSY',
  'ORIGINATOR_CANCEL',
  'bridge',
  'user/2000@d',
  '2000',
  '+OK',
  '-ERR nope',
  '%',
  '%zz',
  '%FF',
  '100%',
  '%C3%28',
  'a\u0000b',
  'é',
  '\u2028',
  '-1',
  '999999999',
  'NaN',
  '',
  '_undef_',
  'x'.repeat(300),
];

function randomValue(r: Rnd): string {
  if (r() < 0.7) return pick(r, VALUES);
  return Array.from({ length: int(r, 40) }, () => String.fromCharCode(int(r, 0x250))).join('');
}

function randomHeaders(r: Rnd, uuid: string): Header[] {
  const h: Header[] = [['Event-Name', pick(r, NAMES)]];
  const who = r();
  if (who < 0.6) h.push(['Unique-ID', uuid]);
  else if (who < 0.8) h.push(['Unique-ID', randomUUID()]);
  for (let i = int(r, 8); i > 0; i--) h.push([pick(r, HEADERS), randomValue(r)]);
  return h;
}

/** A frame that FreeSWITCH could have sent, or one that only a broken peer would. */
function wellFormed(r: Rnd, uuid: string): string {
  const x = r();
  // XML is rare: modesl's XML reading throws on most broken bodies, which ends the connection.
  if (x < 0.55)
    return encodeEvent(
      randomHeaders(r, uuid),
      r() < 0.005 ? 'xml' : r() < 0.3 ? 'json' : 'plain',
      r() < 0.1 ? randomValue(r) : undefined,
    );
  if (x < 0.65) return commandReply(pick(r, ['+OK', '-ERR command not found', '+OK will linger', randomValue(r)]));
  if (x < 0.72) return apiResponse(randomValue(r));
  if (x < 0.78) return disconnectNotice(pick(r, [uuid, randomUUID()]), r() < 0.5 ? GOODBYE : randomValue(r));
  if (x < 0.82)
    return (
      `Content-Type: ${pick(r, ['log/data', 'auth/request', 'text/rude-rejection', '*', 'api/response'])}\n` +
      'Content-Length: 3\n\nabc'
    );
  if (x < 0.86) return connectReply(channelData({ uuid: pick(r, [uuid, randomUUID(), '']) }));
  const bytes = Array.from({ length: 1 + int(r, 200) }, () => String.fromCharCode(int(r, 256))).join('');
  return r() < 0.5 ? bytes : `${bytes}\n\n`;
}

/** Byte-level mutations of a frame: flips, cuts, insertions, duplications, lying lengths, CRLF. */
function mutate(r: Rnd, frame: string): string {
  let s = frame;
  for (let n = 1 + int(r, 3); n > 0; n--) {
    const at = int(r, s.length + 1);
    switch (int(r, 8)) {
      case 0:
        s = s.slice(0, at) + String.fromCharCode(int(r, 256)) + s.slice(at + 1);
        break;
      case 1:
        s = s.slice(0, at) + s.slice(at + int(r, 40));
        break;
      case 2:
        s = s.slice(0, at) + pick(r, ['\n', '\n\n', '%', ': ', '\0', '\r\n', 'Content-Length: ']) + s.slice(at);
        break;
      case 3:
        s = s.slice(0, at) + s.slice(at, at + int(r, 60)) + s.slice(at);
        break;
      case 4:
        s = s.slice(0, at);
        break;
      case 5:
        s = s.replace(
          /Content-Length: \d+/,
          `Content-Length: ${pick(r, ['0', '-1', '1', 'abc', '99999999', String(int(r, 5000))])}`,
        );
        break;
      case 6:
        s = s.replace(/\n/g, '\r\n');
        break;
      default:
        s = s.replace(/: [^\n]*/, `: ${randomValue(r)}`);
    }
  }
  return s;
}

/** One fuzzing connection: maybe a handshake, then its frames in random pieces, then an end. */
async function fuzzConnection(index: number): Promise<number> {
  const r = prng(SEED * 1000 + index);
  const uuid = randomUUID();
  const peer = await RawSwitch.connect(adapter.eslPort).catch(() => undefined);
  if (!peer) return 0;
  // Answer what the adapter asks, as a switch would, so that most frames land in a call.
  let answered = 0;
  const answer = () => {
    for (; answered < peer.commands.length; answered++) {
      const c = peer.commands[answered];
      if (c?.name === 'api') peer.write(apiResponse(r() < 0.5 ? 'Agent\n' : '-ERR no reply\n'));
      else if (c?.name === 'exit') {
        // Half of the peers ignore it and go on sending: the adapter closes them itself.
        if (r() < 0.5) {
          peer.write(commandReply('+OK bye'));
          peer.end();
        }
      } else if (c && c.name !== 'connect') peer.write(commandReply('+OK'));
    }
  };
  peer.socket.on('data', answer);
  let frames = 0;
  try {
    if (r() < 0.8) {
      await peer.next('connect', 3000);
      const variables: Record<string, string> =
        r() < 0.5
          ? { zammad_users: 'Fuzz', zammad_bridge: pick(r, ['user/2000@d', 'sofia/gateway/gw/2000', randomValue(r)]) }
          : {};
      const reply = connectReply(channelData({ uuid, variables, callerName: randomValue(r) }));
      peer.write(r() < 0.15 ? mutate(r, reply) : reply);
      frames++;
    }
    let out = '';
    let pending = 0;
    for (let i = 0; i < FRAMES_PER_CONNECTION && !peer.isClosed; i++) {
      const frame = wellFormed(r, uuid);
      // A broken JSON body ends the connection (as any frame the reader cannot read): mutated less often.
      out += r() < (frame.includes('text/event-json') ? 0.1 : 0.3) ? mutate(r, frame) : frame;
      pending++;
      if (out.length > 2048 || r() < 0.2 || i === FRAMES_PER_CONNECTION - 1) {
        // Pieces of any size: a frame split across reads, several frames in one.
        for (let at = 0; at < out.length && !peer.isClosed; ) {
          const n = 1 + int(r, r() < 0.3 ? 16 : 4096);
          peer.write(out.slice(at, at + n));
          at += n;
        }
        if (!peer.isClosed) frames += pending;
        out = '';
        pending = 0;
        await new Promise((res) => setImmediate(res));
      }
    }
    const end = r();
    if (end < 0.4) peer.reset();
    else if (end < 0.8) peer.end();
    else if (!peer.isClosed) {
      peer.write(
        encodeEvent([
          ['Event-Name', 'CHANNEL_HANGUP_COMPLETE'],
          ['Unique-ID', uuid],
          ['Hangup-Cause', 'NORMAL_CLEARING'],
        ]),
      );
      peer.end();
    }
  } catch {
    peer.reset(); // the adapter closed first: that is allowed
  }
  await Promise.race([peer.closed, new Promise((res) => setTimeout(res, 5000))]);
  if (!peer.isClosed) peer.reset();
  return frames;
}

// ---------------------------------------------------------------------------------------------
// Real calls beside the fuzzing

type Kind = 'answered' | 'busy' | 'cancel' | 'noAnswer';
const EXPECTED: Record<Kind, string[]> = {
  answered: ['newCall', 'answer', 'hangup:normalClearing'],
  busy: ['newCall', 'hangup:busy'],
  cancel: ['newCall', 'hangup:cancel'],
  noAnswer: ['newCall', 'hangup:noAnswer'],
};

function realCall(i: number): { kind: Kind; script: CallScript } {
  const kind = (['answered', 'busy', 'cancel', 'noAnswer'] as const)[i % 4] as Kind;
  const ext = String(3000 + i);
  const targets: CallScript['targets'] = {
    answered: { [ext]: { kind: 'answer', ringMs: 30, talkMs: 80 } },
    busy: { [ext]: { kind: 'busy', ringMs: 20 } },
    cancel: { [ext]: { kind: 'ring' } },
    noAnswer: { [ext]: { kind: 'ring' } },
  }[kind] as CallScript['targets'];
  return {
    kind,
    script: {
      channel: {
        uuid: randomUUID(),
        callerNumber: `0301234${String(i).padStart(4, '0')}`,
        destination: '491711234567890',
        sip: i % 2 === 0,
        variables: { zammad_users: `Agent ${i}`, zammad_bridge: `sofia/gateway/carrier/${ext}` },
      },
      ...(targets ? { targets } : {}),
      ...(kind === 'cancel' ? { callerCancelAfterMs: 120 } : {}),
      ...(kind === 'noAnswer' ? { originateTimeoutMs: 150 } : {}),
      chunking: (['whole', 'split', 'bytewise-random'] as const)[i % 3],
      seed: SEED + i,
    },
  };
}

function accepted(uuid: string): string[] {
  return zammad.acceptedWithCause(uuid);
}

test(`fuzz: ${FRAMES} random and mutated frames beside ${REAL_CALLS} real calls (FUZZ_SEED=${SEED})`, {
  timeout: 120_000,
}, async (t) => {
  const pid = adapter.proc.pid as number;
  // Warm up (code paths compiled, pools filled), then the baseline.
  for (let i = 0; i < 4; i++) {
    const c = await placeCall({ host: '127.0.0.1', port: adapter.eslPort }, realCall(1000 + i).script);
    await c.closed;
  }
  await waitUntil(
    async () => (await metric(adapter.statusPort, 'cti_outbox_events{endpoint="default"}')) === 0,
    'warm-up delivered',
  );
  const rssBefore = rssBytes(pid);

  // The fuzzing, AT_ONCE connections at a time, and the real calls started along the way.
  const real: { kind: Kind; call: Promise<SwitchCall> }[] = [];
  let next = 0;
  let frames = 0;
  const worker = async () => {
    while (frames < FRAMES && next < MAX_CONNECTIONS) {
      const index = next++;
      // A real call every FRAMES / REAL_CALLS frames, so that they run all along the fuzzing.
      if (real.length < REAL_CALLS && frames >= (real.length * FRAMES) / REAL_CALLS) {
        const { kind, script } = realCall(real.length);
        real.push({ kind, call: placeCall({ host: '127.0.0.1', port: adapter.eslPort }, script) });
      }
      const sent = await fuzzConnection(index); // (not `frames += await …`: that reads `frames` before the wait)
      frames += sent;
    }
  };
  await Promise.all(Array.from({ length: AT_ONCE }, worker));
  while (real.length < REAL_CALLS) {
    const { kind, script } = realCall(real.length);
    real.push({ kind, call: placeCall({ host: '127.0.0.1', port: adapter.eslPort }, script) });
  }
  const closedFor = await metrics(adapter.statusPort);
  t.diagnostic(
    `FUZZ_SEED=${SEED}: ${frames} frames on ${next} connections; closed by the adapter: ${[...closedFor]
      .filter(([k]) => k.startsWith('cti_esl_connection_errors_total'))
      .map(([k, v]) => `${k.replace(/.*reason="(.*)".*/, '$1')} ${v}`)
      .join(', ')}`,
  );
  assert.ok(frames >= 20_000, `only ${frames} frames sent`);

  // Every real call reported exactly as it happened.
  const calls = await Promise.all(real.map(async ({ kind, call }) => ({ kind, call: await call })));
  await Promise.all(calls.map(({ call }) => call.closed));
  await zammad
    .waitFor(() => calls.every(({ kind, call }) => accepted(call.uuid).length >= EXPECTED[kind].length), 20_000)
    .catch(() => undefined);
  for (const { kind, call } of calls) {
    assert.deepEqual(accepted(call.uuid), EXPECTED[kind], `real call ${call.uuid} (${kind}), FUZZ_SEED=${SEED}`);
  }

  // Alive, nothing left open, memory back near where it started.
  assert.equal(adapter.proc.exitCode, null, `the adapter died (FUZZ_SEED=${SEED}):\n${adapter.output().slice(-3000)}`);
  assert.equal((await fetch(`http://127.0.0.1:${adapter.statusPort}/healthz`)).status, 200);
  await waitUntil(
    async () => (await metric(adapter.statusPort, 'cti_calls_in_progress')) === 0,
    'every connection closed',
    15_000,
  );
  await waitUntil(
    () => rssBytes(pid) <= rssBefore + RSS_MARGIN,
    `resident memory back within ${RSS_MARGIN >> 20} MB of ${Math.round(rssBefore / 2 ** 20)} MB (now ` +
      `${Math.round(rssBytes(pid) / 2 ** 20)} MB)`,
    15_000,
  );
  t.diagnostic(
    `resident memory: ${Math.round(rssBefore / 2 ** 20)} MB before, ${Math.round(rssBytes(pid) / 2 ** 20)} MB after`,
  );
  assert.ok(!/uncaught exception/.test(adapter.output()), 'no uncaught exception');
});
