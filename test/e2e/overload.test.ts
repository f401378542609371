/**
 * Overload, end to end: the real adapter program, the switch double and the Zammad double. The
 * adapter is stalled from the outside (SIGSTOP, as a long GC pause or a stalled disk would) while a
 * flood of connections arrives, and a slow Zammad meets a burst. Every call gets its routing
 * command within the stated bound — a call shed gets the hand-back at once, unreported —, never a
 * broken connection without a command, and every call the adapter took is in Zammad once, complete.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { placeCall, type CallScript, type SwitchCall } from '@freeswitch-zammad-cti/sim/switch';
import { ZammadDouble } from '@freeswitch-zammad-cti/sim/zammad';
import { startAdapter, type AdapterProcess } from './adapter-process.js';
import { metrics, waitUntil } from './raw-switch.js';
import { commandLines } from './command-lines.js';
import { HAND_BACK } from './dialplan-adapter.js';

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
async function place(a: AdapterProcess, i: number, script: CallScript = callOf(i)): Promise<Outcome> {
  const placedAt = Date.now();
  try {
    return { kind: 'taken', call: await placeCall({ host: '127.0.0.1', port: a.eslPort }, script), placedAt };
  } catch (err) {
    // A reset during the handshake fails the switch's connect() just the same: `socket` goes on at once.
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return { kind: 'refused', ms: Date.now() - placedAt, code };
  }
}

/** A dialplan-mode call through the gate: the dialplan rings 2003 after the hand-back. */
function dialplanCallOf(i: number): CallScript {
  return {
    originateTimeoutMs: 5000,
    directory: { '2003@test.local': { effective_caller_id_name: 'Bob Agent' } },
    dialplan: {
      public: {
        '4930998001': [
          { app: 'set', data: 'hangup_after_bridge=true' },
          { app: 'bridge', data: 'user/2003@test.local' },
        ],
      },
    },
    targets: { '2003': { kind: 'answer', ringMs: 20, talkMs: 40 } },
    channel: {
      uuid: randomUUID(),
      callerNumber: `0301234${String(i).padStart(4, '0')}`,
      destination: '4930998001',
      context: 'public',
      sip: true,
      variables: { domain_name: 'test.local', zammad_handled: 'true', zammad_direction: 'in' },
    },
  };
}

/** ms from the TCP connection to the command that routes the call (its bridge or hand-back), or undefined. */
function routedAfterMs(call: SwitchCall): number | undefined {
  return call.commands.find((c) => ['bridge', 'transfer'].includes(c.headers['execute-app-name'] ?? ''))?.at;
}

const overloadLines = (a: AdapterProcess) => a.lines.filter((l) => /^overload/.test(l.message));

async function everyCallOnce(zammad: ZammadDouble, calls: SwitchCall[]): Promise<void> {
  await zammad.waitFor((z) => calls.every((c) => z.entry(c.uuid)?.state === 'hangup'), 30_000);
  await new Promise((r) => setTimeout(r, 300)); // a stray repeat would show up now
  for (const call of calls) {
    assert.deepEqual(
      zammad.acceptedEvents(call.uuid),
      EVENTS,
      `${call.uuid}: every event once, in order (commands: ${commandLines(call.commands).join(' | ')})`,
    );
    assert.equal(zammad.postsFor(call.uuid).length, EVENTS.length, 'nothing reached Zammad twice');
  }
}

describe('overload', () => {
  test(
    'a stalled adapter meets a flood: every call gets its routing command within the bound; a share of the ' +
      'dialplan-mode calls is handed back at once, unreported, bridge-mode calls never; nothing lost',
    async () => {
      const zammad = await double();
      const timeoutMs = 2000;
      const a = await adapter({
        ZAMMAD_CTI_URL: zammad.url,
        ZAMMAD_NEWCALL_TIMEOUT_MS: String(timeoutMs),
        DEFAULT_BRIDGE: '',
      });
      const pid = a.proc.pid as number;
      const STALL_MS = 1500;
      // Every fifth call in bridge mode: it has no routing of its own to go back to, so it is always taken.
      const scriptOf = (i: number) => (i % 5 === 0 ? callOf(i) : dialplanCallOf(i));

      // Connections made while the adapter is stopped wait in the kernel's backlog, as on a switch.
      process.kill(pid, 'SIGSTOP');
      const stalled = await Promise.all(Array.from({ length: 150 }, (_, i) => place(a, i, scriptOf(i))));
      await new Promise((r) => setTimeout(r, STALL_MS));
      const resumedAt = Date.now();
      process.kill(pid, 'SIGCONT');
      // A flood goes on after it resumes: 3 connections every 10 ms for 1 s (the switch double runs in
      // this process and plays every call through its dialplan: more would measure its own backlog).
      const later: Promise<Outcome>[] = [];
      for (let round = 0; round < 100; round++) {
        for (let j = 0; j < 3; j++) {
          const i = 1000 + round * 3 + j;
          later.push(place(a, i, scriptOf(i)));
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      const outcomes = [...stalled, ...(await Promise.all(later))];
      const calls = outcomes.map((o) => {
        assert.equal(o.kind, 'taken', `the port stays open: ${o.kind === 'refused' ? o.code : ''}`);
        return o as Extract<Outcome, { kind: 'taken' }>;
      });
      await Promise.all(calls.map((o) => o.call.closed));

      const bound = timeoutMs + 1000;
      const shed: SwitchCall[] = [];
      const reported: SwitchCall[] = [];
      for (const o of calls) {
        const lines = commandLines(o.call.commands);
        const ms = routedAfterMs(o.call);
        assert.ok(ms !== undefined, `${o.call.uuid}: routed (${lines.join(' | ')})`);
        // Waiting in the backlog during the stall is the stall's; the adapter's own bound starts at the resume.
        const fromAccept = ms - Math.max(0, resumedAt - o.placedAt);
        assert.ok(
          fromAccept <= bound,
          `${o.call.uuid}: routed ${fromAccept} ms after it could be accepted (${lines.slice(0, 3).join(' | ')}; ` +
            `placed ${o.placedAt - resumedAt} ms after the resume; ` +
            `${o.call.commands.map((c, k) => `${lines[k]?.slice(0, 30)} at ${c.at} ms`).join(', ')})`,
        );
        if (lines[1] === HAND_BACK) {
          // Shed: no subscription, no Zammad; the transfer and `exit` together, and the dialplan routed it.
          assert.deepEqual(lines, ['connect', HAND_BACK, 'exit'], o.call.uuid);
          assert.ok(!o.call.socketLostWhileUp, `${o.call.uuid}: routed by the dialplan, not cut`);
          shed.push(o.call);
        } else {
          // Taken: looked at first (a second `connect`: the channel data again) or taken outright.
          const opening =
            lines[1] === 'connect' ? ['connect', 'connect', 'myevents json'] : ['connect', 'myevents json'];
          assert.deepEqual(lines.slice(0, opening.length), opening, o.call.uuid);
          reported.push(o.call);
        }
      }
      const bridgeMode = calls.filter((o) => o.call.commands.some((c) => c.headers['execute-app-name'] === 'bridge'));
      assert.equal(bridgeMode.length, 90, 'every bridge-mode call was taken');
      assert.ok(shed.length > 0, 'some dialplan-mode calls were shed');
      assert.ok(reported.length > bridgeMode.length, 'some dialplan-mode calls were taken');

      const m = await metrics(a.statusPort);
      assert.ok((m.get('cti_overload_entered_total{level="2"}') ?? 0) >= 1);
      assert.equal(m.get('cti_overload_calls_shed_total'), shed.length, 'every shed call counted');
      assert.ok((m.get('cti_overload_shedding_seconds_total') ?? 0) > 0);
      const lines = overloadLines(a);
      assert.match(lines[0]?.message ?? '', /^overload \(event loop \d+ ms late\): shedding new calls/);
      assert.ok(lines.length <= 12, `one line per level change: ${lines.map((l) => l.message).join(' | ')}`);

      await everyCallOnce(zammad, reported);
      for (const call of shed) assert.equal(zammad.postsFor(call.uuid).length, 0, `${call.uuid}: shed, not reported`);
      // Caught up: normal again, ready.
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
      const again = await place(a, 9999, dialplanCallOf(9999));
      assert.equal(again.kind, 'taken');
      if (again.kind === 'taken') {
        await again.call.closed;
        assert.deepEqual(commandLines(again.call.commands).slice(0, 2), ['connect', 'myevents json'], 'taken again');
        await everyCallOnce(zammad, [again.call]);
      }
      assert.match(overloadLines(a).at(-1)?.message ?? '', /^overload over/);
      assert.match(
        overloadLines(a).find((l) => /^overload easing/.test(l.message))?.message ?? '',
        /taking new calls again/,
      );
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
      assert.equal(m.get('cti_overload_entered_total{level="2"}') ?? 0, 0, 'never shed: the adapter kept up');
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
