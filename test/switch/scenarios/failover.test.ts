/**
 * Two adapters, one switch (docs/high-availability.md) against a real FreeSWITCH 1.10.12: two
 * built adapters A and B, each with its own Zammad double (so every post names the adapter that
 * sent it), behind the two-adapter gate of conf/high-availability/dialplan/public/00_zammad_cti.xml
 * with its `socket` list set to `127.0.0.1:<A>|127.0.0.1:<B>`. mod_event_socket tries the list in
 * order: both up, calls go to A; A stopped with SIGTERM in the middle of a call closes its port at
 * once and follows that call to its end (drain), while the calls placed meanwhile go to B; A started
 * again takes the next calls again; both down, the gate falls through and the routing runs once.
 * Every call is reported exactly once (newCall, answer, hangup), at one Zammad, and none is cut.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RealSwitch, type FinishedCall } from '../harness.js';
import type { Extension } from '../dialplan.js';
import { freePort, type Line } from '../adapter.js';
import { switchAddress } from '../switch-address.js';
import type { AdapterProcess } from '../../e2e/adapter-process.js';
import { Leg } from '../legs.js';
import { CALLER, common, executions, user } from '../scenario-kit.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CONF_HA_GATE = join(ROOT, 'conf', 'high-availability', 'dialplan', 'public', '00_zammad_cti.xml');

const CTX = { up: 'cti_test_ha', down: 'cti_test_ha_down' } as const;
/** The suite's own numbers: 4930999870xx → CTX.up, 4930999871xx → CTX.down. */
const N = {
  /** 2004 answers and talks 20 s: the call in progress while A drains */
  talk: '493099987001',
  /** 2000 answers, 3 s tone, hangs up */
  short: '493099987002',
  /** 2003 rings 3 s, answers, 2 s tone, hangs up */
  ring: '493099987003',
  down: '493099987101',
} as const;

const ALICE = { user: 'Alice Agent', answeringNumber: '2000' };
const BOB = { user: 'Bob Agent', answeringNumber: '2003' };
const DAN = { user: 'Dan Agent', answeringNumber: '2004' };

let sw: RealSwitch;
let a: Line;
let b: Line;
/** A's first process, the one stopped with SIGTERM (its log is judged at the end too) */
let drainedA: AdapterProcess | undefined;

/**
 * The shipped two-adapter gate with its socket list pointed at `ports` (host 127.0.0.1 kept, the
 * order kept). Throws when the shipped text no longer has a two-entry list: the test must follow.
 */
function haGate(ports: readonly [number, number]): string {
  const text = readFileSync(CONF_HA_GATE, 'utf8');
  const gate = /<extension name="zammad_cti" continue="true">[\s\S]*?<\/extension>/.exec(text)?.[0];
  const socket = /(<action application="socket" data=")([^" ]+)( async full")/;
  const list = gate && socket.exec(gate)?.[2];
  if (!gate || !list || list.split('|').length !== 2) {
    throw new Error(`${CONF_HA_GATE}: no gate with a two-entry socket list`);
  }
  const hosts = ports.map((p) => `127.0.0.1:${p}`).join('|');
  return gate.replace(socket, (_all, pre: string, _list: string, post: string) => `${pre}${hosts}${post}`);
}

before(async () => {
  sw = await RealSwitch.open();
  const fs = switchAddress();
  // Each instance as docs/high-availability.md runs it: own port, outbox and status port (the
  // harness gives each its own), own FS_INBOUND_* re-attach; a drain long enough for the test.
  const env = {
    DEFAULT_BRIDGE: '',
    SHUTDOWN_DRAIN_MS: '60000',
    FS_INBOUND_HOST: fs.host,
    FS_INBOUND_PORT: String(fs.port),
    FS_INBOUND_PASSWORD: fs.password,
  };
  [a, b] = await Promise.all([sw.line({ name: 'ha-a', env }), sw.line({ name: 'ha-b', env })]);
  assert.notEqual(a.env['OUTBOX_PATH'], b.env['OUTBOX_PATH']);
  const dead: [number, number] = [await freePort(), await freePort()];
  const hab: Extension['actions'][number] = ['set', 'hangup_after_bridge=true'];
  const route = (name: string, number: string, ext: string): Extension => ({
    name: `cti_test_ha_${name}`,
    number,
    actions: [hab, ['bridge', user(ext)]],
  });
  await sw.contexts(`00_cti_test_ha_${process.pid}`, [
    {
      name: CTX.up,
      extensions: [
        haGate([a.eslPort, b.eslPort]),
        route('talk', N.talk, '2004'),
        route('short', N.short, '2000'),
        route('ring', N.ring, '2003'),
      ],
    },
    { name: CTX.down, extensions: [haGate(dead), route('down', N.down, '2000')] },
  ]);
  const toContext = (name: string, expression: string, context: string): Extension => ({
    name,
    expression,
    actions: [
      ['set', 'zammad_direction=in'],
      ['transfer', `$1 XML ${context}`],
    ],
  });
  await sw.dialplan(`00_cti_test_ha_${process.pid}`, [
    toContext('cti_test_ha_to_up', '^(4930999870\\d\\d)$', CTX.up),
    toContext('cti_test_ha_to_down', '^(4930999871\\d\\d)$', CTX.down),
  ]);
});

after(async () => {
  await sw?.close();
});

type Agent = { user: string; answeringNumber: string };

/** newCall, answer by `who`, hangup normalClearing: each once, all accepted; nothing at `other`'s Zammad. */
function reportedOnce(done: FinishedCall, to: string, who: Agent, other: Line): void {
  const c = common(done, to);
  assert.deepEqual(done.params, [
    { event: 'newCall', ...c },
    { event: 'answer', ...c, ...who },
    { event: 'hangup', ...c, cause: 'normalClearing', answeringNumber: who.answeringNumber },
  ]);
  assert.deepEqual(
    done.posts.map((p) => p.status),
    [200, 200, 200],
  );
  assert.deepEqual(other.zammad.postsFor(done.callId), [], `nothing of the call reached ${other.name}'s Zammad`);
}

/** one socket application for the call (the list tried inside it), the routing's bridge exactly once */
function routedOnce(done: FinishedCall, ext: string): void {
  assert.equal(executions(done.inbound, 'socket').length, 1, done.legs.describe());
  const bridges = executions(done.inbound, 'bridge').map((e) => e.headers['Application-Data']);
  assert.deepEqual(bridges, [user(ext)], 'the routing ran once');
  assert.equal(done.inbound.hangupCause, 'NORMAL_CLEARING');
  assert.match(done.result, /^\+OK/);
}

describe('two adapters behind one gate (socket A|B) on a real FreeSWITCH', () => {
  test('both up: the call goes to the first adapter of the list (A), B sees nothing', async () => {
    const done = await sw.finished(a, sw.call('ha-first', { to: N.short, from: CALLER }));
    await sw.judge(done, () => {
      reportedOnce(done, N.short, ALICE, b);
      routedOnce(done, '2000');
    });
  });

  const drainTitle = 'A stopped (SIGTERM) mid-call: it reports that call to its end; calls during its drain go to B';
  test(drainTitle, async () => {
    const talk = sw.call('ha-talk', { to: N.talk, from: CALLER });
    const bridged = (l: typeof talking) => l.byRole('inbound').some((i) => i.has('CHANNEL_BRIDGE'));
    const talking = await sw.legs.waitFor(talk.tag, (l) => bridged(l), 15_000, 'the caller talking to 2004');
    const talkId = talking.one('inbound').uuid;
    await a.zammad.waitFor((z) => z.postsFor(talkId).some((p) => p.event === 'answer' && p.status === 200), 5000);

    const drained = a.adapter;
    drainedA = drained;
    drained.proc.kill('SIGTERM');
    const draining = 'stopped taking new calls; following the calls in progress';
    const stopped = await drained.waitForLog((l) => l.message === draining, 5000);
    assert.equal(stopped['calls'], 1, 'A follows the one call in progress');

    const during = [
      sw.call('ha-drain-short', { to: N.short, from: CALLER }),
      sw.call('ha-drain-ring', { to: N.ring, from: CALLER }),
    ];
    const [short, ring] = await Promise.all(during.map((c) => sw.finished(b, c)));
    assert.equal(drained.proc.exitCode, null, 'A was still draining while B took those calls');
    const ended = sw.legs.legsOf(talk.tag).legs.filter((l) => l.ended);
    assert.deepEqual(ended, [], 'the call in progress at A is still up');

    // The agent ends the call in progress: A reports its hangup, then exits.
    const hungUpAt = Date.now();
    await sw.esl.api(`uuid_kill ${talking.one('bleg').uuid} NORMAL_CLEARING`);
    const done = await sw.finished(a, talk);
    assert.equal(await drained.exited, 0, 'A exited 0 after its drain');
    const last = drained.lines.find((l) => l.message === 'stopped');
    assert.deepEqual([last?.['callsLeft'], last?.['eventsLeft']], [0, 0], 'A left no call and no event behind');

    await sw.judge(done, () => {
      reportedOnce(done, N.talk, DAN, b);
      routedOnce(done, '2004');
      const agentHangup = done.legs.one('bleg').event('CHANNEL_HANGUP');
      const cut = 'the call was not cut: it lasted until the agent hung up';
      assert.ok((agentHangup?.receivedAt ?? 0) >= hungUpAt, cut);
    });
    const atB = [
      [short!, N.short, ALICE, '2000'],
      [ring!, N.ring, BOB, '2003'],
    ] as const;
    for (const [d, to, who, ext] of atB) {
      await sw.judge(d, () => {
        reportedOnce(d, to, who, a);
        routedOnce(d, ext);
        // A refused at once (its port closed): B had the call in the same moment, no connect wait.
        const socketAt = Leg.at(executions(d.inbound, 'socket')[0]) / 1000;
        const newCallAt = d.posts[0]?.at ?? Infinity;
        assert.ok(newCallAt - socketAt < 1000, `newCall at B ${Math.round(newCallAt - socketAt)} ms after socket`);
      });
    }
  });

  test('A started again (a rolling upgrade goes on with B): calls go to A again', async () => {
    const restarted = await a.restart();
    const done = await sw.finished(a, sw.call('ha-back', { to: N.short, from: CALLER }));
    await sw.judge(done, () => {
      reportedOnce(done, N.short, ALICE, b);
      routedOnce(done, '2000');
      const closed = restarted.lines.filter((l) => /left open by an earlier run/.test(l.message));
      assert.deepEqual(closed, [], 'A drained fully: nothing left to close');
    });
  });

  test('both down (nothing on either port): the gate falls through, the routing runs once, unreported', async () => {
    const call = sw.call('ha-down', { to: N.down, from: CALLER });
    const legs = await sw.legs.allEnded(call.tag, 30_000);
    const inbound = legs.one('inbound');
    assert.equal(executions(inbound, 'socket').length, 1, legs.describe());
    const bridges = executions(inbound, 'bridge').map((e) => e.headers['Application-Data']);
    assert.deepEqual(bridges, [user('2000')], 'one bridge');
    assert.ok(legs.one('bleg').has('CHANNEL_ANSWER'), 'the agent answered');
    assert.equal(inbound.hangupCause, 'NORMAL_CLEARING');
    assert.match((await call.result).trim(), /^\+OK/);
    assert.deepEqual([...a.zammad.postsFor(inbound.uuid), ...b.zammad.postsFor(inbound.uuid)], []);
  });
});

describe('the two adapter processes', () => {
  test('logged JSON lines only, and no error', (t) => {
    const processes = [{ name: 'ha-a (drained)', adapter: drainedA }, a, b];
    for (const line of processes) {
      if (!line.adapter) continue;
      const raw = line.adapter.lines.filter((l) => l.level === 'raw' && l.message.trim() !== '');
      assert.deepEqual(raw, [], `${line.name}: stdout lines that are not JSON`);
      const errors = line.adapter.lines.filter((l) => l.level === 'error');
      assert.deepEqual(errors, [], `${line.name}: error log lines`);
      const warnings = line.adapter.lines.filter((l) => l.level === 'warn');
      for (const w of warnings) t.diagnostic(`${line.name} warn: ${w.message}`);
    }
  });
});
