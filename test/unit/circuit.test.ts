/** Whether Zammad is known to be unreachable (src/zammad/circuit.ts): the state machine on its own. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CLOSED,
  noAnswer,
  OPEN_AFTER_FAILURES,
  PROBE_MAX_MS,
  probeDelay,
  step,
  verdictCanArrive,
  type Circuit,
  type CircuitInput,
} from '../../src/zammad/circuit.js';

const fail = (now = 1000, probe = false, reason = 'ECONNREFUSED: connect ECONNREFUSED'): CircuitInput => ({
  type: 'failed',
  reason,
  probe,
  now,
});
const ANSWERED: CircuitInput = { type: 'answered' };
const PROBE: CircuitInput = { type: 'probe' };

/** Runs the inputs from `c`; the state after each, and the changes in order. */
function run(c: Circuit, inputs: CircuitInput[]): { states: Circuit[]; changes: string[] } {
  const states: Circuit[] = [];
  const changes: string[] = [];
  for (const input of inputs) {
    const next = step(c, input);
    c = next.circuit;
    states.push(c);
    if (next.change) changes.push(next.change);
  }
  return { states, changes };
}

test(
  `opens after ${OPEN_AFTER_FAILURES} failures in a row, ` +
    'not before; an answer between them starts the count again',
  () => {
    assert.equal(OPEN_AFTER_FAILURES, 3);
    const two = run(CLOSED, [fail(), fail()]);
    assert.deepEqual(
      two.states.map((s) => s.state),
      ['closed', 'closed'],
    );
    assert.deepEqual(two.changes, []);
    const interrupted = run(CLOSED, [fail(), fail(), ANSWERED, fail(), fail()]);
    assert.deepEqual(interrupted.changes, [], 'no three failures in a row');
    const three = run(CLOSED, [fail(1), fail(2), fail(3, false, '503')]);
    assert.deepEqual(three.changes, ['opened']);
    assert.deepEqual(three.states.at(-1), { state: 'open', since: 3, probes: 0, reason: '503' });
  },
);

test('open: no decision can come; more failures change nothing; a probe half-opens it', () => {
  const open = run(CLOSED, [fail(), fail(), fail()]).states.at(-1) as Circuit;
  assert.equal(verdictCanArrive(CLOSED), true);
  assert.equal(verdictCanArrive(open), false);
  assert.deepEqual(step(open, fail(5000)), { circuit: open }, 'a request sent before it opened');
  const half = step(open, PROBE).circuit;
  assert.equal(half.state, 'halfOpen');
  assert.equal(verdictCanArrive(half), false, 'while the probe is on its way, callers do not wait either');
  assert.deepEqual(step(half, PROBE).circuit, half, 'one probe at a time');
  assert.deepEqual(step(CLOSED, PROBE).circuit, CLOSED, 'nothing to probe when closed');
});

test(
  "half-open: the probe's failure opens it again, one " + "more probe counted; another request's failure does not",
  () => {
    const half = run(CLOSED, [fail(), fail(), fail(), PROBE]).states.at(-1) as Circuit;
    assert.deepEqual(step(half, fail(9, false)).circuit, half, 'a straggler from before');
    const reopened = step(half, fail(9, true, 'TIMEOUT'));
    assert.equal(reopened.change, undefined, 'still down: no new line in the log');
    assert.deepEqual(reopened.circuit, { state: 'open', since: 1000, probes: 1, reason: 'TIMEOUT' });
  },
);

test('any answer closes it, from open or half-open, with one change', () => {
  const open = run(CLOSED, [fail(), fail(), fail()]).states.at(-1) as Circuit;
  assert.deepEqual(
    step(open, ANSWERED),
    { circuit: CLOSED, change: 'closed' },
    'a request still in flight when it opened',
  );
  assert.deepEqual(step(step(open, PROBE).circuit, ANSWERED), { circuit: CLOSED, change: 'closed' });
  assert.deepEqual(step(CLOSED, ANSWERED), { circuit: CLOSED }, 'closed stays closed without a change');
});

test(
  'probes: RETRY_BASE_MS after it opened, doubling per failed ' +
    'probe, at most PROBE_MAX_MS (or RETRY_MAX_MS, if lower)',
  () => {
    const retry = { baseMs: 500, maxMs: 60_000 };
    let c = run(CLOSED, [fail(), fail(), fail()]).states.at(-1) as Circuit;
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      delays.push(probeDelay(c, retry));
      c = run(c, [PROBE, fail(0, true)]).states.at(-1) as Circuit;
    }
    assert.equal(PROBE_MAX_MS, 2000);
    assert.deepEqual(delays, [500, 1000, 2000, 2000, 2000, 2000]);
    assert.equal(probeDelay(c, { baseMs: 40, maxMs: 200 }), 200);
  },
);

test('what counts as no answer: no reply, or a proxy standing in for Zammad; anything Zammad says is an answer', () => {
  const reply = (status: number) => ({ kind: 'response' as const, status, body: '{}' });
  assert.equal(
    noAnswer({ kind: 'failure', code: 'ECONNREFUSED', error: 'connect ECONNREFUSED', sent: false }),
    'ECONNREFUSED: connect ECONNREFUSED',
  );
  assert.equal(
    noAnswer({ kind: 'failure', code: 'TIMEOUT', error: 'no answer within 100 ms', sent: true }),
    'TIMEOUT: no answer within 100 ms',
  );
  for (const status of [502, 503, 504]) assert.equal(noAnswer(reply(status)), `Zammad answered ${status}`);
  for (const status of [200, 401, 422, 408, 429, 500])
    assert.equal(noAnswer(reply(status)), undefined, `${status}: Zammad answered`);
});
