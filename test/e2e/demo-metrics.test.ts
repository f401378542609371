/** `demo` places real calls through the adapter; afterwards /metrics must show what happened. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runDemo } from '@freeswitch-zammad-cti/sim/demo';
import { childEnv } from '../child-env.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** `name{labels} value` lines of a Prometheus text page, as a map. */
function samples(page: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of page.split('\n')) {
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m?.[1] && m[2]) out.set(m[1], Number(m[2]));
  }
  return out;
}

test(
  "demo: seven calls in Zammad's log (two in dialplan mode), and /metrics shows calls, posts, latencies, " +
    'outbox and connections',
  async () => {
    const lines: string[] = [];
    const run = await runDemo((l) => lines.push(l), { keepRunning: true });
    try {
      assert.equal(run.entries.length, 7);
      assert.equal(run.placed, 7);
      assert.deepEqual(
        run.entries.map((e) => [e.direction, e.cause, e.done]),
        [
          ['in', 'normalClearing', true],
          ['in', 'busy', false],
          ['in', 'busy', false],
          ['in', 'cancel', false],
          ['in', 'normalClearing', true],
          ['in', 'normalClearing', false],
          ['out', 'normalClearing', true],
        ],
      );
      assert.ok(
        lines.some((l) => l.includes('Bob Example') && l.includes('normalClearing')),
        'the printed caller log names who answered',
      );
      assert.deepEqual(
        run.entries.map((e) => [e.queue, e.answeredBy ?? '']).slice(4, 6),
        [
          ['support', 'Bob Example'],
          ['49301234569', 'voicemail'],
        ],
        'dialplan mode: the queue answered by Bob, the voicemail',
      );

      const base = `http://127.0.0.1:${run.statusPort}`;
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
      const ready = await fetch(`${base}/readyz`);
      assert.equal(ready.status, 200, await ready.clone().text());
      const m = samples(await (await fetch(`${base}/metrics`)).text());
      assert.equal(m.get('cti_calls_in_progress'), 0);
      assert.equal(m.get('cti_calls_total{cause="normalClearing"}'), 4);
      assert.equal(m.get('cti_calls_total{cause="busy"}'), 2);
      assert.equal(m.get('cti_calls_total{cause="cancel"}'), 1);
      assert.equal(m.get('cti_zammad_posts_total{endpoint="default",event="newCall",status="200"}'), 7);
      assert.equal(m.get('cti_zammad_posts_total{endpoint="default",event="answer",status="200"}'), 4);
      assert.equal(m.get('cti_zammad_posts_total{endpoint="default",event="hangup",status="200"}'), 7);
      assert.equal(m.get('cti_zammad_post_seconds_count{endpoint="default",event="hangup"}'), 7);
      assert.equal(m.get('cti_newcall_decision_seconds_count{endpoint="default",decision="reject"}'), 1);
      assert.equal(m.get('cti_newcall_decision_seconds_count{endpoint="default",decision="dial"}'), 1);
      assert.equal(m.get('cti_newcall_decision_seconds_count{endpoint="default",decision="continue"}'), 5);
      assert.equal(m.get('cti_outbox_events{endpoint="default"}'), 0);
      assert.equal(m.get('cti_outbox_oldest_seconds{endpoint="default"}'), 0);
      assert.equal(m.get('cti_zammad_config_fault{endpoint="default"}'), 0);
      assert.equal(m.get('cti_esl_rejected_connections_total'), 0);
      assert.ok((m.get('cti_process_resident_memory_bytes') ?? 0) > 0);
    } finally {
      await run.stop();
    }
  },
);

test("`npm run demo` as a user runs it: exit 0 once every call it placed is in Zammad's log", async () => {
  // The script's own command line, with this node: what `npm run demo` runs.
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const [node, ...args] = (pkg.scripts['demo'] ?? '').split(' ');
  assert.equal(node, 'node');
  const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve) =>
    execFile(process.execPath, args, { cwd: ROOT, env: childEnv(), timeout: 60_000 }, (err, out) =>
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout: out }),
    ),
  );
  assert.match(stdout, /Zammad's caller log/);
  assert.equal(stdout.match(/hangup/g)?.length, 7, stdout);
  assert.equal(code, 0, stdout);
});
