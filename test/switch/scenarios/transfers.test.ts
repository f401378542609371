/**
 * Whoever ends up talking to the caller is the one Zammad shows (issue 19), against a real
 * FreeSWITCH 1.10.12, dialplan mode, the shipped gate: call pickup (`intercept -bleg` of the ringing
 * leg, FusionPBX `*8`/`**ext`, and plain `intercept`), attended transfer (`att_xfer`, the way `*4`
 * runs it on the agent's leg), park and retrieve (`park`, then `uuid_bridge` from the retriever's
 * own channel: the bundle has no mod_valet_parking), and an eavesdropping supervisor who is no
 * person. Each asserts Zammad's exact posts, that the adapter only looked things up after the
 * hand-back, and that no call was cut.
 *
 * The "phones" that pick up, retrieve or listen are SIP calls placed from lo-targets with the
 * phone's caller id (2003, Bob Agent) to 4930999870xx, which `public` sends to a context of their
 * own; the uuid they act on travels in the SIP header X-Target (test/fixtures/esl/transfers/README.md).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RealSwitch, type FinishedCall } from '../harness.js';
import { zammadGate, type Extension } from '../dialplan.js';
import { describeCommand, type EslTap } from '../esl-tap.js';
import type { Line } from '../adapter.js';
import { CALLER, DOMAIN, common, executions, user } from '../scenario-kit.js';
import type { PlacedCall } from '../place-call.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CONF_GATE = join(ROOT, 'conf', 'dialplan', 'public', '00_zammad_cti.xml');
const CTX = { main: 'cti_test_xf', phones: 'cti_test_xf_phones' } as const;

const N = {
  ringCarol: '493099987001',
  talkDan: '493099987002',
  park: '493099987003',
  pickupBleg: '493099987901',
  pickup: '493099987902',
  retrieve: '493099987903',
  eavesdrop: '493099987904',
} as const;

/** after the hand-back the adapter may only read */
const READ_ONLY_API = /^api (uuid_getvar|user_data|uuid_exists|uuid_dump|global_getvar) /;
const HANDBACK = 'execute transfer ${destination_number} XML ${context}';

let sw: RealSwitch;
let main: Line;
let tap: EslTap;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const route = (name: string, number: string, actions: Extension['actions']): Extension => ({
  name: `cti_test_xf_${name}`,
  number,
  actions,
});

before(async () => {
  sw = await RealSwitch.open();
  main = await sw.line({ name: 'transfers', env: { DEFAULT_BRIDGE: '' } });
  tap = await sw.tap(main);
  const hab: Extension['actions'][number] = ['set', 'hangup_after_bridge=true'];
  await sw.contexts(`00_cti_test_xf_${process.pid}`, [
    {
      name: CTX.main,
      extensions: [
        zammadGate(tap.port, CONF_GATE).xml,
        route('ring_carol', N.ringCarol, [hab, ['bridge', user('2002')]]),
        route('talk_dan', N.talkDan, [hab, ['bridge', user('2004')]]),
        route('park', N.park, [['answer'], ['park']]),
      ],
    },
    {
      name: CTX.phones,
      extensions: [
        // the pickups rely on the caller's dialed_domain for the phone's directory domain;
        // the retriever and the supervisor carry domain_name, as a FusionPBX domain context sets it
        route('pickup_bleg', N.pickupBleg, [['intercept', '-bleg ${sip_h_X-Target}']]),
        route('pickup', N.pickup, [['intercept', '${sip_h_X-Target}']]),
        route('retrieve', N.retrieve, [
          ['set', `domain_name=${DOMAIN}`],
          ['answer'],
          ['set', 'res=${uuid_bridge(${uuid} ${sip_h_X-Target})}'],
          ['park'],
        ]),
        route('eavesdrop', N.eavesdrop, [
          ['set', `domain_name=${DOMAIN}`],
          ['answer'],
          ['eavesdrop', '${sip_h_X-Target}'],
        ]),
      ],
    },
  ]);
  await sw.dialplan(`00_cti_test_xf_${process.pid}`, [
    {
      name: 'cti_test_xf_in',
      expression: '^(4930999870\\d\\d)$',
      actions: [
        ['set', 'zammad_direction=in'],
        ['transfer', `$1 XML ${CTX.main}`],
      ],
    },
    { name: 'cti_test_xf_phones', expression: '^(4930999879\\d\\d)$', actions: [['transfer', `$1 XML ${CTX.phones}`]] },
  ]);
});

after(async () => {
  await sw?.close();
});

/** One socket connection, handed back once, then only read-only look-ups and the final `exit`. */
function assertOnlyLookedUp(callId: string): void {
  const conns = tap.forCall(callId);
  assert.equal(conns.length, 1, 'one socket connection for the call');
  const cmds = (conns[0] as (typeof conns)[0]).commands.map(describeCommand);
  const i = cmds.indexOf(HANDBACK);
  assert.ok(i >= 0 && cmds.lastIndexOf(HANDBACK) === i, `handed back once: ${cmds.join(' | ')}`);
  const afterIt = cmds.slice(i + 1);
  assert.deepEqual(
    afterIt.filter((x, j) => !(READ_ONLY_API.test(x) || (x === 'exit' && j === afterIt.length - 1))),
    [],
    `only look-ups after the hand-back: ${afterIt.join(' | ')}`,
  );
}

/** A phone (caller id 2003, Bob Agent) dialling a feature code that acts on `target`. */
function phone(label: string, code: string, target: string): PlacedCall {
  return sw.call(label, { to: code, from: '2003', fromName: 'Bob Agent', vars: { 'sip_h_X-Target': target } });
}

const ringing = (call: PlacedCall) =>
  sw.legs.waitFor(
    call.tag,
    (l) => l.byRole('bleg').some((b) => b.has('CHANNEL_PROGRESS') || b.has('CHANNEL_PROGRESS_MEDIA')),
    15_000,
    '2002 ringing',
  );
const talking = (call: PlacedCall) =>
  sw.legs.waitFor(
    call.tag,
    (l) => l.byRole('inbound').some((i) => i.has('CHANNEL_BRIDGE')),
    15_000,
    'the caller talking to Dan',
  );

/** The caller was connected to the phone's channel for `ms` at least before the call ended. */
function assertTalkedTo(done: FinishedCall, other: string, ms: number): void {
  const bridged = done.inbound.event(
    'CHANNEL_EXECUTE',
    (e) => e.headers['Application'] === 'uuid_bridge' && e.headers['Application-Data'] === other,
  );
  assert.ok(bridged, `the caller was uuid_bridged to ${other}: ${done.legs.describe()}`);
  const hangup = done.inbound.event('CHANNEL_HANGUP');
  const talked =
    (Number(hangup?.headers['Event-Date-Timestamp']) - Number(bridged.headers['Event-Date-Timestamp'])) / 1000;
  assert.ok(talked >= ms, `connected ${Math.round(talked)} ms before the call ended (not cut)`);
}

describe('pickup, attended transfer, park on a real FreeSWITCH (dialplan mode)', () => {
  test(
    'pickup with intercept -bleg of the ringing leg (*8): answer Bob Agent/2003 (the picker), ' +
      'hangup normalClearing, not forwarded',
    async () => {
      const call = sw.call('xf-pickup-bleg', { to: N.ringCarol, from: CALLER });
      const carol = (await ringing(call)).one('bleg');
      await sleep(500);
      const bob = phone('xf-picker-bleg', N.pickupBleg, carol.uuid);
      const bobIn = (
        await sw.legs.waitFor(
          bob.tag,
          (l) => l.byRole('inbound').some((i) => i.has('CHANNEL_BRIDGE')),
          10_000,
          'Bob bridged',
        )
      ).one('inbound');
      await sleep(2000);
      await sw.esl.api(`uuid_kill ${bob.callerUuid} NORMAL_CLEARING`);
      const done = await sw.finished(main, call);
      await sw.judge(done, () => {
        const c = common(done, N.ringCarol);
        assert.deepEqual(done.params, [
          { event: 'newCall', ...c },
          { event: 'answer', ...c, user: 'Bob Agent', answeringNumber: '2003' },
          { event: 'hangup', ...c, cause: 'normalClearing', answeringNumber: '2003' },
        ]);
        assert.equal(done.legs.one('bleg').hangupCause, 'PICKED_OFF', "Carol's leg was picked off");
        assertTalkedTo(done, bobIn.uuid, 1500);
        assert.equal(done.inbound.hangupCause, 'NORMAL_CLEARING');
        assertOnlyLookedUp(done.callId);
      });
    },
  );

  test('pickup with plain intercept of the caller channel: answer Bob Agent/2003, hangup normalClearing', async () => {
    const call = sw.call('xf-pickup', { to: N.ringCarol, from: CALLER });
    const inbound = (await ringing(call)).one('inbound');
    await sleep(500);
    const bob = phone('xf-picker', N.pickup, inbound.uuid);
    const bobIn = (
      await sw.legs.waitFor(
        bob.tag,
        (l) => l.byRole('inbound').some((i) => i.has('CHANNEL_BRIDGE')),
        10_000,
        'Bob bridged',
      )
    ).one('inbound');
    await sleep(2000);
    await sw.esl.api(`uuid_kill ${bob.callerUuid} NORMAL_CLEARING`);
    const done = await sw.finished(main, call);
    await sw.judge(done, () => {
      const c = common(done, N.ringCarol);
      assert.deepEqual(done.params, [
        { event: 'newCall', ...c },
        { event: 'answer', ...c, user: 'Bob Agent', answeringNumber: '2003' },
        { event: 'hangup', ...c, cause: 'normalClearing', answeringNumber: '2003' },
      ]);
      assertTalkedTo(done, bobIn.uuid, 1500);
      assert.equal(main.zammad.entry(done.callId)?.done, true, 'Zammad files it as a call someone took');
      assertOnlyLookedUp(done.callId);
    });
  });

  test(
    "attended transfer: att_xfer on Dan's leg (*4) to 2000, Dan's phone hangs up: answers Dan then Alice, " +
      'hangup normalClearing',
    async () => {
      const call = sw.call('xf-attxfer', { to: N.talkDan, from: CALLER });
      const legs = await talking(call);
      await main.zammad.waitFor((z) => z.postsFor(legs.one('inbound').uuid).some((p) => p.event === 'answer'), 5000);
      await sw.esl.api(`uuid_broadcast ${legs.one('bleg').uuid} att_xfer::${user('2000')}`);
      // 2000 answers at once and plays 3 s; Dan hangs up during the consultation
      await sleep(1500);
      await sw.esl.api(`uuid_kill ${legs.one('phone').uuid} NORMAL_CLEARING`);
      const done = await sw.finished(main, call);
      await sw.judge(done, () => {
        const c = common(done, N.talkDan);
        assert.deepEqual(done.params, [
          { event: 'newCall', ...c },
          { event: 'answer', ...c, user: 'Dan Agent', answeringNumber: '2004' },
          { event: 'answer', ...c, user: 'Alice Agent', answeringNumber: '2000' },
          { event: 'hangup', ...c, cause: 'normalClearing', answeringNumber: '2000' },
        ]);
        const zoe = done.legs.legs.find((l) => l.role === 'bleg' && l.first('Caller-Destination-Number') === '2000');
        assert.ok(zoe, `2000 was called: ${done.legs.describe()}`);
        assertTalkedTo(done, zoe.uuid, 1000);
        assertOnlyLookedUp(done.callId);
      });
    },
  );

  test(
    'park and retrieve: the switch answering the parked caller is no person; the retriever (Bob) is: one answer, ' +
      'hangup normalClearing',
    async () => {
      const call = sw.call('xf-park', { to: N.park, from: CALLER });
      const inbound = (
        await sw.legs.waitFor(
          call.tag,
          (l) => l.byRole('inbound').some((i) => executions(i, 'park').length > 0),
          15_000,
          'parked',
        )
      ).one('inbound');
      await sleep(1000);
      assert.deepEqual(
        main.zammad.postsFor(inbound.uuid).map((p) => p.event),
        ['newCall'],
        'parked: no answer yet',
      );
      const bob = phone('xf-retriever', N.retrieve, inbound.uuid);
      const bobIn = (
        await sw.legs.waitFor(
          bob.tag,
          (l) => l.byRole('inbound').some((i) => i.has('CHANNEL_ANSWER')),
          10_000,
          'Bob answered',
        )
      ).one('inbound');
      await sleep(2500);
      await sw.esl.api(`uuid_kill ${bob.callerUuid} NORMAL_CLEARING`);
      await sleep(500);
      await sw.esl.api(`uuid_kill ${call.callerUuid} NORMAL_CLEARING`).catch(() => undefined);
      const done = await sw.finished(main, call);
      await sw.judge(done, () => {
        const c = common(done, N.park);
        assert.deepEqual(done.params, [
          { event: 'newCall', ...c },
          { event: 'answer', ...c, user: 'Bob Agent', answeringNumber: '2003' },
          { event: 'hangup', ...c, cause: 'normalClearing', answeringNumber: '2003' },
        ]);
        assertTalkedTo(done, bobIn.uuid, 1500);
        assertOnlyLookedUp(done.callId);
      });
    },
  );

  test(
    "an eavesdropping supervisor is no person: Dan's answer only, " + 'hangup normalClearing; the call was not cut',
    async () => {
      const call = sw.call('xf-eavesdrop', { to: N.talkDan, from: CALLER });
      const inbound = (await talking(call)).one('inbound');
      const sup = phone('xf-supervisor', N.eavesdrop, inbound.uuid);
      const supIn = (
        await sw.legs.waitFor(
          sup.tag,
          (l) => l.byRole('inbound').some((i) => executions(i, 'eavesdrop').length > 0),
          10_000,
          'eavesdropping',
        )
      ).one('inbound');
      await sleep(2000);
      assert.equal(supIn.ended, false, 'the supervisor still listens');
      await sw.esl.api(`uuid_kill ${sup.callerUuid} NORMAL_CLEARING`);
      const done = await sw.finished(main, call);
      await sw.judge(done, () => {
        const c = common(done, N.talkDan);
        assert.deepEqual(done.params, [
          { event: 'newCall', ...c },
          { event: 'answer', ...c, user: 'Dan Agent', answeringNumber: '2004' },
          { event: 'hangup', ...c, cause: 'normalClearing', answeringNumber: '2004' },
        ]);
        // Dan talks 20 s and hangs up: the caller was not hung up when the supervisor left
        const bridge = done.inbound.event('CHANNEL_BRIDGE');
        const hangup = done.inbound.event('CHANNEL_HANGUP');
        assert.ok(
          Number(hangup?.headers['Event-Date-Timestamp']) - Number(bridge?.headers['Event-Date-Timestamp']) >=
            15_000_000,
          "the call went on to Dan's own hangup",
        );
        assertOnlyLookedUp(done.callId);
      });
    },
  );
});

describe('the transfers adapter process', () => {
  test('no error log lines', () => {
    assert.deepEqual(
      main.adapter.lines.filter((l) => l.level === 'error'),
      [],
    );
  });
});
