/**
 * Overload, end to end: the real adapter program, the switch double and the Zammad double. The
 * adapter is stalled from the outside (SIGSTOP, as a long GC pause or a stalled disk would) while a
 * flood of connections arrives, and a slow Zammad meets a burst. Every call gets its routing
 * command within the stated bound or a fast refusal (ECONNREFUSED), never a broken connection
 * without a command, and every call the adapter took is in Zammad once, complete.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { placeCall, type CallScript, type SwitchCall } from '@freeswitch-zammad-cti/sim/switch';
import { ZammadDouble } from '@freeswitch-zammad-cti/sim/zammad';
import { startAdapter, type AdapterProcess } from './adapter-process.js';
import { metrics, waitUntil } from './raw-switch.js';

const EVENTS = ['newCall', 'answer', 'hangup'];
const running: { adapters: AdapterProcess[]; doubles: ZammadDouble[] } = { adapters: [], doubles: [] };
after(async () => {
  for (const a of running.adapters) {
    if (a.proc.pid !== undefined) a.proc.kill('SIGCONT');
    await a.stop().catch(() => {});
  }
  for (const z of running.doubles) await z.stop();
});

async function double(): Promise<ZammadDouble> {
  const zammad = new ZammadDouble({ token: `tok-${randomUUID()}` });
  await zammad.start();
  running.doubles.push(zammad);
  return zammad;
}

async function adapter(env: Record<string, string>): Promise<AdapterProcess> {
  const a = await startAdapter({ LOG_LEVEL: 'info', SHUTDOWN_DRAIN_MS: '3000', ...env });
  running.adapters.push(a);
  return a;
}

function callOf(i: number): CallScript {
  return {
    channel: {
      uuid: randomUUID(),
      callerNumber: `0301234${String(i).padStart(4, '0')}`,
      destination: '4930998001',
      context: 'public',
      variables: { domain_name: 'pbx.example', zammad_users: 'Alice', zammad_bridge: 'user/2003@pbx.example' },
    },
    targets: { '2003': { kind: 'answer', ringMs: 20, talkMs: 40 } },
  };
}

type Outcome = { kind: 'taken'; call: SwitchCall; placedAt: number } | { kind: 'refused'; ms: number; code: string };

/** One connection as FreeSWITCH's `socket` makes it: taken, or refused (how fast). */
async function place(a: AdapterProcess, i: number): Promise<Outcome> {
  const placedAt = Date.now();
  try {
    return { kind: 'taken', call: await placeCall({ host: '127.0.0.1', port: a.eslPort }, callOf(i)), placedAt };
  } catch (err) {
    // A reset during the handshake fails the switch's connect() just the same: `socket` goes on at once.
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return { kind: 'refused', ms: Date.now() - placedAt, code };
  }
}

/** ms from the TCP connection to the command that routes the call (its bridge), or undefined. */
function routedAfterMs(call: SwitchCall): number | undefined {
  return call.commands.find((c) => c.headers['execute-app-name'] === 'bridge')?.at;
}

const overloadLines = (a: AdapterProcess) => a.lines.filter((l) => /^overload/.test(l.message));

async function everyCallOnce(zammad: ZammadDouble, calls: SwitchCall[]): Promise<void> {
  await zammad.waitFor((z) => calls.every((c) => z.entry(c.uuid)?.state === 'hangup'), 30_000);
  await new Promise((r) => setTimeout(r, 300)); // a stray repeat would show up now
  for (const call of calls) {
    assert.deepEqual(zammad.acceptedEvents(call.uuid), EVENTS, `${call.uuid}: every event once, in order`);
    assert.equal(zammad.postsFor(call.uuid).length, EVENTS.length, 'nothing reached Zammad twice');
  }
}

describe('overload', () => {
  test(
    'a stalled adapter meets a flood: the backlog is served within the bound, then new connections are refused ' +
      'at once until it has caught up; nothing lost',
    async () => {
      const zammad = await double();
      const timeoutMs = 2000;
      const a = await adapter({ ZAMMAD_CTI_URL: zammad.url, ZAMMAD_NEWCALL_TIMEOUT_MS: String(timeoutMs) });
      const pid = a.proc.pid as number;
      const STALL_MS = 1500;

      // Connections made while the adapter is stopped wait in the kernel's backlog, as on a switch.
      process.kill(pid, 'SIGSTOP');
      const stalled = await Promise.all(Array.from({ length: 300 }, (_, i) => place(a, i)));
      await new Promise((r) => setTimeout(r, STALL_MS));
      const resumedAt = Date.now();
      process.kill(pid, 'SIGCONT');
      // A flood goes on after it resumes: 20 connections every 10 ms for 1.5 s.
      const later: Promise<Outcome>[] = [];
      for (let round = 0; round < 150; round++) {
        for (let j = 0; j < 20; j++) later.push(place(a, 1000 + round * 20 + j));
        await new Promise((r) => setTimeout(r, 10));
      }
      const outcomes = [...stalled, ...(await Promise.all(later))];
      const taken = outcomes.flatMap((o) => (o.kind === 'taken' ? [o] : []));
      const refused = outcomes.flatMap((o) => (o.kind === 'refused' ? [o] : []));
      assert.ok(
        stalled.every((o) => o.kind === 'taken'),
        'the kernel held every connection of the stall',
      );
      assert.ok(refused.length > 0, 'new connections were refused while it caught up');
      const codes = new Set(refused.map((o) => o.code));
      assert.ok(
        [...codes].every((c) => c === 'ECONNREFUSED' || c === 'ECONNRESET'),
        [...codes].join(),
      );
      // At once: before the first SYN retransmission (1 s), which is what a full backlog would cost.
      // (Measured in this busy test process, whose own loop adds to it.)
      assert.ok(
        refused.every((o) => o.ms < 1000),
        `refused at once: ${Math.max(...refused.map((o) => o.ms))} ms`,
      );

      await Promise.all(taken.map((o) => o.call.closed));
      const bound = timeoutMs + 1000;
      for (const o of taken) {
        const ms = routedAfterMs(o.call);
        assert.ok(ms !== undefined, `${o.call.uuid}: routed (${o.call.commands.map((c) => c.name).join(' ')})`);
        // Waiting in the backlog during the stall is the stall's; the adapter's own bound starts at the resume.
        const fromAccept = ms - Math.max(0, resumedAt - o.placedAt);
        assert.ok(fromAccept <= bound, `${o.call.uuid}: routed ${fromAccept} ms after it could be accepted`);
      }
      const m = await metrics(a.statusPort);
      assert.ok((m.get('cti_overload_entered_total{level="2"}') ?? 0) >= 1);
      assert.ok((m.get('cti_overload_refusing_seconds_total') ?? 0) > 0);
      const lines = overloadLines(a);
      assert.match(lines[0]?.message ?? '', /^overload \(event loop \d+ ms late\): refusing new calls/);
      assert.ok(lines.length <= 8, `one line per level change: ${lines.map((l) => l.message).join(' | ')}`);

      await everyCallOnce(
        zammad,
        taken.map((o) => o.call),
      );
      // Caught up: normal again, ready, the port listening as before.
      await waitUntil(
        async () => (await metrics(a.statusPort)).get('cti_overload_level') === 0,
        'back to level 0',
        15_000,
      );
      const ready = (await (await fetch(`http://127.0.0.1:${a.statusPort}/readyz`)).json()) as {
        checks: Record<string, { ok: boolean; detail: string }>;
      };
      assert.equal(ready.checks['load']?.ok, true);
      assert.match(ready.checks['load']?.detail ?? '', /^normal \(level 0\)/);
      const again = await place(a, 9999);
      assert.equal(again.kind, 'taken', 'listening again on the same port');
      if (again.kind === 'taken') {
        await again.call.closed;
        await everyCallOnce(zammad, [again.call]);
      }
      assert.match(overloadLines(a).at(-1)?.message ?? '', /^overload over/);
    },
  );

  test(
    'a slow Zammad and a burst: callers stop waiting for its decision once it cannot answer in time; ' +
      'every newCall still reaches it',
    async () => {
      const zammad = await double();
      zammad.setFault({ kind: 'delay', ms: 400 }, { events: ['newCall'] });
      // One connection, 300 ms: Zammad decides max(20, 1 × 300 / 40) newCalls in time, no more.
      const a = await adapter({
        ZAMMAD_CTI_URL: zammad.url,
        ZAMMAD_NEWCALL_TIMEOUT_MS: '300',
        ZAMMAD_MAX_CONNECTIONS: '1',
      });
      const outcomes = await Promise.all(Array.from({ length: 200 }, (_, i) => place(a, i)));
      const calls = outcomes.map((o) => {
        assert.equal(o.kind, 'taken');
        return (o as Extract<Outcome, { kind: 'taken' }>).call;
      });
      await Promise.all(calls.map((c) => c.closed));
      for (const call of calls) {
        const ms = routedAfterMs(call);
        assert.ok(ms !== undefined && ms <= 300 + 1000, `${call.uuid}: routed after ${ms} ms`);
      }
      const m = await metrics(a.statusPort);
      const skipped = m.get('cti_newcall_verdict_skipped_total{endpoint="default",reason="overload"}') ?? 0;
      assert.ok(skipped >= 100, `most callers did not wait: ${skipped}`);
      assert.equal(m.get('cti_overload_entered_total{level="2"}') ?? 0, 0, 'never refused: the adapter kept up');
      assert.match(overloadLines(a)[0]?.message ?? '', /newCalls not yet answered by Zammad.*without waiting/);
      zammad.clearFault();
      await everyCallOnce(zammad, calls);
    },
  );

  test('a stop while the kernel holds connections for the port: each is taken as a call, none is reset', async () => {
    // Closing the port would reset them, and FreeSWITCH parks a call whose socket breaks before its
    // first command (mod_event_socket.c socket_function()): the stop closes it after a quiet turn.
    const zammad = await double();
    const a = await adapter({ ZAMMAD_CTI_URL: zammad.url });
    const pid = a.proc.pid as number;
    process.kill(pid, 'SIGSTOP');
    const queued = await Promise.all(Array.from({ length: 50 }, (_, i) => place(a, 5000 + i)));
    const exit = a.stop('SIGTERM'); // handled once it runs again, with the connections still queued
    await new Promise((r) => setTimeout(r, 200));
    process.kill(pid, 'SIGCONT');
    const taken = queued.flatMap((o) => (o.kind === 'taken' ? [o.call] : []));
    assert.equal(taken.length, 50, 'the kernel held every connection');
    await waitUntil(() => taken.every((c) => routedAfterMs(c) !== undefined), 'every queued call routed', 15_000);
    await everyCallOnce(zammad, taken);
    assert.equal(await exit, 0, 'the drain ends cleanly');
  });
});
