/**
 * The adapter dies or stops while calls are in progress: SIGKILL, SIGTERM with its drain, a
 * second signal. Real processes and sockets: the adapter program, a switch double whose calls go
 * on when the adapter's connection drops (as FreeSWITCH's do), FreeSWITCH's inbound event socket
 * for that switch (re-attach after a restart), and the Zammad double.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { FakeSwitch, type CallScript, type SwitchCall, type TargetBehaviour } from '@freeswitch-zammad-cti/sim/switch';
import { InboundSwitch } from '../doubles/inbound-switch.js';
import { ZammadDouble } from '@freeswitch-zammad-cti/sim/zammad';
import { startAdapter, tempOutbox, type AdapterProcess } from './adapter-process.js';

const FAST = {
  ZAMMAD_NEWCALL_TIMEOUT_MS: '200',
  ZAMMAD_REQUEST_TIMEOUT_MS: '300',
  RETRY_BASE_MS: '40',
  RETRY_MAX_MS: '200',
};

let seq = 0;
/** An inbound call to one agent (user/<ext>@d, Zammad user named in the dialplan). */
function inbound(target: TargetBehaviour, extra: Partial<CallScript> = {}): CallScript {
  const ext = String(5000 + seq++);
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
    ...extra,
  };
}

const RING: TargetBehaviour = { kind: 'ring' };
const PICK_UP: TargetBehaviour = { kind: 'answer', ringMs: 10 };

const bridged = (c: SwitchCall) => c.commands.some((x) => x.headers['execute-app-name'] === 'bridge');
const answered = (c: SwitchCall) => c.variables()['bridge_uuid'] !== undefined;

async function until(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function outboxEvents(adapter: AdapterProcess): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adapter.statusPort}/metrics`)).text();
  return Number(/^cti_outbox_events\{endpoint="default"\} (\d+)$/m.exec(text)?.[1] ?? NaN);
}

const count = (adapter: AdapterProcess, pattern: RegExp) => adapter.lines.filter((l) => pattern.test(l.message)).length;

/** What Zammad got for a call: every request, as event[:cause]@status. */
const got = (zammad: ZammadDouble, call: SwitchCall) =>
  zammad
    .postsFor(call.uuid)
    .map((p) => `${p.event}${p.params['cause'] ? `:${String(p.params['cause'])}` : ''}@${p.status}`);

describe('calls in progress when the adapter dies', () => {
  test(
    'SIGKILL with 20 calls in progress while Zammad is down; restart; Zammad back: nothing lost, ' +
      'nothing twice, order kept',
    async (t) => {
      const sw = new FakeSwitch();
      const fs = new InboundSwitch(sw, 'fs-secret');
      await fs.start();
      const zammad = new ZammadDouble({ token: 'tok-restart-20' });
      await zammad.start();
      await zammad.refuseConnections();
      const env = {
        ZAMMAD_CTI_URL: zammad.url,
        OUTBOX_PATH: tempOutbox(),
        ...FAST,
        FS_INBOUND_HOST: '127.0.0.1',
        FS_INBOUND_PORT: String(fs.port),
        FS_INBOUND_PASSWORD: 'fs-secret',
      };
      let first: AdapterProcess | undefined;
      let second: AdapterProcess | undefined;
      const all: SwitchCall[] = [];
      try {
        first = await startAdapter(env);
        const to = { host: '127.0.0.1', port: first.eslPort };
        const place = async (n: number, script: () => CallScript) => {
          const calls = await Promise.all(Array.from({ length: n }, () => sw.placeCall(to, script())));
          all.push(...calls);
          return calls;
        };
        const [talking, ringing, answeredWhileDown, endedBefore, cancelledWhileDown, missedBefore] = await Promise.all([
          place(4, () => inbound(PICK_UP)), // answered before the kill, hung up after the restart
          place(4, () => inbound(RING)), // ringing through the restart, the caller gives up after it
          place(3, () => inbound({ kind: 'answer', ringMs: 1500 })), // picked up while no adapter runs
          // over before the kill: its hangup waits on disk
          place(3, () => inbound({ kind: 'answer', ringMs: 10, talkMs: 50 })),
          place(3, () => inbound(RING)), // the caller gives up while no adapter runs
          place(3, () => inbound(RING, { callerCancelAfterMs: 50 })), // missed before the kill: hangup on disk
        ]);
        assert.equal(all.length, 20);
        await Promise.all([...endedBefore, ...missedBefore].map((c) => c.closed));
        await until(
          () => [...talking, ...ringing, ...answeredWhileDown, ...cancelledWhileDown].every(bridged),
          'every call in progress is bridged',
        );
        await until(() => talking.every(answered), 'the talking calls are answered');
        // Everything the first run knows is on disk: 4×(newCall, answer) + 4 + 3 + 3×3 + 3 + 3×2 events.
        await until(async () => (await outboxEvents(first!)) >= 33, 'the events of the first run on disk');

        const pickedUpBeforeKill = answeredWhileDown.filter(answered).length;
        first.proc.kill('SIGKILL');
        await first.exited;
        // The switch sees the connections drop a moment after the process is gone.
        await Promise.all(all.map((c) => c.closed));
        for (const c of cancelledWhileDown) c.hangup();
        await Promise.all(cancelledWhileDown.map((c) => c.channelDone));
        await until(() => answeredWhileDown.every(answered), 'picked up while the adapter is down');
        assert.ok(
          all.every((c) => c.socketLostWhileUp || [...endedBefore, ...missedBefore].includes(c)),
          'the calls went on without the adapter',
        );

        second = await startAdapter(env);
        await second.waitForLog(
          () =>
            count(second!, /^re-attached to a call still in progress/) === 11 &&
            count(second!, /^closing a call left open by an earlier run: the switch no longer has it/) === 3,
        );
        for (const c of [...talking, ...answeredWhileDown]) c.hangup(); // the agent or the caller hangs up
        for (const c of ringing) c.hangup(); // the caller gives up: ORIGINATOR_CANCEL
        await second.waitForLog(() => count(second!, /^call re-attached after restart has ended/) === 11);

        await zammad.acceptConnections();
        await zammad.waitFor((z) => all.every((c) => z.entry(c.uuid)?.state === 'hangup'), 10_000);
        await new Promise((r) => setTimeout(r, 300)); // a stray repeat would show up here

        const expect = (calls: SwitchCall[], events: string[], done: boolean) => {
          for (const c of calls) {
            assert.deepEqual(got(zammad, c), events, c.uuid);
            assert.equal(zammad.entry(c.uuid)?.done, done, c.uuid);
          }
        };
        expect(talking, ['newCall@200', 'answer@200', 'hangup:normalClearing@200'], true);
        expect(answeredWhileDown, ['newCall@200', 'answer@200', 'hangup:normalClearing@200'], true);
        expect(endedBefore, ['newCall@200', 'answer@200', 'hangup:normalClearing@200'], true);
        expect(ringing, ['newCall@200', 'hangup:cancel@200'], false);
        expect(missedBefore, ['newCall@200', 'hangup:cancel@200'], false);
        expect(cancelledWhileDown, ['newCall@200', 'hangup:noAnswer@200'], false);
        assert.equal(
          zammad.posts.length,
          4 * 3 + 3 * 3 + 3 * 3 + 4 * 2 + 3 * 2 + 3 * 2,
          'one request per event, nothing twice',
        );
        for (const c of answeredWhileDown)
          assert.equal(
            zammad.postsFor(c.uuid)[1]?.params['answeringNumber'],
            c.variables()['dialed_user'],
            'the leg that won',
          );
        // Seen from the events after the restart (Caller-Channel-Answered-Time), unless a slow machine let them answer
        // before the kill.
        if (pickedUpBeforeKill > 0)
          t.diagnostic(
            `${pickedUpBeforeKill} of the calls meant to be picked up while no adapter ran were picked up ` +
              'before the kill',
          );

        // What the restarted adapter asked the switch: subscribe first, then ask about each call.
        const lines = fs.sessions[0]?.commands.map((c) => c.line.split(' ').slice(0, 2).join(' ')) ?? [];
        assert.deepEqual(lines.slice(0, 3), ['auth fs-secret', 'event json', 'event json']);
        assert.equal(lines.filter((l) => l === 'filter Unique-ID').length, 14);
        assert.equal(lines.filter((l) => l === 'api uuid_exists').length, 14);
        assert.ok(lines.lastIndexOf('filter Unique-ID') < lines.indexOf('api uuid_exists'), 'watching before asking');
        await until(() => fs.connections === 0, 'the inbound connection is closed once nothing is left to watch');
      } finally {
        for (const c of all) c.hangup();
        first?.proc.kill('SIGKILL');
        await second?.stop();
        await fs.stop();
        await zammad.stop();
      }
    },
  );

  test('without the inbound event socket: calls left open are closed with an honest hangup, and logged', async () => {
    const sw = new FakeSwitch();
    const zammad = new ZammadDouble({ token: 'tok-restart-honest' });
    await zammad.start();
    const env = { ZAMMAD_CTI_URL: zammad.url, OUTBOX_PATH: tempOutbox(), ...FAST };
    const first = await startAdapter(env);
    let second: AdapterProcess | undefined;
    const to = { host: '127.0.0.1', port: first.eslPort };
    const talking = await Promise.all([sw.placeCall(to, inbound(PICK_UP)), sw.placeCall(to, inbound(PICK_UP))]);
    const ringing = await Promise.all([sw.placeCall(to, inbound(RING)), sw.placeCall(to, inbound(RING))]);
    const over = await sw.placeCall(to, inbound({ kind: 'answer', ringMs: 10, talkMs: 30 }));
    const all = [...talking, ...ringing, over];
    try {
      await zammad.waitFor(
        (z) =>
          talking.every((c) => z.entry(c.uuid)?.state === 'answer') &&
          ringing.every((c) => z.entry(c.uuid)?.state === 'newCall') &&
          z.entry(over.uuid)?.state === 'hangup',
      );
      // Confirmed, not only stored: a hangup Zammad stored but the adapter had not yet heard back
      // about is sent again after the restart (harmless for an answered call, see the README).
      await until(async () => (await outboxEvents(first)) === 0, 'every event confirmed');
      first.proc.kill('SIGKILL');
      await first.exited;

      second = await startAdapter(env);
      await zammad.waitFor((z) => all.every((c) => z.entry(c.uuid)?.state === 'hangup'));
      for (const c of talking) {
        assert.deepEqual(got(zammad, c), ['newCall@200', 'answer@200', 'hangup:normalClearing@200']);
        assert.equal(
          zammad.postsFor(c.uuid)[2]?.params['answeringNumber'],
          zammad.postsFor(c.uuid)[1]?.params['answeringNumber'],
        );
        assert.equal(zammad.entry(c.uuid)?.done, true);
      }
      for (const c of ringing) {
        assert.deepEqual(got(zammad, c), ['newCall@200', 'hangup:noAnswer@200']);
        assert.equal(
          zammad.entry(c.uuid)?.done,
          false,
          'not answered as far as anyone knows: stays on the list of calls to return',
        );
      }
      assert.deepEqual(
        got(zammad, over),
        ['newCall@200', 'answer@200', 'hangup:normalClearing@200'],
        'a call that had ended is not closed again',
      );
      const closing = second.lines.filter((l) =>
        l.message.startsWith(
          'closing a call left open by an earlier run: FS_INBOUND_HOST is not set, ' +
            'so the switch cannot be asked; its real end is unknown',
        ),
      );
      assert.deepEqual(new Set(closing.map((l) => l['callId'])), new Set([...talking, ...ringing].map((c) => c.uuid)));

      // The calls go on on the switch; when they end, the adapter no longer knows them.
      const before = zammad.posts.length;
      for (const c of [...talking, ...ringing]) c.hangup();
      await Promise.all([...talking, ...ringing].map((c) => c.channelDone));
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(zammad.posts.length, before);
    } finally {
      for (const c of all) c.hangup();
      first.proc.kill('SIGKILL');
      await second?.stop();
      await zammad.stop();
    }
  });
  test('a Unique-ID that is no RFC 4122 uuid (origination_uuid with dots) is re-attached after a restart', async () => {
    const sw = new FakeSwitch();
    const fs = new InboundSwitch(sw);
    await fs.start();
    const zammad = new ZammadDouble({ token: 'tok-restart-dotted' });
    await zammad.start();
    const inboundEsl = {
      FS_INBOUND_HOST: '127.0.0.1',
      FS_INBOUND_PORT: String(fs.port),
      FS_INBOUND_PASSWORD: 'ClueCon',
    };
    const env = { ZAMMAD_CTI_URL: zammad.url, OUTBOX_PATH: tempOutbox(), ...FAST, ...inboundEsl };
    const first = await startAdapter(env);
    let second: AdapterProcess | undefined;
    const uuid = `call.${Date.now()}.4711.pbx-1.example`;
    const script = inbound(PICK_UP);
    const to = { host: '127.0.0.1', port: first.eslPort };
    const call = await sw.placeCall(to, { ...script, channel: { ...script.channel, uuid } });
    try {
      await zammad.waitFor((z) => z.entry(uuid)?.state === 'answer');
      await until(async () => (await outboxEvents(first)) === 0, 'every event confirmed');
      first.proc.kill('SIGKILL');
      await first.exited;
      await call.closed;

      second = await startAdapter(env);
      const reattached = /^re-attached to a call still in progress/;
      await second.waitForLog((l) => reattached.test(l.message) && l['callId'] === uuid);
      const lines = fs.sessions[0]?.commands.map((c) => c.line) ?? [];
      assert.ok(lines.includes(`filter Unique-ID ${uuid}`), 'its events are asked for');
      assert.ok(lines.includes(`api uuid_exists ${uuid}`), 'the switch is asked about it');
      call.hangup();
      await zammad.waitFor((z) => z.entry(uuid)?.state === 'hangup');
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(got(zammad, call), ['newCall@200', 'answer@200', 'hangup:normalClearing@200'], 'its real end');
    } finally {
      call.hangup();
      first.proc.kill('SIGKILL');
      await second?.stop();
      await fs.stop();
      await zammad.stop();
    }
  });
});

describe('SIGTERM', () => {
  test(
    'drain: no new calls, the calls in progress are followed to their end, ' + 'the outbox is flushed, exit 0',
    async () => {
      const sw = new FakeSwitch();
      const zammad = new ZammadDouble({ token: 'tok-drain' });
      await zammad.start();
      const adapter = await startAdapter({ ZAMMAD_CTI_URL: zammad.url, ...FAST, SHUTDOWN_DRAIN_MS: '8000' });
      const to = { host: '127.0.0.1', port: adapter.eslPort };
      const calls = await Promise.all([0, 1, 2].map(() => sw.placeCall(to, inbound(PICK_UP))));
      const ringing = await sw.placeCall(to, inbound(RING));
      try {
        await zammad.waitFor(
          (z) => calls.every((c) => z.entry(c.uuid)?.state === 'answer') && z.entry(ringing.uuid) !== undefined,
        );
        adapter.proc.kill('SIGTERM');
        await adapter.waitForLog((l) => l.message === 'stopped taking new calls; following the calls in progress');
        await assert.rejects(sw.placeCall(to, inbound(PICK_UP)), /ECONNREFUSED/, 'no new calls');
        assert.equal(adapter.proc.exitCode, null, 'still following the calls');
        // Zammad is slow for a moment: the drain waits for the outbox too.
        zammad.setFault({ kind: 'status', status: 503 }, { times: 2 });
        for (const c of calls) c.hangup();
        ringing.hangup();
        assert.equal(await adapter.exited, 0);
        const stopped = adapter.lines.find((l) => l.message === 'stopped');
        assert.deepEqual([stopped?.['callsLeft'], stopped?.['eventsLeft']], [0, 0]);
        for (const c of calls) assert.deepEqual(zammad.acceptedEvents(c.uuid), ['newCall', 'answer', 'hangup']);
        assert.deepEqual(zammad.acceptedEvents(ringing.uuid), ['newCall', 'hangup']);
        assert.equal(zammad.entry(ringing.uuid)?.cause, 'cancel');
      } finally {
        for (const c of [...calls, ringing]) c.hangup();
        await adapter.stop('SIGKILL');
        await zammad.stop();
      }
    },
  );

  test(
    'drain time over: the calls still in progress are left to the next start, ' + 'which follows them to their end',
    async () => {
      const sw = new FakeSwitch();
      const fs = new InboundSwitch(sw);
      await fs.start();
      const zammad = new ZammadDouble({ token: 'tok-drain-over' });
      await zammad.start();
      const env = {
        ZAMMAD_CTI_URL: zammad.url,
        OUTBOX_PATH: tempOutbox(),
        ...FAST,
        FS_INBOUND_HOST: '127.0.0.1',
        FS_INBOUND_PORT: String(fs.port),
        FS_INBOUND_PASSWORD: 'ClueCon',
      };
      const first = await startAdapter({ ...env, SHUTDOWN_DRAIN_MS: '300' });
      let second: AdapterProcess | undefined;
      const call = await sw.placeCall({ host: '127.0.0.1', port: first.eslPort }, inbound(PICK_UP));
      try {
        await zammad.waitFor((z) => z.entry(call.uuid)?.state === 'answer');
        assert.equal(await first.stop('SIGTERM'), 0);
        assert.ok(
          first.lines.some(
            (l) =>
              l.message === 'drain time over: leaving the calls still in progress to the next start' &&
              l['calls'] === 1,
          ),
        );
        assert.equal(first.lines.find((l) => l.message === 'stopped')?.['callsLeft'], 1);
        assert.ok(call.socketLostWhileUp, 'the call goes on in the switch');
        assert.deepEqual(zammad.acceptedEvents(call.uuid), ['newCall', 'answer'], 'no hangup for a call that goes on');

        second = await startAdapter(env);
        await second.waitForLog(
          (l) => /^re-attached to a call still in progress/.test(l.message) && l['callId'] === call.uuid,
        );
        call.hangup();
        await zammad.waitFor((z) => z.entry(call.uuid)?.state === 'hangup');
        await new Promise((r) => setTimeout(r, 200));
        assert.deepEqual(got(zammad, call), ['newCall@200', 'answer@200', 'hangup:normalClearing@200']);
      } finally {
        call.hangup();
        await second?.stop();
        await fs.stop();
        await zammad.stop();
      }
    },
  );

  test('a second signal exits at once; what is not delivered stays in the outbox for the next start', async () => {
    const sw = new FakeSwitch();
    const zammad = new ZammadDouble({ token: 'tok-second-signal' });
    await zammad.start();
    await zammad.refuseConnections();
    const env = { ZAMMAD_CTI_URL: zammad.url, OUTBOX_PATH: tempOutbox(), ...FAST };
    const first = await startAdapter({ ...env, SHUTDOWN_DRAIN_MS: '60000' });
    let second: AdapterProcess | undefined;
    const over = await sw.placeCall(
      { host: '127.0.0.1', port: first.eslPort },
      inbound({ kind: 'answer', ringMs: 10, talkMs: 30 }),
    );
    const talking = await sw.placeCall({ host: '127.0.0.1', port: first.eslPort }, inbound(PICK_UP));
    try {
      await over.closed;
      await until(async () => (await outboxEvents(first)) === 5, 'the events on disk');
      first.proc.kill('SIGTERM');
      await first.waitForLog((l) => l.message === 'stopped taking new calls; following the calls in progress');
      const started = Date.now();
      first.proc.kill('SIGTERM');
      assert.equal(await first.exited, 1);
      assert.ok(Date.now() - started < 2000, 'at once, not after the 60 s drain');
      assert.ok(first.lines.some((l) => /SIGTERM again: exiting now/.test(l.message)));

      await zammad.acceptConnections();
      second = await startAdapter(env);
      await zammad.waitFor((z) => z.entry(over.uuid)?.state === 'hangup' && z.entry(talking.uuid)?.state === 'hangup');
      assert.deepEqual(got(zammad, over), ['newCall@200', 'answer@200', 'hangup:normalClearing@200']);
      // No inbound socket: the call still talking is closed with what is known.
      assert.deepEqual(got(zammad, talking), ['newCall@200', 'answer@200', 'hangup:normalClearing@200']);
    } finally {
      over.hangup();
      talking.hangup();
      await second?.stop();
      await zammad.stop();
    }
  });
});
