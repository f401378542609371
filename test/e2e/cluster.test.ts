/**
 * WORKERS=2: the real program as a cluster (one primary, two workers sharing the event-socket
 * port), a switch double whose calls go on when the adapter's connection drops, the Zammad
 * double. Calls spread over the workers and reach Zammad once each, in order; metrics and
 * /readyz speak for the whole cluster; SIGTERM drains; a worker killed mid-call is replaced and
 * its calls are closed in Zammad; a killed primary takes its workers with it, and the next
 * start closes what was left open.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { FakeSwitch, type CallScript, type SwitchCall, type TargetBehaviour } from '@freeswitch-zammad-cti/sim/switch';
import { ZammadDouble } from '@freeswitch-zammad-cti/sim/zammad';
import { startAdapter, tempOutbox, type AdapterProcess } from './adapter-process.js';

const FAST = { ZAMMAD_NEWCALL_TIMEOUT_MS: '1000', ZAMMAD_REQUEST_TIMEOUT_MS: '500', RETRY_BASE_MS: '40', RETRY_MAX_MS: '200', WORKERS: '2' };

let seq = 0;
function inbound(target: TargetBehaviour): CallScript {
  const ext = String(6000 + seq++);
  return {
    channel: { uuid: randomUUID(), callerNumber: `030555${ext}`, destination: '491711234567890', context: 'public', variables: { zammad_users: `Agent ${ext}`, zammad_bridge: `user/${ext}@d` } },
    targets: { [ext]: target },
    originateTimeoutMs: 60_000,
  };
}
const PICK_UP: TargetBehaviour = { kind: 'answer', ringMs: 10 };
const answered = (c: SwitchCall) => c.variables()['bridge_uuid'] !== undefined;

async function until(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const got = (zammad: ZammadDouble, call: SwitchCall) => zammad.postsFor(call.uuid).map((p) => `${p.event}${p.params['cause'] ? `:${String(p.params['cause'])}` : ''}@${p.status}`);

async function metricsText(a: AdapterProcess): Promise<string> {
  return (await fetch(`http://127.0.0.1:${a.statusPort}/metrics`)).text();
}
/** The sum of a metric's samples whose line starts with `prefix` (name, optionally with labels). */
function sample(text: string, prefix: string): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith(prefix) && (l[prefix.length] === ' ' || l[prefix.length] === '{' || prefix.endsWith('}')))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}
async function readyz(a: AdapterProcess): Promise<{ status: number; body: { ready: boolean; checks: Record<string, { ok: boolean; detail?: string }> } }> {
  const res = await fetch(`http://127.0.0.1:${a.statusPort}/readyz`);
  return { status: res.status, body: (await res.json()) as { ready: boolean; checks: Record<string, { ok: boolean; detail?: string }> } };
}

/** Worker id (as in the `worker` log field) of the process that followed each call. */
function workerOf(a: AdapterProcess, call: SwitchCall): unknown {
  return a.lines.find((l) => l.message === 'call' && l['callId'] === call.uuid)?.['worker'];
}
function pidsOf(a: AdapterProcess): Record<string, number> {
  return a.lines.find((l) => l.message === 'workers take calls')?.['pids'] as Record<string, number>;
}
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('WORKERS=2', () => {
  test('calls spread over both workers; each reaches Zammad once, in order; /metrics sums the workers; /readyz names them; one listening line', async () => {
    const sw = new FakeSwitch();
    const zammad = new ZammadDouble({ token: 'tok-cluster-spread' });
    await zammad.start();
    const adapter = await startAdapter({ ZAMMAD_CTI_URL: zammad.url, ...FAST });
    const calls: SwitchCall[] = [];
    try {
      assert.equal(adapter.lines.filter((l) => l.message === 'listening for FreeSWITCH').length, 1, 'one listening line, from the primary');
      const pids = pidsOf(adapter);
      assert.equal(Object.keys(pids).length, 2);
      const ready = await readyz(adapter);
      assert.equal(ready.status, 200);
      assert.deepEqual(ready.body.checks['listener'], { ok: true, detail: '2 workers listening' });

      const to = { host: '127.0.0.1', port: adapter.eslPort };
      calls.push(...(await Promise.all(Array.from({ length: 12 }, () => sw.placeCall(to, inbound(PICK_UP))))));
      await until(() => calls.every(answered), 'every call answered');
      await zammad.waitFor((z) => calls.every((c) => z.entry(c.uuid)?.state === 'answer'));
      const during = await metricsText(adapter);
      assert.equal(sample(during, 'cti_calls_in_progress'), 12, 'calls in progress: both workers summed');

      const workers = new Set(calls.map((c) => workerOf(adapter, c)));
      assert.deepEqual([...workers].map(String).sort(), Object.keys(pids).sort(), 'both workers followed calls');
      for (const c of calls) c.hangup();
      await zammad.waitFor((z) => calls.every((c) => z.entry(c.uuid)?.state === 'hangup'));
      await new Promise((r) => setTimeout(r, 200)); // a stray repeat would show up here
      for (const c of calls) assert.deepEqual(got(zammad, c), ['newCall@200', 'answer@200', 'hangup:normalClearing@200'], c.uuid);

      const after = await metricsText(adapter);
      assert.equal(sample(after, 'cti_calls_in_progress'), 0);
      assert.equal(sample(after, 'cti_calls_total{cause="normalClearing"}'), 12);
      assert.equal(sample(after, 'cti_newcall_decision_seconds_count'), 12);
      assert.equal(sample(after, 'cti_zammad_posts_total'), 36);
    } finally {
      for (const c of calls) c.hangup();
      assert.equal(await adapter.stop(), 0);
      await zammad.stop();
    }
  });

  test('SIGTERM mid-call: both workers stop taking calls, follow theirs to the end, the outbox is flushed, exit 0', async () => {
    const sw = new FakeSwitch();
    const zammad = new ZammadDouble({ token: 'tok-cluster-drain' });
    await zammad.start();
    const adapter = await startAdapter({ ZAMMAD_CTI_URL: zammad.url, ...FAST, SHUTDOWN_DRAIN_MS: '8000' });
    const to = { host: '127.0.0.1', port: adapter.eslPort };
    const calls = await Promise.all(Array.from({ length: 4 }, () => sw.placeCall(to, inbound(PICK_UP))));
    try {
      await zammad.waitFor((z) => calls.every((c) => z.entry(c.uuid)?.state === 'answer'));
      assert.equal(new Set(calls.map((c) => workerOf(adapter, c))).size, 2, 'calls in both workers');
      adapter.proc.kill('SIGTERM');
      const stopping = await adapter.waitForLog((l) => l.message === 'stopped taking new calls; following the calls in progress');
      assert.equal(stopping['calls'], 4, 'the calls of both workers');
      await assert.rejects(sw.placeCall(to, inbound(PICK_UP)), /ECONNREFUSED/, 'no new calls');
      assert.equal((await readyz(adapter)).status, 503, 'not ready while stopping');
      assert.equal(adapter.proc.exitCode, null, 'still following the calls');
      zammad.setFault({ kind: 'status', status: 503 }, { times: 2 });
      for (const c of calls) c.hangup();
      assert.equal(await adapter.exited, 0);
      const stopped = adapter.lines.find((l) => l.message === 'stopped');
      assert.deepEqual([stopped?.['callsLeft'], stopped?.['eventsLeft']], [0, 0]);
      for (const c of calls) assert.deepEqual(zammad.acceptedEvents(c.uuid), ['newCall', 'answer', 'hangup']);
      for (const pid of Object.values(pidsOf(adapter))) await until(() => !alive(pid), `worker ${pid} gone`, 3000);
    } finally {
      for (const c of calls) c.hangup();
      await adapter.stop('SIGKILL');
      await zammad.stop();
    }
  });

  test('SIGKILL of one worker mid-call: its calls are closed in Zammad, the other worker\'s go on, a replacement takes new calls', async () => {
    const sw = new FakeSwitch();
    const zammad = new ZammadDouble({ token: 'tok-cluster-kill-worker' });
    await zammad.start();
    const adapter = await startAdapter({ ZAMMAD_CTI_URL: zammad.url, ...FAST });
    const to = { host: '127.0.0.1', port: adapter.eslPort };
    const calls = await Promise.all(Array.from({ length: 6 }, () => sw.placeCall(to, inbound(PICK_UP))));
    const later: SwitchCall[] = [];
    try {
      await zammad.waitFor((z) => calls.every((c) => z.entry(c.uuid)?.state === 'answer'));
      const pids = pidsOf(adapter);
      const victim = String(workerOf(adapter, calls[0]!));
      const theirs = calls.filter((c) => String(workerOf(adapter, c)) === victim);
      const ours = calls.filter((c) => !theirs.includes(c));
      assert.ok(theirs.length > 0 && ours.length > 0, 'calls in both workers');

      process.kill(pids[victim]!, 'SIGKILL');
      await adapter.waitForLog((l) => l.message.startsWith('a worker ended: starting a replacement') && String(l['worker']) === victim);
      // The replacement takes a moment to start (a process, the program loaded anew): /readyz says who is missing.
      const down = await readyz(adapter);
      assert.equal(down.status, 503);
      assert.match(down.body.checks['listener']?.detail ?? '', /^worker \d+ \(pid \d+\) (is not listening|ended; a replacement starts)$/);
      // No inbound socket configured: closed with what is known (they had been answered).
      await zammad.waitFor((z) => theirs.every((c) => z.entry(c.uuid)?.state === 'hangup'));
      for (const c of theirs) assert.deepEqual(got(zammad, c), ['newCall@200', 'answer@200', 'hangup:normalClearing@200']);
      assert.ok(theirs.every((c) => c.socketLostWhileUp), 'the calls go on in the switch');
      const replacement = await adapter.waitForLog((l) => l.message === 'a replacement worker takes calls', 20_000);
      assert.notEqual(String(replacement['worker']), victim);
      await until(async () => (await readyz(adapter)).status === 200, '/readyz back to 200');
      assert.equal((await readyz(adapter)).body.checks['listener']?.detail, '2 workers listening');
      assert.equal(sample(await metricsText(adapter), 'cti_calls_in_progress'), ours.length, 'the dead worker\'s connections no longer count');

      // The other worker's calls were never disturbed.
      for (const c of ours) c.hangup();
      await zammad.waitFor((z) => ours.every((c) => z.entry(c.uuid)?.state === 'hangup'));
      for (const c of ours) assert.deepEqual(got(zammad, c), ['newCall@200', 'answer@200', 'hangup:normalClearing@200']);

      later.push(...(await Promise.all(Array.from({ length: 4 }, () => sw.placeCall(to, inbound({ kind: 'answer', ringMs: 10, talkMs: 50 }))))));
      await zammad.waitFor((z) => later.every((c) => z.entry(c.uuid)?.state === 'hangup'));
      for (const c of later) assert.deepEqual(got(zammad, c), ['newCall@200', 'answer@200', 'hangup:normalClearing@200']);
      assert.ok(later.some((c) => String(workerOf(adapter, c)) === String(replacement['worker'])), 'the replacement takes calls');
    } finally {
      for (const c of [...calls, ...later]) c.hangup();
      assert.equal(await adapter.stop(), 0);
      await zammad.stop();
    }
  });

  test('SIGKILL of the primary: the workers exit at once; the calls go on in the switch; the next start closes them', async () => {
    const sw = new FakeSwitch();
    const zammad = new ZammadDouble({ token: 'tok-cluster-kill-primary' });
    await zammad.start();
    const env = { ZAMMAD_CTI_URL: zammad.url, OUTBOX_PATH: tempOutbox(), ...FAST };
    const first = await startAdapter(env);
    let second: AdapterProcess | undefined;
    const to = { host: '127.0.0.1', port: first.eslPort };
    const calls = await Promise.all(Array.from({ length: 4 }, () => sw.placeCall(to, inbound(PICK_UP))));
    try {
      await zammad.waitFor((z) => calls.every((c) => z.entry(c.uuid)?.state === 'answer'));
      await until(async () => sample(await metricsText(first), 'cti_outbox_events') === 0, 'every event confirmed');
      first.proc.kill('SIGKILL');
      await first.exited;
      for (const pid of Object.values(pidsOf(first))) await until(() => !alive(pid), `worker ${pid} exits without its primary`, 5000);
      await Promise.all(calls.map((c) => c.closed));
      assert.ok(calls.every((c) => c.socketLostWhileUp), 'the calls go on in the switch');

      second = await startAdapter(env);
      await zammad.waitFor((z) => calls.every((c) => z.entry(c.uuid)?.state === 'hangup'));
      for (const c of calls) assert.deepEqual(got(zammad, c), ['newCall@200', 'answer@200', 'hangup:normalClearing@200']);
    } finally {
      for (const c of calls) c.hangup();
      await second?.stop();
      await zammad.stop();
    }
  });
});
