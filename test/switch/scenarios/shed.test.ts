/**
 * What the adapter's overload shedding relies on, proved on a real FreeSWITCH 1.10.12 with RAW
 * outbound-socket servers (node:net; no adapter, no ESL library) behind the shipped dialplan-mode
 * gate (conf/dialplan/public/00_zammad_cti.xml, only its socket port changed). Each case has a
 * context of its own: the gate, then a routing extension that bridges phone 2000 (answers, 3 s
 * tone, hangs up), so every routed call ends by itself; `public` transfers the case's number there.
 *
 *  1. The shed exchange — `connect`, read the reply up to its first `\n\n`, then in ONE write
 *     `sendmsg` execute `transfer ${destination_number} XML ${context}` and `exit`, then only read
 *     until FreeSWITCH closes — routes every call of a burst through the routing exactly once,
 *     and leaves no channel parked. In async mode socket_function() (mod_event_socket.c) waits for
 *     `connect`, then runs switch_ivr_park() (switch_ivr.c), which sets CF_CONTROLLED and loops
 *     while the channel is ready and CF_CONTROLLED is set; the listener's end (listener_run)
 *     clears CF_CONTROLLED. The listener can end before the park begins (the contrast below strands
 *     calls that way); the `sendmsg` was queued as a private event before it ended
 *     (switch_core_session_queue_private_event), the park loop runs it whenever it starts, and the
 *     transfer makes the channel not ready (CF_TRANSFER, state change pending): the park returns.
 *     The same exchange written before the connect reply (connect, transfer, exit in one write:
 *     the listener ends before the park in most calls) proves it under the race.
 *  2. A second `connect` on the same connection is answered with the channel data again
 *     (parse_command: `connect` sets LFLAG_CONNECTED and replies with CHANNEL_DATA every time).
 *  3. Contrast: `connect`, then `exit` alone, after the reply or in the same write. Each call
 *     either routes once (its listener ended while the park ran: the appended routing runs) or
 *     stays parked for good (it ended before the park began). Only that either-or is asserted;
 *     how many stay parked is a race, reported as a diagnostic.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RealSwitch } from '../harness.js';
import { zammadGate, type Extension } from '../dialplan.js';
import type { PlacedCall } from '../place-call.js';
import type { Leg, TestCallLegs } from '../legs.js';
import { executions, killLeftovers, noneLeft, user } from '../scenario-kit.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CONF_GATE = join(ROOT, 'conf', 'dialplan', 'public', '00_zammad_cti.xml');

/** The suite's own numbers, 49309998850x: each into a context of its own (its gate, its raw server). */
const N = {
  shed: '493099988501',
  pipelined: '493099988502',
  twice: '493099988503',
  exitOnly: '493099988504',
  exitPipelined: '493099988505',
} as const;
type Case = keyof typeof N;
const contextOf = (c: Case) => `cti_test_shed_${c}`;

const BURST = 40;
/** every leg of a routed call has ended within this after it was placed (2000 talks 3 s) */
const CALL_BOUND_MS = 45_000;
/** how long the switch may take to destroy an ended channel */
const GONE_BOUND_MS = 10_000;

const CONNECT = 'connect\n\n';
const HANDBACK =
  'sendmsg\ncall-command: execute\nexecute-app-name: transfer\n' +
  'execute-app-arg: ${destination_number} XML ${context}\n\n';
const EXIT = 'exit\n\n';

/**
 * What FreeSWITCH writes after `sendmsg` (the transfer) and `exit`, on every connection (seen on
 * 1.10.12), then it closes; no event (none subscribed), nothing else:
 *
 *   Content-Type: command/reply\nReply-Text: +OK\n\n                  ← sendmsg (queued, not yet run)
 *   Content-Type: command/reply\nReply-Text: +OK bye\n\n              ← exit
 *   Content-Type: text/disconnect-notice\nControlled-Session-UUID: <uuid>\n
 *   Content-Disposition: disconnect\nContent-Length: 67\n\n
 *   Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n
 *
 * framesOf() reduces that to this list.
 */
const AFTER_TRANSFER_EXIT = ['command/reply +OK', 'command/reply +OK bye', 'text/disconnect-notice disconnect'];

type Headers = Record<string, string>;

/** A header block (`Name: value` lines, values URL-encoded as FreeSWITCH serialises events); first one wins. */
function parseHeaders(block: string): Headers {
  const h: Headers = {};
  for (const line of block.split('\n')) {
    const i = line.indexOf(': ');
    if (i <= 0) continue;
    const name = line.slice(0, i);
    let value = line.slice(i + 2);
    try {
      value = decodeURIComponent(value);
    } catch {
      // not encoded: kept as it is
    }
    h[name] ??= value;
  }
  return h;
}

/** One accepted connection: what the raw server read, in order. */
class RawConn {
  private buf = '';
  private waiter: (() => void) | undefined;
  /** the replies read as header blocks (the connect replies), parsed */
  readonly replies: Headers[] = [];
  /** everything read after the last header block, until FreeSWITCH closed */
  rest = '';
  ended = false;
  readonly closed: Promise<void>;

  constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buf += chunk;
      this.waiter?.();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.ended = true;
        this.waiter?.();
        resolve();
      });
    });
  }

  get uuid(): string | undefined {
    return this.replies[0]?.['Unique-ID'];
  }

  /** Reads up to the end of the next header block (the first `\n\n`); rejects after timeoutMs or on close. */
  async readBlock(timeoutMs = 10_000): Promise<Headers> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = this.buf.indexOf('\n\n');
      if (end >= 0) {
        const block = this.buf.slice(0, end);
        this.buf = this.buf.slice(end + 2);
        const headers = parseHeaders(block);
        this.replies.push(headers);
        return headers;
      }
      if (this.ended) throw new Error(`connection closed before a header block: ${JSON.stringify(this.buf)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no header block within ${timeoutMs} ms: ${JSON.stringify(this.buf)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }

  /** Only reads (keeps) until FreeSWITCH closes; the socket is destroyed after timeoutMs. */
  async drain(timeoutMs = 60_000): Promise<void> {
    const timer = setTimeout(() => this.socket.destroy(), timeoutMs);
    await this.closed;
    clearTimeout(timer);
    this.rest = this.buf;
  }
}

/** A raw outbound-socket server running `script` on every connection FreeSWITCH opens. */
class RawServer {
  readonly conns: RawConn[] = [];
  readonly errors: string[] = [];
  private constructor(readonly server: Server) {}

  static start(script: (c: RawConn) => Promise<void>): Promise<RawServer> {
    const server = createServer();
    const raw = new RawServer(server);
    server.on('connection', (socket) => {
      socket.setNoDelay(true);
      const c = new RawConn(socket);
      raw.conns.push(c);
      script(c).catch((err: unknown) => {
        raw.errors.push(err instanceof Error ? err.message : String(err));
        socket.destroy();
      });
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(raw));
    });
  }

  get port(): number {
    const a = this.server.address();
    if (!a || typeof a === 'string') throw new Error('not listening');
    return a.port;
  }

  forCall(uuid: string): RawConn[] {
    return this.conns.filter((c) => c.uuid === uuid);
  }

  close(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** What each case's raw server does on every connection FreeSWITCH opens. */
const SCRIPTS: Record<Case, (c: RawConn) => Promise<void>> = {
  async shed(c) {
    c.socket.write(CONNECT);
    await c.readBlock();
    c.socket.write(HANDBACK + EXIT);
    await c.drain();
  },
  async pipelined(c) {
    c.socket.write(CONNECT + HANDBACK + EXIT);
    await c.readBlock();
    await c.drain();
  },
  async twice(c) {
    c.socket.write(CONNECT);
    await c.readBlock();
    c.socket.write(CONNECT);
    await c.readBlock();
    c.socket.write(HANDBACK + EXIT);
    await c.drain();
  },
  async exitOnly(c) {
    c.socket.write(CONNECT);
    await c.readBlock();
    c.socket.write(EXIT);
    await c.drain();
  },
  async exitPipelined(c) {
    c.socket.write(CONNECT + EXIT);
    await c.readBlock();
    await c.drain();
  },
};
const CASES = Object.keys(N) as Case[];

let sw: RealSwitch;
const servers = new Map<Case, RawServer>();
const server = (c: Case) => servers.get(c)!;
/** every call the file placed, for the final sweep */
const placed: PlacedCall[] = [];

before(async () => {
  sw = await RealSwitch.open();
  await sw.esl.subscribe(['CHANNEL_UNPARK']); // added to the collector's subscription (legs.ts LEG_EVENTS)
  for (const c of CASES) servers.set(c, await RawServer.start(SCRIPTS[c]));
  await sw.contexts(
    `00_cti_test_shed_${process.pid}`,
    CASES.map((c) => ({
      name: contextOf(c),
      extensions: [
        zammadGate(server(c).port, CONF_GATE).xml,
        {
          name: `cti_test_shed_${c}_route`,
          number: N[c],
          actions: [
            ['set', 'hangup_after_bridge=true'],
            ['bridge', user('2000')],
          ],
        },
      ],
    })),
  );
  await sw.dialplan(
    `00_cti_test_shed_${process.pid}`,
    CASES.map(
      (c): Extension => ({
        name: `cti_test_shed_to_${c}`,
        number: N[c],
        actions: [['transfer', `${N[c]} XML ${contextOf(c)}`]],
      }),
    ),
  );
});

after(async () => {
  // a failed test may have left calls on the switch (a parked one stays for good): they go
  if (sw) await killLeftovers(sw, placed).catch(() => undefined);
  await Promise.all([...servers.values()].map((s) => s.close()));
  await sw?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves once `cond` holds (checked every 100 ms); fails after timeoutMs with `what()`. */
async function until(cond: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`not within ${timeoutMs} ms: ${what()}`);
    await sleep(100);
  }
}

/** Places `count` calls at once (one bgapi originate each, none awaited before the next). */
function burst(c: Case, count: number): PlacedCall[] {
  const calls = Array.from({ length: count }, (_, i) =>
    sw.call(`shed-${c}-${i}`, { to: N[c], from: `4930555740${String(i).padStart(2, '0')}` }),
  );
  placed.push(...calls);
  return calls;
}

/** Waits for every call to end (bounded); the calls that did not are named in the failure (after() kills them). */
async function allEnded(calls: readonly PlacedCall[]): Promise<TestCallLegs[]> {
  const settled = await Promise.allSettled(calls.map((c) => sw.legs.allEnded(c.tag, CALL_BOUND_MS)));
  const stuck = settled.flatMap((s, i) => (s.status === 'rejected' ? [calls[i]!] : []));
  if (stuck.length) {
    const described = stuck.map((c) => `${c.tag}: ${sw.legs.legsOf(c.tag).describe()}`).join('\n');
    assert.fail(`${stuck.length} of ${calls.length} call(s) did not end within ${CALL_BOUND_MS} ms:\n${described}`);
  }
  return settled.map((s) => (s as PromiseFulfilledResult<TestCallLegs>).value);
}

const socketReturned = (inbound: Leg) =>
  !!inbound.event('CHANNEL_EXECUTE_COMPLETE', (e) => e.headers['Application'] === 'socket');
const eventCount = (leg: Leg, name: string) => leg.events.filter((e) => e.name === name).length;

/**
 * Routed through the normal routing exactly once: one socket, `handBacks` transfers after it, one
 * bridge to 2000, 2000 rang once and answered; parked once and let go once.
 */
function routedOnce(legs: TestCallLegs, handBacks: number): void {
  const inbound = legs.one('inbound');
  const d = legs.describe();
  assert.equal(executions(inbound, 'socket').length, 1, `one socket: ${d}`);
  // the public context's own `transfer` into the case's context runs before the socket
  const socketAt = inbound.events.indexOf(executions(inbound, 'socket')[0]!);
  const transfers = executions(inbound, 'transfer').filter((e) => inbound.events.indexOf(e) > socketAt);
  assert.equal(transfers.length, handBacks, `transfers after the socket: ${d}`);
  assert.deepEqual(
    executions(inbound, 'bridge').map((e) => e.headers['Application-Data']),
    [user('2000')],
    `the routing ran once: ${d}`,
  );
  const phones = legs.byRole('bleg');
  assert.equal(phones.length, 1, `2000 rang once: ${d}`);
  assert.ok(phones[0]!.has('CHANNEL_ANSWER'), `2000 answered: ${d}`);
  assert.deepEqual(
    [eventCount(inbound, 'CHANNEL_PARK'), eventCount(inbound, 'CHANNEL_UNPARK')],
    [1, 1],
    `parked, let go: ${d}`,
  );
  assert.equal(inbound.hangupCause, 'NORMAL_CLEARING', d);
}

/** The frames read after the exchange, each as `Content-Type Reply-Text|Content-Disposition`. */
function framesOf(rest: string): string[] {
  const frames: string[] = [];
  let text = rest;
  while (text.length) {
    const end = text.indexOf('\n\n');
    if (end < 0) {
      frames.push(`unterminated ${JSON.stringify(text)}`);
      break;
    }
    const h = parseHeaders(text.slice(0, end));
    text = text.slice(end + 2 + Number(h['Content-Length'] ?? 0));
    frames.push([h['Content-Type'], h['Reply-Text'] ?? h['Content-Disposition']].filter(Boolean).join(' '));
  }
  return frames;
}

/** Fact 1 for a case whose server hands every call back: each routed once, nothing left on the switch. */
async function handedBack(c: Case, n: number): Promise<TestCallLegs[]> {
  const calls = burst(c, n);
  const legs = await allEnded(calls);
  for (const l of legs) routedOnce(l, 1);
  for (const call of calls) assert.match((await call.result).trim(), /^\+OK/, `${call.tag}: the caller was answered`);
  await noneLeft(sw, calls, GONE_BOUND_MS);
  const s = server(c);
  assert.deepEqual(s.errors, [], 'the raw server read every reply');
  assert.equal(s.conns.length, n, 'one connection per call');
  for (const l of legs) {
    const conns = s.forCall(l.one('inbound').uuid);
    assert.equal(conns.length, 1, `one connection for ${l.tag}`);
    assert.ok(conns[0]!.ended, 'FreeSWITCH closed the connection');
    assert.deepEqual(framesOf(conns[0]!.rest), AFTER_TRANSFER_EXIT, `what ${l.tag}'s socket read after the exchange`);
  }
  return legs;
}

/**
 * Fact 3 for a case whose server only exits: each call either routed once (the routing appended after
 * `socket` ran) or is still parked with its connection closed; the parked ones are killed. Returns how many stayed.
 */
async function routedOrParked(c: Case): Promise<number> {
  const calls = burst(c, BURST);
  const s = server(c);
  await until(
    () => s.conns.length === BURST && s.conns.every((x) => x.ended),
    CALL_BOUND_MS,
    () => `${s.conns.filter((x) => x.ended).length} of ${BURST} connections closed`,
  );
  // Every listener has ended, so CF_CONTROLLED was cleared. A park that was running returned (its loop
  // polls every 20 ms) and the routing ran; a park that began only after that never returns: nothing
  // else clears the flag (no park_timeout). Wait until each call has ended or sits in such a park;
  // the routed calls take 3 s and more, long after any park they went through was let go.
  const inbound = (x: PlacedCall) => sw.legs.legsOf(x.tag).byRole('inbound')[0];
  const inPark = (x: PlacedCall) => {
    const i = inbound(x);
    return !!i && i.has('CHANNEL_PARK') && !i.has('CHANNEL_UNPARK') && !socketReturned(i) && !i.ended;
  };
  await until(
    () => calls.every((x) => inbound(x)?.ended || inPark(x)),
    CALL_BOUND_MS,
    () =>
      calls
        .filter((x) => !inbound(x)?.ended && !inPark(x))
        .map((x) => sw.legs.legsOf(x.tag).describe())
        .join('\n'),
  );
  const parked = calls.filter(inPark);
  const routed = calls.filter((x) => !parked.includes(x));
  for (const l of await allEnded(routed)) routedOnce(l, 0);
  await sleep(2000);
  for (const x of parked) {
    const l = sw.legs.legsOf(x.tag);
    assert.ok(inPark(x), `still parked 2 s later: ${l.describe()}`);
    assert.deepEqual(executions(l.one('inbound'), 'bridge'), [], `never routed: ${l.describe()}`);
    assert.equal(s.forCall(l.one('inbound').uuid)[0]?.ended, true, `its connection had closed: ${l.describe()}`);
  }
  await killLeftovers(sw, parked);
  await noneLeft(sw, calls, GONE_BOUND_MS);
  return parked.length;
}

describe('overload shedding: what a raw outbound socket can rely on (real FreeSWITCH)', () => {
  test(`the shed exchange, a burst of ${BURST}: each call routed once, none left parked`, async () => {
    await handedBack('shed', BURST);
  });

  const pipelined = 'the same written before the connect reply (connect, transfer, exit in one write), a burst of';
  test(`${pipelined} ${BURST}`, async () => {
    await handedBack('pipelined', BURST);
  });

  test('a second connect on the same connection is answered with the channel data again', async () => {
    const legs = await handedBack('twice', 3);
    for (const l of legs) {
      const uuid = l.one('inbound').uuid;
      const replies = server('twice').forCall(uuid)[0]!.replies;
      assert.equal(replies.length, 2);
      for (const [i, r] of replies.entries()) {
        const what = `${l.tag}, reply ${i + 1}`;
        assert.equal(r['Content-Type'], 'command/reply', what);
        assert.equal(r['Reply-Text'], '+OK\n', what);
        assert.equal(r['Event-Name'], 'CHANNEL_DATA', what);
        assert.equal(r['Unique-ID'], uuid, what);
        assert.equal(r['Caller-Destination-Number'], N.twice, what);
        assert.equal(r['variable_zammad_handled'], 'true', what);
      }
    }
  });

  test('contrast, connect then exit alone after the reply: each call routed once or parked for good', async (t) => {
    t.diagnostic(`${await routedOrParked('exitOnly')} of ${BURST} calls stayed parked`);
  });

  test('contrast, connect and exit in one write: each call routed once or parked for good', async (t) => {
    t.diagnostic(`${await routedOrParked('exitPipelined')} of ${BURST} calls stayed parked`);
  });
});
