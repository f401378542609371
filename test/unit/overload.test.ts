/** The overload levels (src/process/overload.ts): entered at once, left one step at a time after a calm hold. */
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
const QUIET: LoadSample = { delayMs: 2, owed: 3, unanswered: 5 };

/** Feeds one sample every 100 ms from `start`; the level after each, and the changes in order. */
function run(samples: LoadSample[], from: OverloadState = NORMAL): { levels: Level[]; changes: string[] } {
  let state = from;
  const levels: Level[] = [];
  const changes: string[] = [];
  samples.forEach((sample, i) => {
    const next = overloadStep(state, sample, i * 100, LIMITS);
    state = next.state;
    levels.push(state.level);
    if (next.change) changes.push(`${next.change.from}→${next.change.to}: ${next.change.why}`);
  });
  return { levels, changes };
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
  assert.deepEqual(run(times(50, QUIET)), { levels: times(50, 0), changes: [] });
});

test('a stall of the loop goes straight to refusing, then steps down one level at a time after each hold', () => {
  const { levels, changes } = run([QUIET, { ...QUIET, delayMs: 2000 }, ...times(60, QUIET)]);
  assert.equal(levels[1], 2);
  // Level 2 is held 1 s of calm (samples 2..12); level 1 counts its 3 s from the next sample (13..43).
  assert.equal(levels.indexOf(1), 12);
  assert.equal(levels.indexOf(0, 2), 43);
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

test('calls accepted and not yet routed past the mark refuse new connections', () => {
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
  assert.ok(levels.slice(0, 20).every((l) => l === 2));
  assert.equal(levels[20], 1);
  // From normal, the same sample only reaches level 1.
  assert.deepEqual(run([between]).levels, [1]);
});

test('a burst while stepping down goes up again at once', () => {
  const { levels } = run([{ ...QUIET, delayMs: 1500 }, ...times(12, QUIET), { ...QUIET, owed: 900 }]);
  assert.equal(levels[11], 1);
  assert.equal(levels.at(-1), 2);
});
