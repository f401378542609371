/**
 * Delivery to Zammad when Zammad misbehaves, end to end: the real adapter program, the switch
 * double placing real calls over the outbound socket, the Zammad double failing as told.
 * Each test asserts what Zammad received, per call: which events, in which order, how often.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  placeCall,
  type CallScript,
  type ChannelSpec,
  type SwitchCall,
  type TargetBehaviour,
} from '@freeswitch-zammad-cti/sim/switch';
import { ZammadDouble } from '@freeswitch-zammad-cti/sim/zammad';
import { startAdapter, tempOutbox, type AdapterProcess, type LogLine } from './adapter-process.js';
import { waitUntil } from './raw-switch.js';

const FAST = {
  ZAMMAD_NEWCALL_TIMEOUT_MS: '200',
  ZAMMAD_REQUEST_TIMEOUT_MS: '300',
  RETRY_BASE_MS: '40',
  RETRY_MAX_MS: '200',
  SHUTDOWN_DRAIN_MS: '3000',
};

type Kind = 'answered' | 'missed' | 'busy' | 'outbound';

interface Placed {
  kind: Kind;
  call: SwitchCall;
}

function scriptFor(kind: Kind, i: number): CallScript {
  const ext = String(4000 + i);
  const channel: ChannelSpec = {
    uuid: randomUUID(),
    callerNumber: `0301234${String(i).padStart(4, '0')}`,
    destination: '491711234567890',
    context: 'public',
    variables: { zammad_users: `Agent ${i}`, zammad_bridge: `user/${ext}@d` },
  };
  const targets: Record<string, TargetBehaviour> = {};
  let callerCancelAfterMs: number | undefined;
  if (kind === 'answered') targets[ext] = { kind: 'answer', ringMs: 20, talkMs: 60 };
  if (kind === 'busy') targets[ext] = { kind: 'busy', ringMs: 10 };
  if (kind === 'missed') {
    targets[ext] = { kind: 'ring' };
    callerCancelAfterMs = 80;
  }
  if (kind === 'outbound') {
    channel.callerNumber = '2000';
    channel.callerName = 'Agent Smith';
    channel.destination = '01711234567';
    channel.context = 'default';
    channel.variables = { zammad_bridge: `sofia/gateway/carrier/0171${i}` };
    targets[`0171${i}`] = { kind: 'answer', ringMs: 20, talkMs: 60 };
  }
  return { channel, targets, ...(callerCancelAfterMs !== undefined ? { callerCancelAfterMs } : {}) };
}

const EXPECTED: Record<Kind, { events: string[]; cause: string; done: boolean }> = {
  answered: { events: ['newCall', 'answer', 'hangup'], cause: 'normalClearing', done: true },
  missed: { events: ['newCall', 'hangup'], cause: 'cancel', done: false },
  busy: { events: ['newCall', 'hangup'], cause: 'busy', done: false },
  outbound: { events: ['newCall', 'answer', 'hangup'], cause: 'normalClearing', done: true },
};

const KINDS: Kind[] = ['answered', 'missed', 'busy', 'outbound'];

async function placeCalls(adapter: AdapterProcess, n: number): Promise<Placed[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const kind = KINDS[i % KINDS.length] as Kind;
      return { kind, call: await placeCall({ host: '127.0.0.1', port: adapter.eslPort }, scriptFor(kind, i)) };
    }),
  );
}

/** Every call reached Zammad complete: each expected event accepted exactly once, in order, one hangup. */
function assertExactlyOnce(zammad: ZammadDouble, placed: Placed[]): void {
  for (const { kind, call } of placed) {
    const want = EXPECTED[kind];
    const posts = zammad.postsFor(call.uuid);
    assert.deepEqual(zammad.acceptedEvents(call.uuid), want.events, `${kind} ${call.uuid}: accepted events`);
    const entry = zammad.entry(call.uuid);
    assert.equal(entry?.hangups, 1, `${kind}: one hangup`);
    assert.equal(entry?.cause, want.cause, `${kind}: cause`);
    assert.equal(entry?.done, want.done, `${kind}: done`);
    // Nothing was tried before its newCall was stored: no "No such call_id" 500s, no event out of order.
    const firstStored = posts.findIndex((p) => p.event === 'newCall' && p.status === 200);
    assert.ok(
      posts.slice(0, firstStored).every((p) => p.event === 'newCall'),
      `${kind}: nothing before newCall (${posts.map((p) => `${p.event}:${p.status}`).join(' ')})`,
    );
    assert.ok(
      posts.every((p) => p.status !== 500),
      `${kind}: no 500`,
    );
  }
}

async function bridgedWithin(placed: Placed[], boundMs: number): Promise<void> {
  await Promise.all(placed.map((p) => p.call.closed));
  for (const { kind, call } of placed) {
    const connectReply = call.framesSent.find((f) => f.kind === 'connect-reply')?.at ?? 0;
    const decided = call.commands.find((c) => c.headers['execute-app-name'] === 'bridge');
    assert.ok(decided, `${kind}: bridged without Zammad`);
    assert.ok(
      decided.at - connectReply < boundMs,
      `${kind}: bridged ${decided.at - connectReply} ms after the channel data`,
    );
  }
}

/** Polls /metrics until the adapter has nothing left to deliver. */
async function waitForEmptyOutbox(adapter: AdapterProcess, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!/^cti_outbox_events\{endpoint="default"\} 0$/m.test((await status(adapter, '/metrics')).text)) {
    if (Date.now() > deadline) throw new Error('the outbox did not empty');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function status(adapter: AdapterProcess, path: string): Promise<{ code: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${adapter.statusPort}${path}`);
  return { code: res.status, text: await res.text() };
}

const TOKEN = `tok-${randomUUID()}`;
/** ZAMMAD_NEWCALL_TIMEOUT_MS plus generous slack for a loaded CI machine: far below the seconds Zammad stays down. */
const BOUND_MS = 1200;

describe('Zammad fails for a while, then recovers: every event of every call arrives once, in order', () => {
  let zammad: ZammadDouble;
  let adapter: AdapterProcess;
  before(async () => {
    zammad = new ZammadDouble({ token: TOKEN });
    await zammad.start();
    adapter = await startAdapter({ ZAMMAD_CTI_URL: zammad.url, ...FAST });
  });
  after(async () => {
    await adapter?.stop();
    await zammad?.stop();
  });

  test('503 from Zammad (or the proxy in front of it)', async () => {
    zammad.setFault({ kind: 'status', status: 503 });
    const placed = await placeCalls(adapter, 12);
    await bridgedWithin(placed, BOUND_MS);
    await waitUntil(async () => (await status(adapter, '/readyz')).code === 503, 'not ready while Zammad fails');
    zammad.clearFault();
    await zammad.waitFor((z) => placed.every((p) => z.entry(p.call.uuid)?.state === 'hangup'), 10_000);
    await new Promise((r) => setTimeout(r, 200)); // a stray repeat would show up here
    assertExactlyOnce(zammad, placed);
  });

  test('Zammad refuses connections (down, restarting), then listens again on the same port', async () => {
    await zammad.refuseConnections();
    const placed = await placeCalls(adapter, 12);
    await bridgedWithin(placed, BOUND_MS);
    const zammadCheck = async () =>
      (JSON.parse((await status(adapter, '/readyz')).text) as { checks: { zammad: { ok: boolean } } }).checks.zammad.ok;
    await waitUntil(async () => !(await zammadCheck()), 'readiness names Zammad as the failing check');
    await zammad.acceptConnections();
    await zammad.waitFor((z) => placed.every((p) => z.entry(p.call.uuid)?.state === 'hangup'), 10_000);
    await new Promise((r) => setTimeout(r, 200));
    assertExactlyOnce(zammad, placed);
    // Zammad saw nothing while it was down: exactly one request per event.
    for (const { kind, call } of placed) assert.equal(zammad.postsFor(call.uuid).length, EXPECTED[kind].events.length);
  });

  test(
    'Zammad too slow (stores each event, answers after the request timeout): one entry per call, ' +
      'never a second hangup for a missed call',
    async () => {
      // Everything slow: the newCalls are stored, but no answer comes in time, so they are sent again.
      zammad.setFault({ kind: 'delay', ms: 450, process: 'first' });
      const placed = await placeCalls(adapter, 8);
      await bridgedWithin(placed, BOUND_MS);
      await zammad.waitFor(
        (z) => placed.every((p) => z.postsFor(p.call.uuid).filter((post) => post.event === 'newCall').length >= 2),
        10_000,
      );
      // Then only hangups are slow: the repeated newCalls are "already exists", the answers go through.
      zammad.setFault({ kind: 'delay', ms: 450, process: 'first' }, { events: ['hangup'] });
      await zammad.waitFor((z) => placed.every((p) => z.entry(p.call.uuid)?.state === 'hangup'), 10_000);
      zammad.clearFault();
      await waitForEmptyOutbox(adapter);
      for (const { kind, call } of placed) {
        const entry = zammad.entry(call.uuid);
        const want = EXPECTED[kind];
        assert.equal(
          zammad.log().filter((e) => e.callId === call.uuid).length,
          1,
          `${kind}: one entry (a repeated newCall is "already exists")`,
        );
        assert.equal(entry?.state, 'hangup', kind);
        assert.equal(entry?.cause, want.cause, kind);
        assert.equal(entry?.done, want.done, `${kind}: done`);
        if (!want.events.includes('answer')) {
          // Missed inbound calls (cancel, busy): a second hangup would have turned done to true.
          assert.equal(entry?.hangups, 1, `${kind}: the hangup of a missed call is never repeated`);
        } else {
          assert.ok((entry?.hangups ?? 0) >= 1, kind);
        }
        // Order: no answer or hangup before Zammad had the newCall (that would be a 500 "No such
        // call_id"), no answer after the hangup.
        assert.ok(
          zammad.postsFor(call.uuid).every((p) => p.status !== 500 || p.event === 'newCall'),
          `${kind}: nothing before its newCall`,
        );
        assert.equal(entry?.ignoredAnswers, 0, `${kind}: no answer after the hangup`);
      }
      const missed = placed.filter((p) => !EXPECTED[p.kind].events.includes('answer'));
      const unconfirmed = adapter.lines.filter((l) => /not sent again/.test(l.message)).map((l) => l['callId']);
      assert.deepEqual(
        new Set(unconfirmed),
        new Set(missed.map((p) => p.call.uuid)),
        'each missed call whose hangup got no answer is logged, by call id',
      );
      const metrics = (await status(adapter, '/metrics')).text;
      assert.match(metrics, /cti_outbox_dropped_total\{endpoint="default",reason="unconfirmed"\} [1-9]/);
    },
  );
});

describe('wrong token', () => {
  test(
    'one clear log line, readiness false, the fault in the metrics; the events are delivered after a restart with ' +
      'the right token',
    async () => {
      const zammad = new ZammadDouble({ token: TOKEN });
      await zammad.start();
      const outbox = tempOutbox();
      const wrongUrl = `${zammad.baseUrl}/api/v1/cti/not-the-token-${randomUUID()}`;
      const first = await startAdapter({
        ZAMMAD_CTI_URL: wrongUrl,
        OUTBOX_PATH: outbox,
        ...FAST,
        SHUTDOWN_DRAIN_MS: '300',
      });
      let second: AdapterProcess | undefined;
      try {
        const placed = await placeCalls(first, 8);
        await bridgedWithin(placed, BOUND_MS);
        await first.waitForLog((l) => /wrong token/.test(l.message));
        // Give the adapter time to try again (probes): still a single line.
        await zammad.waitFor((z) => z.posts.length >= placed.length + 2, 5000);
        const faultLines = first.lines.filter((l: LogLine) => l.level === 'error');
        assert.equal(faultLines.length, 1, faultLines.map((l) => l.message).join('\n'));
        assert.match(
          faultLines[0]?.message ?? '',
          new RegExp(
            'Zammad refuses all events: wrong token: ' +
              'Zammad answered 401 "Invalid token, please contact your admin!": ' +
              'copy the endpoint again from Zammad → Admin → Integrations → CTI \\(generic\\)\\. Events are kept',
          ),
        );
        assert.ok(
          !first.output().includes(new URL(wrongUrl).pathname.split('/').pop() ?? '-'),
          'the token is not in the log',
        );

        const ready = await status(first, '/readyz');
        assert.equal(ready.code, 503);
        const checks = (JSON.parse(ready.text) as { checks: Record<string, { ok: boolean; detail?: string }> }).checks;
        assert.equal(checks['zammad']?.ok, false);
        assert.match(checks['zammad']?.detail ?? '', /wrong token/);
        assert.match((await status(first, '/metrics')).text, /^cti_zammad_config_fault\{endpoint="default"\} 1$/m);
        assert.equal(zammad.log().length, 0, 'Zammad stored nothing');

        assert.equal(await first.stop('SIGTERM'), 0);
        const stopped = first.lines.find((l) => l.message === 'stopped');
        assert.equal(
          stopped?.['eventsLeft'],
          placed.reduce((n, p) => n + EXPECTED[p.kind].events.length, 0),
          'every event kept on disk',
        );

        zammad.reset();
        second = await startAdapter({ ZAMMAD_CTI_URL: zammad.url, OUTBOX_PATH: outbox, ...FAST });
        await zammad.waitFor((z) => placed.every((p) => z.entry(p.call.uuid)?.state === 'hangup'), 10_000);
        await new Promise((r) => setTimeout(r, 200));
        assertExactlyOnce(zammad, placed);
        for (const { kind, call } of placed)
          assert.equal(
            zammad.postsFor(call.uuid).length,
            EXPECTED[kind].events.length,
            `${kind}: each event sent once`,
          );
        assert.equal((await status(second, '/readyz')).code, 200);
      } finally {
        await first.stop('SIGKILL');
        await second?.stop();
        await zammad.stop();
      }
    },
  );

  test(
    'fixed in Zammad while the adapter runs (integration switched back on): ' + 'delivered without a restart',
    async () => {
      const zammad = new ZammadDouble({ token: TOKEN, enabled: false });
      await zammad.start();
      const adapter = await startAdapter({ ZAMMAD_CTI_URL: zammad.url, ...FAST });
      try {
        const placed = await placeCalls(adapter, 4);
        await Promise.all(placed.map((p) => p.call.closed));
        await adapter.waitForLog((l) => /Feature is disabled/.test(l.message));
        zammad.update({ enabled: true });
        await zammad.waitFor((z) => placed.every((p) => z.entry(p.call.uuid)?.state === 'hangup'), 10_000);
        await new Promise((r) => setTimeout(r, 200));
        assertExactlyOnce(zammad, placed);
        assert.equal(adapter.lines.filter((l) => l.level === 'error').length, 1);
        await adapter.waitForLog((l) => l.message === 'Zammad accepts events again');
        assert.match((await status(adapter, '/metrics')).text, /^cti_zammad_config_fault\{endpoint="default"\} 0$/m);
      } finally {
        await adapter.stop();
        await zammad.stop();
      }
    },
  );
});
