/**
 * The outbox on its own: a fake poster that answers as the test says (or holds a request until
 * the test releases it), an in-memory store, an injected clock for the age bound. Backoff and
 * probe delays are a few milliseconds; every wait is a condition, never a fixed sleep.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { HttpOutcome } from '../../src/zammad/client.js';
import { Outbox, type OutboxHooks, type OutboxOptions } from '../../src/zammad/outbox.js';
import { OutboxStore } from '../../src/zammad/store.js';
import { atMostOnce, verdictOf, type Verdict } from '../../src/zammad/verdict.js';
import {
  answer,
  answeredHangup,
  BAD_TOKEN,
  base,
  EXISTS,
  FakePoster,
  type Line,
  missedHangup,
  newCall,
  OK,
  REFUSED,
  recordingLogger,
  status,
  TIMEOUT,
  until,
} from './outbox-kit.js';

// ---------------------------------------------------------------------------------------------
// Doubles (the shared ones: outbox-kit.ts)

/** The outbox's probe timer does not hold the process open (the servers do, in the adapter): here a test does. */
async function alive<T>(p: Promise<T>): Promise<T> {
  const keep = setInterval(() => {}, 1000);
  try {
    return await p;
  } finally {
    clearInterval(keep);
  }
}

const OPTIONS: OutboxOptions = {
  requestTimeoutMs: 100,
  retryBaseMs: 4,
  retryMaxMs: 16,
  maxAgeMs: 60_000,
  maxEvents: 1000,
  concurrency: 4,
};

interface Rig {
  outbox: Outbox;
  poster: FakePoster;
  store: OutboxStore;
  lines: Line[];
  dropped: Record<string, number>;
  clock: { now: number };
}

function rig(
  options: Partial<OutboxOptions> = {},
  store = new OutboxStore(':memory:'),
  poster = new FakePoster(),
  endpoint = 'default',
): Rig {
  const lines: Line[] = [];
  const dropped: Record<string, number> = {};
  const clock = { now: 1_000_000 };
  const hooks: OutboxHooks = {
    dropped: (reason, n) => {
      dropped[reason] = (dropped[reason] ?? 0) + n;
    },
    held: (n) => {
      dropped['held'] = (dropped['held'] ?? 0) + n;
    },
  };
  const outbox = new Outbox(
    store.scoped(endpoint),
    poster,
    { ...OPTIONS, ...options },
    recordingLogger(lines),
    hooks,
    () => clock.now,
  );
  return { outbox, poster, store, lines, dropped, clock };
}

/** A whole answered call handed to the outbox at once; resolves with the three verdicts. */
const wholeCall = (outbox: Outbox, id: string) =>
  Promise.all([outbox.send(newCall(id)), outbox.send(answer(id)), outbox.send(answeredHangup(id))]);

// ---------------------------------------------------------------------------------------------

describe('order and independence', () => {
  test("each call's events leave strictly in order, also when the first tries fail", async () => {
    const { outbox, poster, store } = rig();
    const failFirst = new Map<string, number>();
    poster.answer = (r) => {
      const n = failFirst.get(r.callId + r.event) ?? 0;
      failFirst.set(r.callId + r.event, n + 1);
      return n < 2 ? status(503) : OK; // every event fails twice, then goes through
    };
    const verdicts = await Promise.all(['a', 'b', 'c'].map((id) => wholeCall(outbox, id)));
    for (const v of verdicts.flat()) assert.equal(v.kind, 'delivered');
    for (const id of ['a', 'b', 'c']) {
      assert.deepEqual(
        poster.of(id),
        ['newCall', 'newCall', 'newCall', 'answer', 'answer', 'answer', 'hangup', 'hangup', 'hangup'],
        id,
      );
    }
    assert.equal(store.count(), 0);
    assert.equal(outbox.depth, 0);
    outbox.close();
  });

  test("one call's trouble never holds up another call", async () => {
    const { outbox, poster } = rig();
    poster.answer = (r) => (r.callId === 'stuck' ? status(503) : OK);
    const stuck = outbox.send(newCall('stuck'));
    void outbox.send(answer('stuck'));
    const others = await Promise.all(['x', 'y', 'z'].map((id) => wholeCall(outbox, id)));
    assert.ok(others.flat().every((v) => v.kind === 'delivered'));
    await until(() => poster.of('stuck').length >= 4, 'the stuck call is retried meanwhile');
    assert.ok(
      poster.of('stuck').every((e) => e === 'newCall'),
      'its answer waits behind its newCall',
    );
    poster.answer = () => OK;
    assert.equal((await stuck).kind, 'delivered');
    await outbox.drain(2000);
    assert.deepEqual(poster.of('stuck').slice(-2), ['newCall', 'answer']);
    outbox.close();
  });

  test(
    'a newCall that missed the bounded wait is still ' + 'delivered, late, before the answer and hangup of its call',
    async () => {
      const { outbox, poster } = rig();
      poster.answer = (r) => (r.event === 'newCall' ? 'hold' : OK);
      const nc = outbox.send(newCall('late'));
      // The session gives up waiting (ZAMMAD_NEWCALL_TIMEOUT_MS), bridges, and the call goes on.
      const bounded = await Promise.race([nc, new Promise<'timeout'>((r) => setTimeout(r, 20, 'timeout'))]);
      assert.equal(bounded, 'timeout');
      const rest = Promise.all([outbox.send(answer('late')), outbox.send(answeredHangup('late'))]);
      await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(poster.of('late'), ['newCall'], 'nothing overtakes the newCall');
      poster.requests[0]?.reply(OK);
      assert.equal((await nc).kind, 'delivered');
      assert.deepEqual(
        (await rest).map((v) => v.kind),
        ['delivered', 'delivered'],
      );
      assert.deepEqual(poster.of('late'), ['newCall', 'answer', 'hangup']);
      outbox.close();
    },
  );
});

describe('what is sent again', () => {
  test('a retried newCall that Zammad already stored ("already exists") counts as delivered', async () => {
    const { outbox, poster } = rig();
    let n = 0;
    poster.answer = (r) => (r.event === 'newCall' ? (n++ === 0 ? TIMEOUT : EXISTS) : OK);
    const [nc, ans] = await Promise.all([outbox.send(newCall('dup')), outbox.send(answer('dup'))]);
    assert.deepEqual(nc, { kind: 'delivered', body: '{}', note: 'already stored by an earlier try' });
    assert.equal(ans.kind, 'delivered');
    assert.deepEqual(poster.of('dup'), ['newCall', 'newCall', 'answer']);
    outbox.close();
  });

  test(
    'the hangup of a missed call is never sent twice: no ' + 'answer after it was sent → not sent again, counted',
    async () => {
      const { outbox, poster, store, dropped, lines } = rig();
      poster.answer = (r) => (r.event === 'hangup' ? TIMEOUT : OK);
      await outbox.send(newCall('missed'));
      const v = await outbox.send(missedHangup('missed'));
      assert.equal(v.kind, 'unconfirmed');
      assert.deepEqual(poster.of('missed'), ['newCall', 'hangup']);
      assert.equal(dropped['unconfirmed'], 1);
      assert.equal(store.count(), 0);
      assert.ok(
        lines.some((l) => l.level === 'warn' && /not sent again/.test(l.message) && l.fields['callId'] === 'missed'),
      );
      outbox.close();
    },
  );

  for (const [what, outcome] of [
    [
      'a 500 (Zammad failed, perhaps after storing)',
      status(500, '{"error":"Error ID x: Please contact your administrator."}'),
    ],
    ['a 504 from a proxy', status(504)],
    [
      'a connection reset after the request was written',
      { kind: 'failure', code: 'ECONNRESET', error: 'read ECONNRESET', sent: true } as HttpOutcome,
    ],
  ] as const) {
    test(`the hangup of a missed call is not sent again after ${what}`, async () => {
      const { outbox, poster } = rig();
      poster.answer = (r) => (r.event === 'hangup' ? outcome : OK);
      await outbox.send(newCall('m'));
      assert.equal((await outbox.send(missedHangup('m'))).kind, 'unconfirmed');
      assert.deepEqual(poster.of('m'), ['newCall', 'hangup']);
      outbox.close();
    });
  }

  for (const [what, outcome] of [
    ['connection refused (never written)', REFUSED],
    ['a timeout before the request was written (still connecting)', { ...TIMEOUT, sent: false } as HttpOutcome],
    ['503 (Zammad or its proxy did not take it)', status(503)],
    ['502', status(502)],
    ['429', status(429)],
  ] as const) {
    test(`the hangup of a missed call is sent again after ${what}`, async () => {
      const { outbox, poster } = rig();
      let failed = 0;
      poster.answer = (r) => (r.event === 'hangup' && failed++ < 2 ? outcome : OK);
      await outbox.send(newCall('m'));
      assert.equal((await outbox.send(missedHangup('m'))).kind, 'delivered');
      assert.deepEqual(poster.of('m'), ['newCall', 'hangup', 'hangup', 'hangup']);
      outbox.close();
    });
  }

  test(
    'answers and the hangups of answered, outbound and forwarded ' +
      'calls are sent again after a timeout (a repeat only moves a time)',
    async () => {
      const { outbox, poster } = rig();
      const seen = new Set<string>();
      poster.answer = (r) => {
        const key = `${r.callId}:${r.event}`;
        if (r.event === 'newCall' || seen.has(key)) return OK;
        seen.add(key);
        return TIMEOUT;
      };
      await Promise.all([
        wholeCall(outbox, 'answered'),
        Promise.all([
          outbox.send(newCall('out', 'out')),
          outbox.send({ event: 'hangup', ...base('out', 'out'), cause: 'noAnswer' }),
        ]),
        Promise.all([
          outbox.send(newCall('fwd')),
          outbox.send({ event: 'hangup', ...base('fwd'), cause: 'forwarded' }),
        ]),
      ]);
      assert.deepEqual(poster.of('answered'), ['newCall', 'answer', 'answer', 'hangup', 'hangup']);
      assert.deepEqual(poster.of('out'), ['newCall', 'hangup', 'hangup']);
      assert.deepEqual(poster.of('fwd'), ['newCall', 'hangup', 'hangup']);
      outbox.close();
    },
  );

  test(
    'a missed-call hangup in flight when the adapter died ' + 'is not sent again after the restart; other events are',
    async () => {
      const store = new OutboxStore(':memory:');
      const first = rig({}, store);
      first.poster.answer = (r) => (r.event === 'newCall' ? OK : 'hold');
      await first.outbox.send(newCall('m'));
      await first.outbox.send(newCall('a'));
      void first.outbox.send(missedHangup('m'));
      void first.outbox.send(answer('a'));
      await until(() => first.poster.held().length === 2, 'both requests on their way');
      first.outbox.close(); // SIGKILL: nothing more happens in this process

      const second = rig({}, store);
      assert.equal(second.outbox.restore(), 1);
      await second.outbox.drain(2000);
      assert.deepEqual(
        second.poster.requests.map((r) => `${r.callId}:${r.event}`),
        ['a:answer'],
      );
      assert.equal(second.dropped['unconfirmed'], 1);
      assert.ok(
        second.lines.some(
          (l) => /on its way to Zammad when the adapter stopped/.test(l.message) && l.fields['callId'] === 'm',
        ),
      );
      assert.equal(store.count(), 0);
      second.outbox.close();
    },
  );

  test('verdict rules: which events are at-most-once', () => {
    const body = (p: Record<string, string>) => new URLSearchParams(p).toString();
    assert.equal(atMostOnce('hangup', body({ direction: 'in', cause: 'cancel' })), true);
    assert.equal(atMostOnce('hangup', body({ direction: 'in', cause: 'noAnswer' })), true);
    assert.equal(
      atMostOnce('hangup', body({ direction: 'in', cause: 'normalClearing', answeringNumber: '2000' })),
      false,
    );
    assert.equal(atMostOnce('hangup', body({ direction: 'in', cause: 'forwarded' })), false);
    assert.equal(atMostOnce('hangup', body({ direction: 'out', cause: 'noAnswer' })), false);
    assert.equal(atMostOnce('answer', body({ direction: 'in' })), false);
    const kind = (o: HttpOutcome, once = false): Verdict['kind'] => verdictOf('hangup', o, { atMostOnce: once }).kind;
    assert.equal(
      kind({ kind: 'failure', code: 'X', error: 'unknown whether sent' }, true),
      'unconfirmed',
      'unknown counts as maybe sent',
    );
    assert.equal(kind(TIMEOUT, false), 'retry');
    assert.equal(
      kind(status(422, '{"error":"Feature is disabled, please contact your administrator!"}'), true),
      'configFault',
    );
  });
});

describe('configuration faults (401, 422 disabled)', () => {
  test('one log line naming the cause, events parked and probed, everything delivered once it is fixed', async () => {
    const { outbox, poster, lines } = rig({ retryBaseMs: 10, retryMaxMs: 40 });
    let fixed = false;
    poster.answer = () => (fixed ? OK : BAD_TOKEN);
    const calls = ['p', 'q', 'r', 's', 't'];
    const all = Promise.all(calls.map((id) => wholeCall(outbox, id)));
    await until(() => outbox.configFault !== undefined, 'the fault is known');
    assert.match(outbox.configFault ?? '', /wrong token/);
    // While it lasts, lanes are parked: only the fresh newCalls try once, then one probe at a time.
    await new Promise((r) => setTimeout(r, 150));
    const during = poster.requests.length;
    assert.ok(during <= calls.length + 8, `parked, not retried per event (${during} requests in 150 ms)`);
    const errors = lines.filter((l) => l.level === 'error');
    assert.equal(errors.length, 1, errors.map((l) => l.message).join('\n'));
    assert.match(errors[0]?.message ?? '', /wrong token.*401.*Events are kept/);
    fixed = true;
    const verdicts = await alive(all);
    assert.ok(verdicts.flat().every((v) => v.kind === 'delivered'));
    assert.equal(outbox.configFault, undefined);
    assert.ok(lines.some((l) => l.message === 'Zammad accepts events again'));
    for (const id of calls)
      assert.deepEqual(
        poster.of(id).filter((e, i, a) => a.indexOf(e) === i),
        ['newCall', 'answer', 'hangup'],
        id,
      );
    outbox.close();
  });

  test(
    'a ringing caller hears of the fault at once (early), while ' +
      'the newCall itself stays parked and is delivered once mended',
    async () => {
      const { outbox, poster } = rig({ retryBaseMs: 10, retryMaxMs: 40 });
      let fixed = false;
      poster.answer = () => (fixed ? OK : BAD_TOKEN);
      const heard: Verdict[] = [];
      const settled: { final?: Verdict } = {};
      void alive(outbox.send(newCall('e'), (v) => heard.push(v))).then((v) => (settled.final = v));
      await until(() => heard.length > 0, 'early verdict');
      assert.equal(heard[0]?.kind, 'configFault');
      const final = () => settled.final;
      assert.equal(final(), undefined, 'the event is not settled: it waits for the fix');
      fixed = true;
      await until(() => final() !== undefined, 'delivered after the fix');
      assert.equal(final()?.kind, 'delivered');
      assert.equal(heard.length, 1, 'told once');
      outbox.close();
    },
  );

  test('a second kind of fault (integration switched off) is named once too', async () => {
    const { outbox, poster, lines } = rig({ retryBaseMs: 10, retryMaxMs: 40 });
    poster.answer = () => BAD_TOKEN;
    void outbox.send(newCall('f1'));
    await until(() => outbox.configFault !== undefined, 'first fault');
    poster.answer = () => status(422, '{"error":"Feature is disabled, please contact your administrator!"}');
    void outbox.send(newCall('f2'));
    void outbox.send(newCall('f3'));
    await until(() => /disabled/.test(outbox.configFault ?? ''), 'second fault');
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(lines.filter((l) => l.level === 'error').length, 2);
    outbox.close();
  });
});

describe('bounds: age and size, never silent', () => {
  test('events older than the maximum age are dropped, logged and counted; later events of that call too', async () => {
    const { outbox, poster, store, dropped, clock, lines } = rig({
      maxAgeMs: 60_000,
      retryBaseMs: 1000,
      retryMaxMs: 1000,
    });
    poster.answer = () => status(503);
    const nc = outbox.send(newCall('old'));
    const ans = outbox.send(answer('old'));
    void outbox.send(newCall('young'));
    await until(() => poster.requests.length >= 2, 'first tries');
    clock.now += 30_000;
    void outbox.send(newCall('newer'));
    clock.now += 40_000; // 'old' and 'young' are 70 s old, 'newer' 40 s
    outbox.sweep();
    assert.equal((await nc).kind, 'refused');
    assert.equal((await ans).kind, 'refused');
    assert.equal(dropped['age'], 3);
    assert.equal(outbox.depth, 1);
    assert.equal(store.count(), 1);
    assert.ok(
      lines.some((l) => l.level === 'error' && /OUTBOX_MAX_AGE_HOURS/.test(l.message) && l.fields['callId'] === 'old'),
    );
    // Zammad never got its newCall: its hangup would be refused for ever, so it is dropped at once.
    assert.equal((await outbox.send(answeredHangup('old'))).kind, 'refused');
    assert.equal(dropped['age'], 4);
    assert.deepEqual(
      store.openCalls().map((c) => c.callId),
      ['newer'],
      'a restart will not close the dropped calls',
    );
    outbox.close();
  });

  test('a full outbox drops its oldest call, logged and counted', async () => {
    const { outbox, poster, dropped, lines } = rig({ maxEvents: 4, retryBaseMs: 1000, retryMaxMs: 1000 });
    poster.answer = () => status(503);
    const first = outbox.send(newCall('c1'));
    void outbox.send(answer('c1'));
    void outbox.send(newCall('c2'));
    void outbox.send(answer('c2'));
    await until(() => poster.requests.length >= 2, 'first tries');
    void outbox.send(newCall('c3'));
    assert.equal((await first).kind, 'refused');
    assert.equal(dropped['full'], 2);
    assert.equal(outbox.depth, 3);
    assert.ok(lines.some((l) => l.level === 'error' && /outbox full/.test(l.message) && l.fields['callId'] === 'c1'));
    outbox.close();
  });

  test('a refused newCall takes the rest of its call with it, and the call is no longer open', async () => {
    const { outbox, poster, store, dropped } = rig();
    poster.answer = (r) => (r.event === 'newCall' ? status(422, '{"error":"Invalid direction!"}') : OK);
    const [nc, ans] = await Promise.all([outbox.send(newCall('bad')), outbox.send(answer('bad'))]);
    assert.equal(nc.kind, 'refused');
    assert.equal(ans.kind, 'refused');
    assert.equal((await outbox.send(answeredHangup('bad'))).kind, 'refused');
    assert.deepEqual(poster.of('bad'), ['newCall']);
    assert.equal(dropped['refused'], 3);
    assert.deepEqual(store.openCalls(), []);
    assert.equal(store.count(), 0);
    outbox.close();
  });
});

describe('bounded concurrency', () => {
  test(
    'lanes recovering at once never starve a fresh newCall: the ' +
      'backlog leaves a connection free, and a fresh newCall goes first',
    async () => {
      const store = new OutboxStore(':memory:');
      for (let i = 0; i < 30; i++) {
        const id = `backlog-${i}`;
        const facts = { callId: id, direction: 'in', from: '1', to: '2' };
        store.add(
          'default',
          { ...facts, event: 'newCall' },
          `event=newCall&callId=${id}&direction=in&from=1&to=2`,
          999_000,
        );
        store.add(
          'default',
          { ...facts, event: 'hangup', answeringNumber: '2' },
          `event=hangup&callId=${id}&direction=in&from=1&to=2&cause=normalClearing&answeringNumber=2`,
          999_000,
        );
      }
      const { outbox, poster } = rig({ concurrency: 4 }, store);
      poster.answer = () => 'hold';
      assert.equal(outbox.restore(), 60);
      await until(() => poster.held().length === 3, 'the backlog in flight');
      await new Promise((r) => setTimeout(r, 10));
      assert.equal(poster.held().length, 3, 'the backlog takes 3 of 4 connections');

      const ringing = outbox.send(newCall('ringing'));
      await until(() => poster.requests.some((r) => r.callId === 'ringing'), 'the fresh newCall goes out at once');
      assert.equal(poster.held().length, 4);

      // All connections busy: two more callers ring. They wait ahead of the 28 calls in the backlog.
      void outbox.send(newCall('ring-2'));
      void outbox.send(newCall('ring-3'));
      poster.held()[0]?.reply(OK);
      await until(() => poster.requests.length === 5, 'a connection is free');
      assert.equal(poster.requests[4]?.callId, 'ring-2');
      poster
        .held()
        .find((r) => r.callId === 'ringing')
        ?.reply(OK);
      assert.equal((await ringing).kind, 'delivered');
      await until(() => poster.requests.length === 6, 'the next one');
      assert.equal(poster.requests[5]?.callId, 'ring-3');

      poster.answer = () => OK;
      for (const r of poster.held()) r.reply(OK);
      assert.equal(await outbox.drain(5000), true);
      assert.ok(poster.maxInFlight <= 4, `never more than 4 requests in flight (${poster.maxInFlight})`);
      outbox.close();
    },
  );
});

describe('drain, restore and the call journal', () => {
  test('drain resolves true once everything is delivered, false when the time is over', async () => {
    const { outbox, poster } = rig();
    poster.answer = () => 'hold';
    void wholeCall(outbox, 'd');
    assert.equal(await outbox.drain(30), false);
    poster.answer = () => OK;
    poster.held()[0]?.reply(OK);
    assert.equal(await outbox.drain(2000), true);
    assert.equal(await outbox.drain(0), true);
    outbox.close();
  });

  test('what an earlier run left on disk is delivered in its order', async () => {
    const store = new OutboxStore(':memory:');
    const first = rig({}, store);
    first.poster.answer = () => REFUSED;
    void wholeCall(first.outbox, 'left');
    void first.outbox.send(newCall('other'));
    await until(() => first.poster.requests.length >= 2, 'tried');
    first.outbox.close();
    const second = rig({}, store);
    assert.equal(second.outbox.restore(), 4);
    await second.outbox.drain(2000);
    assert.deepEqual(second.poster.of('left'), ['newCall', 'answer', 'hangup']);
    assert.deepEqual(second.poster.of('other'), ['newCall']);
    second.outbox.close();
  });

  test(
    'the store journals a call with its events, in one ' + 'transaction: newCall opens, answer marks, hangup closes',
    () => {
      const store = new OutboxStore(':memory:');
      // The journal comes from the post's fields; the body is stored as it is and not read again.
      const facts = { callId: 'j', direction: 'in', from: '49301', to: '49302' };
      store.add('default', { ...facts, event: 'newCall', queue: 'sales' }, 'event=newCall&opaque', 5);
      assert.deepEqual(store.openCalls(), [
        {
          callId: 'j',
          endpoint: 'default',
          facts: JSON.stringify({ ...facts, queue: 'sales' }),
          answered: false,
          answeringNumber: null,
          startedAt: 5,
          trusted: true,
        },
      ]);
      store.add('default', { ...facts, event: 'answer', answeringNumber: '2002' }, 'event=answer&opaque', 6);
      assert.equal(store.openCalls()[0]?.answered, true);
      assert.equal(store.openCalls()[0]?.answeringNumber, '2002');
      store.add('default', { ...facts, event: 'hangup' }, 'event=hangup&opaque', 7);
      assert.deepEqual(store.openCalls(), []);
      assert.equal(store.count(), 3, 'the events stay until delivered');
    },
  );
});

describe('an endpoint gone from the configuration (tenants, SIGHUP)', () => {
  test(
    'held: events are stored, counted and logged once per call, nothing is sent; a ' +
      'ringing caller is told at once; resume sends them in order to the new poster',
    async () => {
      const { outbox, poster, store, lines, dropped } = rig();
      await outbox.send(newCall('a'));
      outbox.suspend('endpoint "acme" is not in the configuration');
      let told: Verdict | undefined;
      const decision = outbox.send(newCall('b'), (v) => (told = v));
      void outbox.send(answer('a'));
      void outbox.send(answeredHangup('a'));
      await new Promise((r) => setTimeout(r, 30));
      assert.deepEqual(
        poster.requests.map((r) => `${r.callId}:${r.event}`),
        ['a:newCall'],
        'nothing sent while held',
      );
      assert.equal(told, undefined, 'b arrived while held: its caller is not left waiting by the outbox either');
      assert.equal(dropped['held'], 3);
      assert.equal(lines.filter((l) => l.message.startsWith('event kept, not sent')).length, 2, 'one line per call');
      assert.equal(store.pending('default').length, 3);
      const next = new FakePoster();
      outbox.resume(next);
      await until(() => next.requests.length === 3, 'the kept events sent');
      assert.deepEqual(next.of('a'), ['answer', 'hangup']);
      assert.deepEqual(next.of('b'), ['newCall']);
      assert.equal((await decision).kind, 'delivered');
      assert.equal(poster.requests.length, 1, 'the old poster got nothing after the suspension');
      outbox.close();
    },
  );

  test('a ringing caller whose newCall waits when the endpoint goes: told at once, the newCall kept', async () => {
    const { outbox, poster } = rig();
    poster.answer = () => 'hold';
    void outbox.send(newCall('busy'));
    await until(() => poster.held().length === 1, 'in flight');
    let told: Verdict | undefined;
    // A second lane queued behind the held connection is impossible with concurrency 4; hold them all.
    for (let i = 0; i < 3; i++) void outbox.send(newCall(`fill-${i}`));
    await until(() => poster.held().length === 4, 'the pool full');
    void outbox.send(newCall('waiting'), (v) => (told = v));
    outbox.suspend('endpoint "acme" is not in the configuration');
    assert.equal(told?.kind, 'configFault');
    for (const r of poster.held()) r.reply(OK);
    outbox.close();
  });

  test('the age bound drops what was held, loudly', async () => {
    const { outbox, clock, dropped, store } = rig({ maxAgeMs: 60_000 });
    outbox.suspend('gone');
    void outbox.send(newCall('old'));
    void outbox.send(answeredHangup('old'));
    clock.now += 61_000;
    outbox.sweep();
    assert.equal(dropped['age'], 2);
    assert.equal(store.pending('default').length, 0);
    outbox.close();
  });

  test('a new URL (usePoster): the next requests go to it, and a fault of the old one (401) is forgotten', async () => {
    const { outbox, poster } = rig();
    poster.answer = () => BAD_TOKEN;
    void outbox.send(newCall('x'));
    await until(() => outbox.configFault !== undefined, 'the fault');
    const next = new FakePoster();
    outbox.usePoster(next);
    assert.equal(outbox.configFault, undefined);
    await alive(until(() => next.of('x').includes('newCall'), 'sent with the new token'));
    outbox.close();
  });

  test('two endpoints on one store: each outbox restores and sends only its own events', async () => {
    const store = new OutboxStore(':memory:');
    const acme = rig({}, store, new FakePoster(), 'acme');
    acme.poster.answer = () => REFUSED;
    const globex = rig({}, store, new FakePoster(), 'globex');
    globex.poster.answer = () => REFUSED;
    void acme.outbox.send(newCall('a1'));
    void globex.outbox.send(newCall('g1'));
    void globex.outbox.send(answer('g1'));
    await until(() => acme.poster.requests.length > 0 && globex.poster.requests.length > 0, 'tried');
    acme.outbox.close();
    globex.outbox.close();
    assert.deepEqual(store.endpoints().sort(), ['acme', 'globex']);
    const acme2 = rig({}, store, new FakePoster(), 'acme');
    const globex2 = rig({}, store, new FakePoster(), 'globex');
    assert.equal(acme2.outbox.restore(), 1);
    assert.equal(globex2.outbox.restore(), 2);
    await until(() => acme2.poster.requests.length === 1 && globex2.poster.requests.length === 2, 'delivered');
    assert.deepEqual(
      acme2.poster.requests.map((r) => r.callId),
      ['a1'],
    );
    assert.deepEqual(
      globex2.poster.requests.map((r) => `${r.callId}:${r.event}`),
      ['g1:newCall', 'g1:answer'],
    );
    assert.deepEqual(
      store
        .openCalls()
        .map((c) => [c.callId, c.endpoint])
        .sort(),
      [
        ['a1', 'acme'],
        ['g1', 'globex'],
      ],
    );
    acme2.outbox.close();
    globex2.outbox.close();
  });
});
