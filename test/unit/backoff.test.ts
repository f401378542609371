import { test } from 'node:test';
import assert from 'node:assert/strict';
import { doubling, equalJitter } from '../../src/zammad/backoff.js';

test('doubling: base after the first failure, twice that after each further one, capped at max', () => {
  const bounds = { baseMs: 50, maxMs: 5000 };
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7, 8].map((n) => doubling(n, bounds)),
    [50, 100, 200, 400, 800, 1600, 3200, 5000],
  );
  assert.equal(doubling(10_000, bounds), 5000, 'a long outage waits maxMs, not Infinity');
  assert.equal(doubling(0, bounds), 50, 'no failure yet counts as the first');
  assert.equal(doubling(10_000, { baseMs: 0, maxMs: 5000 }), 0, 'a zero base stays zero, not NaN');
});

test('equalJitter: between half the wait and the whole of it', () => {
  assert.equal(
    equalJitter(1000, () => 0),
    500,
  );
  assert.equal(
    equalJitter(1000, () => 0.5),
    750,
  );
  assert.ok(equalJitter(1000, () => 0.999_999) < 1000);
  for (let i = 0; i < 100; i++) {
    const ms = equalJitter(400);
    assert.ok(ms >= 200 && ms < 400, `${ms}`);
  }
});
