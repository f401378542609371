/**
 * The overload levels (src/process/overload.ts): entered at once, left one step at a time after a calm hold;
 * level 2's share of new calls steered by how busy and how far behind the loop is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  NORMAL,
  overloadLimits,
  overloadStep,
  type Level,
  type LoadSample,
  type OverloadState,
} from '../../src/process/overload.js';

const LIMITS = overloadLimits(2000, 8);
const QUIET: LoadSample = { delayMs: 2, owed: 3, unanswered: 5, busy: 0.3, routed: 30, sampleMs: 100, accepted: 30 };

/** Feeds one sample every 100 ms from `start`; the level after each, and the changes in order. */
function run(
  samples: LoadSample[],
  from: OverloadState = NORMAL,
): { levels: Level[]; changes: string[]; admits: number[] } {
  let state = from;
  const levels: Level[] = [];
  const admits: number[] = [];
  const changes: string[] = [];
  samples.forEach((sample, i) => {
    const next = overloadStep(state, sample, i * 100, LIMITS);
    state = next.state;
    levels.push(state.level);
    admits.push(Math.round(state.admit * 1000) / 1000);
    if (next.change) changes.push(`${next.change.from}→${next.change.to}: ${next.change.why}`);
  });
  return { levels, changes, admits };
}
const times = <T>(n: number, x: T): T[] => Array.from({ length: n }, () => x);

test('the limits follow ZAMMAD_NEWCALL_TIMEOUT_MS and ZAMMAD_MAX_CONNECTIONS', () => {
  assert.deepEqual(LIMITS.delay1, { high: 500, low: 200 });
  assert.deepEqual(LIMITS.delay2, { high: 1000, low: 400 });
  assert.deepEqual(LIMITS.unanswered1, { high: 400, low: 200 });
  // A short timeout keeps floors: a busy but healthy loop is not overload.
  const short = overloadLimits(200, 1);
  assert.deepEqual(short.delay1, { high: 100, low: 50 });
  assert.deepEqual(short.delay2, { high: 200, low: 100 });
  assert.equal(short.unanswered1.high, 20);
});

test('quiet samples stay normal', () => {
  assert.deepEqual(run(times(50, QUIET)), { levels: times(50, 0), changes: [], admits: times(50, 1) });
});

test('a stall of the loop goes straight to shedding, then steps down one level at a time after each hold', () => {
  const { levels, changes, admits } = run([QUIET, { ...QUIET, delayMs: 2000 }, ...times(60, QUIET)]);
  assert.equal(levels[1], 2);
  assert.equal(admits[1], 0.5, 'level 2 starts by taking half the new calls');
  // With room (30 % busy) the share grows by 0.1 a sample: every call taken again by sample 6;
  // level 2 is then held 1 s of calm (samples 6..16); level 1 counts its 3 s from the next (17..47).
  assert.deepEqual(admits.slice(1, 7), [0.5, 0.6, 0.7, 0.8, 0.9, 1]);
  assert.equal(levels.indexOf(1), 16);
  assert.equal(levels.indexOf(0, 2), 47);
  assert.deepEqual(changes, ['0→2: event loop 2000 ms late', '2→1: calm for 1000 ms', '1→0: calm for 3000 ms']);
});

test('a late loop short of the level-2 mark stops the decision wait only', () => {
  const { levels, changes } = run([{ ...QUIET, delayMs: 600 }]);
  assert.deepEqual(levels, [1]);
  assert.deepEqual(changes, ['0→1: event loop 600 ms late']);
});

test('newCalls Zammad has not answered past its capacity stop the wait; they must halve before it resumes', () => {
  const slow = { ...QUIET, unanswered: 450 };
  const { levels } = run([slow, ...times(40, { ...QUIET, unanswered: 300 }), ...times(31, QUIET)]);
  assert.equal(levels[0], 1);
  assert.ok(
    levels.slice(0, 41).every((l) => l === 1),
    'above the low mark: level 1 stays',
  );
  assert.equal(levels.at(-1), 0);
  assert.equal(levels.at(-2), 1, 'left only after the whole hold');
});

test('calls accepted and not yet routed past the mark start shedding', () => {
  const { levels, changes } = run([{ ...QUIET, owed: 600 }]);
  assert.deepEqual(levels, [2]);
  assert.match(changes[0] ?? '', /600 calls accepted and not yet routed/);
});

test('hysteresis: a sample between the low and high marks neither enters nor leaves, and restarts the hold', () => {
  const between = { ...QUIET, delayMs: 700 }; // above level 2's low mark (400), below its high (1000)
  const { levels } = run([
    { ...QUIET, delayMs: 1500 },
    ...times(8, QUIET),
    between, // the hold starts again after this
    ...times(10, QUIET),
    QUIET,
  ]);
  // Every call is taken again from sample 5 on; the between sample (9) restarts the hold.
  assert.ok(levels.slice(0, 20).every((l) => l === 2));
  assert.equal(levels[20], 1);
  // From normal, the same sample only reaches level 1.
  assert.deepEqual(run([between]).levels, [1]);
});

test('a burst while stepping down goes up again at once', () => {
  const { levels } = run([{ ...QUIET, delayMs: 1500 }, ...times(16, QUIET), { ...QUIET, owed: 900 }]);
  assert.equal(levels[16], 1);
  assert.equal(levels.at(-1), 2);
});

/** A saturated loop: 97 % busy, `owed` calls waiting, `routed` of them routed in the 100 ms sample. */
const saturated = (owed: number, routed: number): LoadSample => ({ ...QUIET, busy: 0.97, owed, routed });

test('a saturated loop whose calls stay behind sheds: 97 % busy, calls 300 ms behind, two samples in a row', () => {
  const { levels, changes } = run([saturated(450, 150), saturated(450, 150)]);
  assert.deepEqual(levels, [0, 2]);
  assert.deepEqual(changes, ['0→2: event loop busy 97 %, calls 300 ms behind']);
});

test('a burst the loop works through is not shed: behind for one sample only', () => {
  const { levels } = run([saturated(200, 1), saturated(20, 180), saturated(200, 1), QUIET]);
  assert.deepEqual(levels, [0, 0, 0, 0]);
});

test('a saturated loop that keeps up does not shed: closed-loop load, 64 calls 40 ms behind', () => {
  const { levels } = run(times(30, saturated(64, 160)));
  assert.deepEqual(levels, times(30, 0));
});

test('a loop with room whose calls wait does not shed: the wait is not the process (30 % busy, 1 s behind)', () => {
  assert.deepEqual(run([{ ...QUIET, owed: 200, routed: 20 }]).levels, [0]);
});

test('level 2 cuts its share while saturated and behind, keeps it while busy and current, raises it with room', () => {
  const { admits, levels } = run([
    saturated(450, 150), // strained once
    saturated(450, 150), // enter at 0.5
    saturated(200, 150), // behind (133 ms): × 0.75
    saturated(200, 150), // × 0.75
    saturated(20, 150), // busy, keeping up (13 ms): kept
    { ...QUIET, busy: 0.5 }, // room: + 0.1
  ]);
  assert.deepEqual(levels, [0, ...times(5, 2)]);
  assert.deepEqual(admits, [1, 0.5, 0.375, 0.281, 0.281, 0.381]);
});

test('the share never falls below its floor: some calls are always taken and reported', () => {
  const { admits } = run(times(40, saturated(450, 150)));
  assert.equal(admits.at(-1), LIMITS.admit.floor);
  assert.ok(admits.every((a) => a >= LIMITS.admit.floor));
});

test('level 2 is not left while a share of the calls is still shed, however calm the inputs', () => {
  const low: OverloadState = { level: 2, admit: 0.1 };
  const { levels, admits } = run(times(25, QUIET), low);
  // 0.1 → 1 in nine samples (the share is raised first), then one second of calm with every call taken.
  assert.equal(admits.indexOf(1), 8);
  assert.equal(levels.indexOf(1), 18);
});

test('connections in the kernel: 128 waiting 100 ms or more two samples in a row, or half the backlog, shed', () => {
  // 100 accepted in 100 ms: 150 waiting is 150 ms of waiting.
  const waiting = (queued: number, accepted = 100): LoadSample => ({ ...QUIET, busy: 0.95, queued, accepted });
  assert.deepEqual(run([waiting(150), QUIET, waiting(150)]).levels, [0, 0, 0], 'a queue that drains is a burst');
  assert.deepEqual(run([waiting(200, 500), waiting(200, 500)]).levels, [0, 0], 'taken within 40 ms: keeping up');
  // A switch's 64 calls in progress on a busy loop: some always wait, and not for long: no queue.
  assert.deepEqual(run(times(10, waiting(60, 40))).levels, times(10, 0), 'fewer than 128: no queue');
  const { levels, changes } = run([waiting(150), waiting(140)]);
  assert.deepEqual(levels, [0, 2]);
  assert.deepEqual(changes, ['0→2: 140 connections waiting to be accepted (140 ms)']);
  assert.deepEqual(run([waiting(300, 3000)]).changes, ['0→2: 300 connections waiting to be accepted (10 ms)']);
});

test('with the kernel queue known, level 2 raises its share while nothing waits, even on a loop always busy', () => {
  const from: OverloadState = { level: 2, admit: 0.5 };
  const busyEmpty: LoadSample = { ...QUIET, busy: 1, queued: 0 };
  assert.deepEqual(run([busyEmpty, busyEmpty], from).admits, [0.6, 0.7]);
  // Not known (not Linux): a loop busy all the time keeps its share.
  assert.deepEqual(run([{ ...QUIET, busy: 1 }], from).admits, [0.5]);
  // Waiting connections on a busy loop: cut (32 or more waiting 50 ms or more).
  assert.deepEqual(run([{ ...QUIET, busy: 0.9, queued: 40 }], from).admits, [0.375]);
  assert.deepEqual(run([{ ...QUIET, busy: 0.9, queued: 20 }], from).admits, [0.6], 'a few waiting: room');
});

test('level 2 is not left while connections wait in the kernel', () => {
  const { levels } = run(times(30, { ...QUIET, queued: 40, busy: 0.5 }), { level: 2, admit: 1 });
  assert.ok(levels.every((l) => l === 2));
});

test('a few calls waiting on a slow peer are not a queue, however busy the loop', () => {
  assert.deepEqual(run(times(5, saturated(5, 0))).levels, times(5, 0));
});
