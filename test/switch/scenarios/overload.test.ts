/**
 * Overload against a real FreeSWITCH 1.10.12 (issue 21): a burst of calls larger than Zammad can
 * decide in time — a Zammad that answers newCall after 600 ms, a verdict budget of 300 ms and two
 * connections to it, so at most max(20, 2 × 300 / 40) newCalls may wait for an answer before the
 * adapter stops waiting (overload level 1). Every call routes exactly once, within the bound
 * (ZAMMAD_NEWCALL_TIMEOUT_MS + 1 s), and every call is in Zammad once, complete.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RealSwitch, type FinishedCall } from '../harness.js';
import { bridgeModeExtension } from '../dialplan.js';
import { Leg } from '../legs.js';
import type { Line } from '../adapter.js';
import { common, executions, ms, user } from '../scenario-kit.js';

const FALLBACK = 'cti_test_overload_fallback';
const NUMBER = '493099970120';
const BUDGET_MS = 300;
const ZAMMAD_MS = 600;
const BURST = 40;

let sw: RealSwitch;
let line: Line;

before(async () => {
  sw = await RealSwitch.open();
  line = await sw.line({
    name: 'overload',
    env: { ZAMMAD_NEWCALL_TIMEOUT_MS: String(BUDGET_MS), ZAMMAD_MAX_CONNECTIONS: '2', LOG_LEVEL: 'info' },
  });
  line.zammad.setFault({ kind: 'delay', ms: ZAMMAD_MS }, { events: ['newCall'] });
  await sw.dialplan(
    `00_cti_test_overload_${process.pid}`,
    [
      bridgeModeExtension({
        name: 'cti_test_overload',
        number: NUMBER,
        eslPort: line.eslPort,
        bridge: user('2000'),
        fallback: FALLBACK,
        direction: 'in',
      }),
    ],
    [FALLBACK],
  );
});

after(async () => {
  await sw?.close();
});

function answeredBy2000(done: FinishedCall, from: string) {
  const c = common(done, NUMBER, from);
  return [
    { event: 'newCall', ...c, user: ['Alice Agent'] },
    { event: 'answer', ...c, user: 'Alice Agent', answeringNumber: '2000' },
    { event: 'hangup', ...c, cause: 'normalClearing', answeringNumber: '2000' },
  ];
}

describe('overload on a real FreeSWITCH', () => {
  const title =
    `a burst of ${BURST} calls a slow Zammad cannot decide in time: ` +
    'each routed once, within the bound, and reported once';
  test(title, async () => {
    const calls = Array.from({ length: BURST }, (_, i) => {
      const from = `4930555730${String(i).padStart(2, '0')}`;
      return { i, from, placed: sw.call(`overload${i}`, { to: NUMBER, from }) };
    });
    const done = await Promise.all(calls.map((c) => sw.finished(line, c.placed, { timeoutMs: 90_000 })));
    const bound = BUDGET_MS + 1000;
    for (const [i, d] of done.entries()) {
      const c = calls[i]!;
      await sw.judge(d, () => {
        assert.equal(executions(d.inbound, 'socket').length, 1, `call ${i}: one socket`);
        assert.deepEqual(
          executions(d.inbound, 'bridge').map((e) => e.headers['Application-Data']),
          [user('2000')],
          `call ${i}: routed exactly once`,
        );
        const waited = ms(Leg.at(d.inbound.executed('socket')), Leg.at(d.inbound.executed('bridge')));
        // 700 ms for the switch's own 20 ms clock and a loaded 2-core machine, as bridge-mode.test.ts.
        assert.ok(waited < bound + 700, `call ${i}: bridged ${waited} ms after socket (bound ${bound} ms)`);
        assert.deepEqual(
          d.posts.filter((p) => p.status === 200).map((p) => p.params),
          answeredBy2000(d, c.from),
          `call ${i}: every event once, in order`,
        );
      });
    }
    assert.equal(new Set(done.map((d) => d.callId)).size, BURST);
    const text = await (await fetch(`http://127.0.0.1:${line.adapter.statusPort}/metrics`)).text();
    const skipped = Number(
      /cti_newcall_verdict_skipped_total\{endpoint="default",reason="overload"\} (\d+)/.exec(text)?.[1] ?? 0,
    );
    assert.ok(skipped > 0, 'callers went on without waiting for the decision Zammad could not give in time');
    assert.ok(
      line.adapter.lines.some((l) => /^overload \(\d+ newCalls not yet answered by Zammad\)/.test(l.message)),
      'the level change is logged',
    );
  });
});
