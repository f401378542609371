/**
 * Zammad down (refusing connections), end to end: the real adapter program, the switch double
 * placing calls, the Zammad double refusing and then listening again. Once Zammad is known
 * unreachable no caller waits for its decision; when it is back the backlog goes at once, not
 * after each event's backoff. With two endpoints, one Zammad down touches only its own calls.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { placeCall, type CallScript, type SwitchCall } from '@freeswitch-zammad-cti/sim/switch';
import { ZammadDouble } from '@freeswitch-zammad-cti/sim/zammad';
import { startAdapter, type AdapterProcess } from './adapter-process.js';
import { metrics, waitUntil } from './raw-switch.js';

const NEWCALL_TIMEOUT_MS = 2000;
/** Far below the verdict time: handed back at once, with slack for a loaded machine. */
const AT_ONCE_MS = 300;
const RETRY_MAX_MS = 60_000;
const ENV = {
  ZAMMAD_NEWCALL_TIMEOUT_MS: String(NEWCALL_TIMEOUT_MS),
  ZAMMAD_REQUEST_TIMEOUT_MS: '1000',
  RETRY_BASE_MS: '200',
  RETRY_MAX_MS: String(RETRY_MAX_MS),
  SHUTDOWN_DRAIN_MS: '3000',
};
const EVENTS = ['newCall', 'answer', 'hangup'];
const BLOCKED = '+49 30 999999999';

const dir = mkdtempSync(join(tmpdir(), 'cti-unreachable-'));
const running: { adapters: AdapterProcess[]; doubles: ZammadDouble[] } = { adapters: [], doubles: [] };
after(async () => {
  for (const a of running.adapters) await a.stop().catch(() => {});
  for (const z of running.doubles) await z.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function double(options: { blockedNumbers?: string[] } = {}): Promise<ZammadDouble> {
  const zammad = new ZammadDouble({ token: `tok-${randomUUID()}`, ...options });
  await zammad.start();
  running.doubles.push(zammad);
  return zammad;
}

async function adapter(env: Record<string, string>): Promise<AdapterProcess> {
  const a = await startAdapter({ ...ENV, ...env });
  running.adapters.push(a);
  return a;
}

/** An inbound call in bridge mode, answered by 2003 after a short ring. */
function callOf(i: number, domain = 'pbx.example', callerNumber = `0301234${String(i).padStart(4, '0')}`): CallScript {
  return {
    channel: {
      uuid: randomUUID(),
      callerNumber,
      destination: '4930998001',
      context: 'public',
      variables: { domain_name: domain, zammad_users: 'Alice', zammad_bridge: `user/2003@${domain}` },
    },
    targets: { '2003': { kind: 'answer', ringMs: 20, talkMs: 40 } },
  };
}

function place(a: AdapterProcess, n: number, from: number, domain?: string): Promise<SwitchCall[]> {
  return Promise.all(
    Array.from({ length: n }, (_, i) => placeCall({ host: '127.0.0.1', port: a.eslPort }, callOf(from + i, domain))),
  );
}

/** ms from the channel data to the command that routes the call (here: its bridge). */
function routedAfterMs(call: SwitchCall): number {
  const connected = call.framesSent.find((f) => f.kind === 'connect-reply')?.at ?? 0;
  const bridge = call.commands.find(
    (c) => c.headers['execute-app-name'] === 'bridge' || /execute-app-name: bridge/i.test(c.raw),
  );
  assert.ok(bridge, `bridged: ${call.commands.map((c) => c.raw.split('\n')[0]).join(' | ')}`);
  return bridge.at - connected;
}

const unreachableLines = (a: AdapterProcess, endpoint?: string) =>
  a.lines.filter(
    (l) => l.message.startsWith('Zammad is unreachable') && (endpoint === undefined || l['endpoint'] === endpoint),
  );
const timeoutLines = (a: AdapterProcess) => a.lines.filter((l) => l.message.startsWith('no answer from Zammad within'));

async function readyChecks(a: AdapterProcess): Promise<Record<string, { ok: boolean; detail?: string }>> {
  const res = await fetch(`http://127.0.0.1:${a.statusPort}/readyz`);
  return ((await res.json()) as { checks: Record<string, { ok: boolean; detail?: string }> }).checks;
}

describe('Zammad refusing connections', () => {
  test(
    'once it is known down, calls are handed back at once, one log ' +
      'line, counted; back, every event arrives once, in order, at once',
    async () => {
      const zammad = await double();
      await zammad.refuseConnections();
      const a = await adapter({ ZAMMAD_CTI_URL: zammad.url });

      const first = await place(a, 4, 0);
      await a.waitForLog((l) => l.message.startsWith('Zammad is unreachable'), 5000);
      const later = await place(a, 12, 100);
      await Promise.all([...first, ...later].map((c) => c.closed));
      for (const call of later) {
        const ms = routedAfterMs(call);
        assert.ok(
          ms < AT_ONCE_MS,
          `handed back ${ms} ms after the channel data (ZAMMAD_NEWCALL_TIMEOUT_MS ${NEWCALL_TIMEOUT_MS})`,
        );
      }
      assert.equal(unreachableLines(a).length, 1, 'one line for the state change, not one per call');
      assert.match(unreachableLines(a)[0]?.message ?? '', /ECONNREFUSED.*calls go on at once without its decision/);
      const laterIds = new Set(later.map((c) => c.uuid));
      assert.deepEqual(
        timeoutLines(a).filter((l) => laterIds.has(String(l['callId']))),
        [],
        'no caller waited for a decision that could not come',
      );
      const m = await metrics(a.statusPort);
      assert.ok(
        (m.get('cti_newcall_verdict_skipped_total{endpoint="default",reason="unreachable"}') ?? 0) >= later.length,
        'counted',
      );
      assert.match((await readyChecks(a))['zammad']?.detail ?? '', /unreachable/);
      const all = [...first, ...later];
      await waitUntil(
        async () =>
          (await metrics(a.statusPort)).get('cti_outbox_events{endpoint="default"}') === all.length * EVENTS.length,
        'every event waits',
      );

      await zammad.acceptConnections();
      const back = Date.now();
      await zammad.waitFor((z) => all.every((c) => z.entry(c.uuid)?.state === 'hangup'), 15_000);
      const drained = Date.now() - back;
      assert.ok(
        drained < 8000,
        `the backlog reached Zammad ${drained} ms after it was back (RETRY_MAX_MS ${RETRY_MAX_MS})`,
      );
      await new Promise((r) => setTimeout(r, 300)); // a stray repeat would show up now
      for (const call of all) {
        assert.deepEqual(zammad.acceptedEvents(call.uuid), EVENTS, `${call.uuid}: every event once, in order`);
        assert.equal(zammad.postsFor(call.uuid).length, EVENTS.length, 'nothing reached Zammad twice');
      }
      await a.waitForLog((l) => l.message.startsWith('Zammad answers again'));
      assert.equal(a.lines.filter((l) => l.message.startsWith('Zammad answers again')).length, 1);
      assert.equal(unreachableLines(a).length, 1);
      assert.equal((await readyChecks(a))['zammad']?.ok, true);
    },
  );
});

describe('per endpoint', () => {
  test(
    "one tenant's Zammad down: its calls go at once, the " + "other tenant's callers still get Zammad's decision",
    async () => {
      const down = await double();
      const up = await double({ blockedNumbers: ['4930999999999'] });
      const file = join(dir, `endpoints-${randomUUID()}.json`);
      const endpoints = [
        { name: 'down', url: down.url, domains: ['down.example'] },
        { name: 'up', url: up.url, domains: ['up.example'] },
      ];
      writeFileSync(file, JSON.stringify({ endpoints }));
      await down.refuseConnections();
      const a = await adapter({ ZAMMAD_ENDPOINTS_FILE: file });

      await place(a, 4, 0, 'down.example');
      await a.waitForLog((l) => l.message.startsWith('Zammad is unreachable') && l['endpoint'] === 'down', 5000);
      const downCalls = await place(a, 6, 10, 'down.example');
      const upCalls = await place(a, 3, 20, 'up.example');
      const blocked = await placeCall({ host: '127.0.0.1', port: a.eslPort }, callOf(30, 'up.example', BLOCKED));
      await Promise.all([...downCalls, ...upCalls, blocked].map((c) => c.closed));
      for (const call of downCalls)
        assert.ok(routedAfterMs(call) < AT_ONCE_MS, `down: handed back after ${routedAfterMs(call)} ms`);
      assert.equal(blocked.hangupCause, 'USER_BUSY', "up's verdict (reject) still arrives and is acted on");
      await up.waitFor((z) => upCalls.every((c) => z.entry(c.uuid)?.state === 'hangup'), 5000);
      for (const call of upCalls) assert.deepEqual(up.acceptedEvents(call.uuid), EVENTS);
      assert.equal(unreachableLines(a, 'up').length, 0);
      const m = await metrics(a.statusPort);
      assert.ok(
        (m.get('cti_newcall_verdict_skipped_total{endpoint="down",reason="unreachable"}') ?? 0) >= downCalls.length,
      );
      assert.equal(m.get('cti_newcall_verdict_skipped_total{endpoint="up",reason="unreachable"}'), undefined);
      const checks = await readyChecks(a);
      assert.equal(checks['zammad:up']?.ok, true);
      assert.equal(checks['zammad:down']?.ok, false);
      assert.match(checks['zammad:down']?.detail ?? '', /unreachable/);
    },
  );
});
