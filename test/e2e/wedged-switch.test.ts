/**
 * Calls left open by a SIGKILL, and a restart while FreeSWITCH's inbound event socket is wedged:
 * it logs in and then answers nothing (a hung switch, a proxy), or it accepts the TCP connection
 * and never asks for the password. The call port and the status port listen at once, new calls
 * are reported, recovery says why it cannot finish, and the old calls stay open in Zammad (never
 * closed on a guess) until the switch answers: later in the same run, or at a later start.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { FakeSwitch, type CallScript, type SwitchCall, type TargetBehaviour } from '@freeswitch-zammad-cti/sim/switch';
import { ZammadDouble } from '@freeswitch-zammad-cti/sim/zammad';
import { InboundSwitch } from '../doubles/inbound-switch.js';
import { startAdapter, tempOutbox, type AdapterProcess, type LogLine } from './adapter-process.js';

const FAST = {
  ZAMMAD_NEWCALL_TIMEOUT_MS: '200',
  ZAMMAD_REQUEST_TIMEOUT_MS: '300',
  RETRY_BASE_MS: '40',
  RETRY_MAX_MS: '200',
};
/** The adapter's environment with FreeSWITCH's inbound event socket at `port`. */
const envFor = (zammad: ZammadDouble, port: number, password: string, extra: Record<string, string> = {}) => ({
  ZAMMAD_CTI_URL: zammad.url,
  OUTBOX_PATH: tempOutbox(),
  ...FAST,
  FS_INBOUND_HOST: '127.0.0.1',
  FS_INBOUND_PORT: String(port),
  FS_INBOUND_PASSWORD: password,
  ...extra,
});

let seq = 0;
function inbound(target: TargetBehaviour): CallScript {
  const ext = String(6000 + seq++);
  return {
    channel: {
      uuid: randomUUID(),
      callerNumber: `030555${ext}`,
      destination: '491711234567890',
      context: 'public',
      variables: { zammad_users: `Agent ${ext}`, zammad_bridge: `user/${ext}@d` },
    },
    targets: { [ext]: target },
    originateTimeoutMs: 60_000,
  };
}
const RING: TargetBehaviour = { kind: 'ring' };
const PICK_UP: TargetBehaviour = { kind: 'answer', ringMs: 10 };

async function until(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** What Zammad got for a call: every request, as event[:cause]@status. */
const got = (zammad: ZammadDouble, call: SwitchCall) =>
  zammad.postsFor(call.uuid).map((p) => {
    const cause = p.params['cause'] ? `:${String(p.params['cause'])}` : '';
    return `${p.event}${cause}@${p.status}`;
  });
const hungUp = (zammad: ZammadDouble, call: SwitchCall) => got(zammad, call).some((e) => e.startsWith('hangup'));
const outboxEvents = async (a: AdapterProcess) => {
  const text = await (await fetch(`http://127.0.0.1:${a.statusPort}/metrics`)).text();
  return Number(/^cti_outbox_events\{endpoint="default"\} (\d+)$/m.exec(text)?.[1] ?? NaN);
};
const recoveryCheck = async (a: AdapterProcess) => {
  const r = await fetch(`http://127.0.0.1:${a.statusPort}/readyz`);
  return ((await r.json()) as { checks: Record<string, { ok: boolean; detail?: string }> }).checks['recovery'];
};
const couldNotFinish = (l: LogLine) => l.message.startsWith('recovery could not finish');
const count = (a: AdapterProcess, pattern: RegExp) => a.lines.filter((l) => pattern.test(l.message)).length;

/** A first adapter takes a talking and a ringing call and is SIGKILLed: both stay in its journal. */
async function callsLeftOpen(sw: FakeSwitch, zammad: ZammadDouble, env: Record<string, string>): Promise<SwitchCall[]> {
  const first = await startAdapter(env);
  try {
    const to = { host: '127.0.0.1', port: first.eslPort };
    const calls = [await sw.placeCall(to, inbound(PICK_UP)), await sw.placeCall(to, inbound(RING))];
    const [talking, ringing] = calls as [SwitchCall, SwitchCall];
    await zammad.waitFor((z) => z.entry(talking.uuid)?.state === 'answer');
    await zammad.waitFor((z) => z.entry(ringing.uuid)?.state === 'newCall');
    await until(async () => (await outboxEvents(first)) === 0, 'every event confirmed');
    first.proc.kill('SIGKILL');
    await first.exited;
    await Promise.all(calls.map((c) => c.closed));
    return calls;
  } finally {
    first.proc.kill('SIGKILL');
  }
}

/** The switch answers again: the old calls are re-attached and end in Zammad with their real causes. */
async function finishedForReal(adapter: AdapterProcess, zammad: ZammadDouble, calls: SwitchCall[]): Promise<void> {
  const [talking, ringing] = calls;
  await until(() => count(adapter, /^re-attached to a call still in progress/) === 2, 'both calls re-attached', 20_000);
  talking!.hangup();
  ringing!.hangup();
  await zammad.waitFor((z) => z.entry(talking!.uuid)?.state === 'hangup' && z.entry(ringing!.uuid)?.state === 'hangup');
  await new Promise((r) => setTimeout(r, 200)); // a stray repeat would show up here
  assert.deepEqual(got(zammad, talking!), ['newCall@200', 'answer@200', 'hangup:normalClearing@200']);
  assert.deepEqual(got(zammad, ringing!), ['newCall@200', 'hangup:cancel@200'], 'the caller gave up: its real cause');
  await until(async () => /^done:/.test((await recoveryCheck(adapter))?.detail ?? ''), '/readyz: recovery done');
  assert.equal(count(adapter, /^closing a call left open/), 0, 'nothing closed on a guess');
}

describe("the switch's inbound event socket is wedged at start", () => {
  const MUTE = 'logs in, answers no command: ports up at once, new calls reported, old calls finished once it answers';
  test(MUTE, async (t) => {
    const sw = new FakeSwitch();
    const fs = new InboundSwitch(sw, 'fs-secret');
    await fs.start();
    const zammad = new ZammadDouble({ token: 'tok-wedged-mute' });
    await zammad.start();
    const env = envFor(zammad, fs.port, 'fs-secret');
    let second: AdapterProcess | undefined;
    let calls: SwitchCall[] = [];
    try {
      calls = await callsLeftOpen(sw, zammad, env);
      fs.behaviour = 'mute';
      const started = Date.now();
      second = await startAdapter(env);
      const upMs = Date.now() - started;
      const up = second.lines.findIndex((l) => l.message === 'status endpoints up');
      const failure = second.lines.findIndex(couldNotFinish);
      assert.ok(failure === -1 || failure > up, 'both ports listen before recovery gives up a try');
      assert.equal((await fetch(`http://127.0.0.1:${second.statusPort}/healthz`)).status, 200);
      assert.equal((await recoveryCheck(second))?.ok, true, 'recovery never makes the adapter not ready');

      // A new call is reported in full while recovery waits for the switch.
      const to = { host: '127.0.0.1', port: second.eslPort };
      const fresh = await sw.placeCall(to, inbound({ kind: 'answer', ringMs: 10, talkMs: 50 }));
      await zammad.waitFor((z) => z.entry(fresh.uuid)?.state === 'hangup');
      assert.deepEqual(got(zammad, fresh), ['newCall@200', 'answer@200', 'hangup:normalClearing@200']);

      const line = await second.waitForLog(couldNotFinish, 15_000);
      assert.match(String(line['reason']), /no reply to "event json CHANNEL_BRIDGE[^"]*" within 5000 ms/);
      assert.equal(line['calls'], 2);
      const check = await recoveryCheck(second);
      assert.equal(check?.ok, true);
      const waiting = /^could not finish: .*no reply to "event json.*; 2 of 2 calls .* stay in the journal; next try/;
      assert.match(check?.detail ?? '', waiting);
      await until(() => fs.connections === 0, 'the wedged connection is closed');
      for (const c of calls) assert.ok(!hungUp(zammad, c), 'not closed on a guess');
      const mute = fs.sessions[0]?.commands.map((c) => c.line.split(' ').slice(0, 2).join(' ')) ?? [];
      assert.deepEqual(mute.slice(0, 2), ['auth fs-secret', 'event json']);

      fs.behaviour = 'normal';
      await finishedForReal(second, zammad, calls);
      t.diagnostic(`ports up ${upMs} ms after the spawn`);
    } finally {
      for (const c of calls) c.hangup();
      await second?.stop('SIGKILL');
      await fs.stop();
      await zammad.stop();
    }
  });

  const SILENT = 'never asks for the password: SIGTERM in recovery exits at once; a later start finishes the old calls';
  test(SILENT, async () => {
    const sw = new FakeSwitch();
    const fs = new InboundSwitch(sw);
    await fs.start();
    const zammad = new ZammadDouble({ token: 'tok-wedged-silent' });
    await zammad.start();
    const env = envFor(zammad, fs.port, 'ClueCon', { SHUTDOWN_DRAIN_MS: '10000' });
    let second: AdapterProcess | undefined;
    let third: AdapterProcess | undefined;
    let calls: SwitchCall[] = [];
    try {
      calls = await callsLeftOpen(sw, zammad, env);
      fs.behaviour = 'silent';
      second = await startAdapter(env);
      assert.equal((await fetch(`http://127.0.0.1:${second.statusPort}/healthz`)).status, 200);
      assert.match((await recoveryCheck(second))?.detail ?? '', /^running: asking the switch about 2 of 2 calls/);
      const line = await second.waitForLog(couldNotFinish, 15_000);
      const why = /^no login on FreeSWITCH's inbound event socket within 5000 ms \(connected, FreeSWITCH never asked/;
      assert.match(String(line['reason']), why);
      await until(() => fs.connections === 0, 'the silent connection is closed');

      const stopping = Date.now();
      assert.equal(await second.stop('SIGTERM'), 0);
      assert.ok(Date.now() - stopping < 5000, 'recovery does not hold up the stop');
      for (const c of calls) assert.ok(!hungUp(zammad, c), 'left in the journal, not closed on a guess');

      fs.behaviour = 'normal';
      third = await startAdapter(env);
      await finishedForReal(third, zammad, calls);
    } finally {
      for (const c of calls) c.hangup();
      await second?.stop('SIGKILL');
      await third?.stop('SIGKILL');
      await fs.stop();
      await zammad.stop();
    }
  });
});
