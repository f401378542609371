/**
 * The outbox while Zammad is known unreachable (circuit.ts, parking.ts): a fake poster that
 * refuses, answers or holds requests as the test says, an in-memory store. Every wait is a
 * condition, never a fixed sleep, except where a test shows that something does not happen.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { HttpOutcome } from '../../src/zammad/client.js';
import { Outbox, type OutboxOptions } from '../../src/zammad/outbox.js';
import { OutboxStore } from '../../src/zammad/store.js';
import type { Verdict } from '../../src/zammad/verdict.js';
import {
  answer,
  answeredHangup,
  FakePoster,
  type Line,
  newCall,
  OK,
  REFUSED,
  recordingLogger,
  type Req,
  sleep,
  until,
} from './outbox-kit.js';

/** Lanes back off for seconds (RETRY_BASE_MS 5 s): anything that goes sooner was woken. */
const SLOW_RETRY: OutboxOptions = {
  requestTimeoutMs: 100,
  retryBaseMs: 5000,
  retryMaxMs: 60_000,
  maxAgeMs: 600_000,
  maxEvents: 10_000,
  concurrency: 4,
};

function rig(options: Partial<OutboxOptions> = {}, store = new OutboxStore(':memory:'), endpoint = 'default') {
  const poster = new FakePoster();
  const lines: Line[] = [];
  const skipped: string[] = [];
  const outbox = new Outbox(store.scoped(endpoint), poster, { ...SLOW_RETRY, ...options }, recordingLogger(lines), {
    skipped: (reason) => skipped.push(reason),
  });
  return { outbox, poster, lines, skipped, store };
}

/**
 * A ringing caller as the session is one: `told` is the newCall's verdict or what `early` heard, whichever comes
 * first.
 */
function ring(outbox: Outbox, callId: string): { told: Promise<Verdict> } {
  let tell!: (v: Verdict) => void;
  const early = new Promise<Verdict>((r) => (tell = r));
  const verdict = outbox.send(newCall(callId), (v) => {
    tell(v);
    return true;
  });
  return { told: Promise.race([verdict, early]) };
}

const unreachableLines = (lines: Line[]) => lines.filter((l) => l.message.startsWith('Zammad is unreachable'));
const backLines = (lines: Line[]) => lines.filter((l) => l.message.startsWith('Zammad answers again'));

describe('Zammad known unreachable (the circuit open)', () => {
  test('after three failures in a row: the callers still waiting are told at once, one log line, counted', async () => {
    const { outbox, poster, lines, skipped } = rig();
    poster.answer = () => REFUSED;
    const callers = ['a', 'b', 'c'].map((id) => ring(outbox, id));
    const verdicts = await Promise.all(callers.map((c) => c.told));
    for (const v of verdicts) assert.equal(v.kind, 'retry');
    assert.match(verdicts[0]?.kind === 'retry' ? verdicts[0].reason : '', /Zammad is unreachable: ECONNREFUSED/);
    assert.equal(outbox.unreachable, 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9');
    assert.deepEqual(skipped, ['unreachable', 'unreachable', 'unreachable']);
    assert.equal(unreachableLines(lines).length, 1);
    assert.equal(unreachableLines(lines)[0]?.level, 'warn');
    assert.equal(outbox.depth, 3, 'the newCalls stay, to be delivered late');
    outbox.close();
  });

  test(
    'a caller ringing while it is open is told before ' + 'any request, and its newCall waits; no line per call',
    async () => {
      const { outbox, poster, lines, skipped } = rig();
      poster.answer = () => REFUSED;
      await Promise.all(['a', 'b', 'c'].map((id) => ring(outbox, id).told));
      const before = poster.requests.length;
      const started = performance.now();
      const later = Array.from({ length: 20 }, (_, i) => ring(outbox, `late-${i}`));
      for (const c of later) assert.equal((await c.told).kind, 'retry');
      assert.ok(performance.now() - started < 200, 'at once');
      assert.equal(skipped.length, 23);
      assert.ok(
        poster.requests.length - before <= 1,
        `at most one probe, not a request per call (${poster.requests.length - before})`,
      );
      assert.equal(
        lines.filter((l) => l.level === 'warn' || l.level === 'error').length,
        unreachableLines(lines).length + lines.filter((l) => /did not take the event/.test(l.message)).length,
      );
      assert.ok(
        lines.filter((l) => /did not take the event/.test(l.message)).length <= 3,
        'only the calls that failed before it opened',
      );
      assert.equal(unreachableLines(lines).length, 1);
      outbox.close();
    },
  );

  test('a caller who went on already (the bounded wait is over) is not counted', async () => {
    const { outbox, poster, skipped } = rig();
    poster.answer = () => REFUSED;
    void outbox.send(newCall('gone'), () => false);
    await Promise.all(['a', 'b'].map((id) => ring(outbox, id).told));
    await until(() => outbox.unreachable !== undefined, 'open');
    assert.deepEqual(skipped, ['unreachable', 'unreachable']);
    outbox.close();
  });

  test('while it is open, one probe at a time (RETRY_BASE_MS, doubling): nothing else is sent', async () => {
    const { outbox, poster, lines } = rig({ retryBaseMs: 20 });
    poster.answer = () => REFUSED;
    await Promise.all(Array.from({ length: 10 }, (_, i) => ring(outbox, `c${i}`).told));
    const opened = poster.requests.length;
    poster.maxInFlight = poster.inFlight;
    await until(() => poster.requests.length >= opened + 4, 'four probes', 5000);
    const probes = poster.requests.slice(opened);
    assert.ok(poster.maxInFlight <= 1, 'one at a time');
    const gaps = probes.slice(1).map((r, i) => r.at - (probes[i] as Req).at);
    assert.ok(
      gaps.every((g) => g >= 15),
      `probes spaced by the backoff (${gaps.map(Math.round).join(', ')} ms)`,
    );
    assert.equal(unreachableLines(lines).length, 1, 'a failed probe logs nothing');
    outbox.close();
  });
});

describe('what is not an outage', () => {
  test(
    '500s for one event (Zammad answered): retried on their own, ' +
      'the circuit stays closed, other callers wait for verdicts',
    async () => {
      const { outbox, poster, skipped } = rig({ retryBaseMs: 4, retryMaxMs: 16 });
      const NO_SUCH_CALL: HttpOutcome = { kind: 'response', status: 500, body: '{"error":"No such call_id"}' };
      poster.answer = (r) => (r.callId.startsWith('poison') ? NO_SUCH_CALL : OK);
      for (let i = 0; i < 5; i++) void outbox.send(answer(`poison-${i}`));
      await until(() => poster.requests.length >= 30, 'the poison events retried a few times');
      assert.equal(outbox.unreachable, undefined);
      const verdict = await outbox.send(newCall('fine'), () => true);
      assert.equal(verdict.kind, 'delivered');
      assert.deepEqual(skipped, []);
      outbox.close();
    },
  );
});

describe('Zammad answers again', () => {
  test('every lane goes at once, not after its backoff; each call in order; one line; the limit holds', async () => {
    const { outbox, poster, lines } = rig();
    poster.answer = (r) => (r.callId === 'straggler' ? 'hold' : REFUSED);
    void outbox.send(newCall('straggler'));
    await until(() => poster.held().length === 1, 'one request on its way');
    const ids = Array.from({ length: 20 }, (_, i) => `c${i}`);
    const verdicts = ids.map((id) =>
      Promise.all([outbox.send(newCall(id)), outbox.send(answer(id)), outbox.send(answeredHangup(id))]),
    );
    await until(() => outbox.unreachable !== undefined, 'open');
    await sleep(20);
    // Each lane now sleeps 2.5–5 s (RETRY_BASE_MS 5 s) or waits for the circuit; the first probe is 2 s away.
    poster.answer = () => OK;
    poster.maxInFlight = poster.inFlight;
    const back = performance.now();
    poster.held()[0]?.reply(OK);
    await Promise.all(verdicts);
    const took = performance.now() - back;
    assert.ok(took < 1000, `drained ${Math.round(took)} ms after Zammad answered, not after the backoff`);
    for (const id of ids)
      assert.deepEqual(
        poster.of(id).filter((e, i, all) => i === all.lastIndexOf(e)),
        ['newCall', 'answer', 'hangup'],
        id,
      );
    for (const id of ids) {
      const events = poster.requests.filter((r) => r.callId === id && r.at >= back).map((r) => r.event);
      assert.deepEqual(
        events,
        events.includes('newCall') ? ['newCall', 'answer', 'hangup'] : ['answer', 'hangup'],
        `${id} in order`,
      );
    }
    assert.ok(poster.maxInFlight <= 4, `never more than the connections (${poster.maxInFlight})`);
    assert.equal(backLines(lines).length, 1);
    assert.equal(unreachableLines(lines).length, 1);
    assert.equal(outbox.unreachable, undefined);
    assert.equal(outbox.depth, 0);
    outbox.close();
  });

  test(
    'the probe finds it back: everything drains; newCalls whose ' +
      'callers went on do not take the reserve, a fresh one goes first',
    async () => {
      const { outbox, poster, lines } = rig({ retryBaseMs: 20 });
      poster.answer = () => REFUSED;
      const ids = Array.from({ length: 12 }, (_, i) => `c${i}`);
      for (const id of ids) {
        void ring(outbox, id);
        void outbox.send(answeredHangup(id));
      }
      await until(() => outbox.unreachable !== undefined, 'open');
      // Back, but slow: every request is held, so what is in flight can be counted.
      poster.answer = () => 'hold';
      await until(() => poster.held().length === 1, 'the probe');
      poster.held()[0]?.reply(OK);
      await until(() => poster.held().length === 3, 'the backlog in flight');
      await sleep(10);
      assert.equal(poster.held().length, 3, 'old newCalls are backlog: they leave the last connection free');
      const fresh = ring(outbox, 'fresh');
      await until(() => poster.requests.some((r) => r.callId === 'fresh'), 'the fresh newCall goes at once');
      assert.equal(poster.held().length, 4);
      poster.answer = () => OK;
      for (const r of poster.held()) r.reply(OK);
      assert.equal((await fresh.told).kind, 'delivered', 'the circuit is closed: the fresh caller got its verdict');
      assert.equal(await outbox.drain(3000), true);
      for (const id of ids)
        assert.deepEqual(
          poster.requests
            .filter((r) => r.callId === id && r.answered)
            .slice(-2)
            .map((r) => r.event),
          ['newCall', 'hangup'],
          id,
        );
      assert.equal(backLines(lines).length, 1);
      assert.ok(Number(backLines(lines)[0]?.fields['callsWithoutDecision']) >= 12);
      outbox.close();
    },
  );
});

describe('per endpoint', () => {
  test("one endpoint's Zammad down does not touch another's callers", async () => {
    const store = new OutboxStore(':memory:');
    const down = rig({}, store, 'down');
    const up = rig({}, store, 'up');
    down.poster.answer = () => REFUSED;
    await Promise.all(['a', 'b', 'c'].map((id) => ring(down.outbox, id).told));
    assert.ok(down.outbox.unreachable !== undefined);
    assert.equal(up.outbox.unreachable, undefined);
    const verdict = await up.outbox.send(newCall('x'), () => true);
    assert.equal(verdict.kind, 'delivered');
    assert.deepEqual(up.skipped, []);
    down.outbox.close();
    up.outbox.close();
  });
});
