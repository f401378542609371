/**
 * Dialplan mode end to end with SCRIPTED calls (issue 11): the real adapter program (DEFAULT_BRIDGE
 * empty), the Zammad double, and the switch double routing each call by a scripted dialplan
 * (CallScript.dialplan) after the adapter's hand-back — including what no capture has: a dialplan of
 * 40 `set` apps, reject, outbound caller id, a REFER in bridge mode with user/ targets. Each test
 * asserts the exact posts Zammad got and the exact commands the switch got: after the hand-back
 * nothing but `api` look-ups, then `exit`.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { CallScript, DialplanApp, SwitchCall } from '@freeswitch-zammad-cti/sim/switch';
import { commandLines as sentLines } from './command-lines.js';
import { dialplanAdapter, HAND_BACK, summary } from './dialplan-adapter.js';

const { zammad, place: run } = dialplanAdapter({
  blockedNumbers: ['493055571699'],
  outboundRoutes: [{ dest: '49171*', callerId: '4930777000000' }],
});

const DIRECTORY: CallScript['directory'] = {
  '2000@test.local': { effective_caller_id_name: 'Alice Agent' },
  '2002@test.local': { effective_caller_id_name: 'Carol Agent' },
  '2003@test.local': { effective_caller_id_name: 'Bob Agent', zammad_user_id: '17' },
  '2004@test.local': { effective_caller_id_name: 'Dan Agent' },
  '2005@test.local': { effective_caller_id_name: 'Erin Agent' },
};
const hab: DialplanApp = { app: 'set', data: 'hangup_after_bridge=true' };
const bridge = (data: string): DialplanApp => ({ app: 'bridge', data });
const PUBLIC: Record<string, DialplanApp[]> = {
  '4930998001': [
    { app: 'set', data: 'continue_on_fail=true' },
    hab,
    bridge('{originate_timeout=1}user/2002@test.local'),
    { app: 'answer' },
    { app: 'voicemail', data: 'default test.local 2002' },
    { app: 'hangup' },
  ],
  '4930998003': [hab, bridge('user/2003@test.local,user/2002@test.local')],
  '4930998005': [hab, bridge('user/2004@test.local')],
  '4930998006': [hab, bridge('user/2003@test.local')],
  '4930998007': [hab, { app: 'callcenter', data: 'support@test.local' }],
  '4930998008': [
    { app: 'answer' },
    { app: 'playback', data: 'tone_stream://%(1000,0,350)' },
    hab,
    bridge('user/2000@test.local'),
  ],
  '4930998010': [hab, bridge('user/2005@test.local')],
  '4930998012': [hab, bridge('user/2002@test.local')],
  '4930997006': [hab, bridge('user/2003@test.local')],
  '4930998040': [
    ...Array.from(
      { length: 40 },
      (_, i): DialplanApp => ({ app: i % 2 ? 'export' : 'set', data: `fpbx_var_${i}=value ${i}` }),
    ),
    hab,
    bridge('user/2003@test.local'),
  ],
};
const DEFAULT: Record<string, DialplanApp[]> = {
  '01711234567': [
    { app: 'set', data: 'effective_caller_id_number=${outbound_caller_id_number}' },
    hab,
    bridge('sofia/gateway/carrier/01711234567'),
  ],
};

function script(dest: string, s: Partial<CallScript> = {}, variables: Record<string, string> = {}): CallScript {
  return {
    timeScale: 0.2,
    originateTimeoutMs: 5000,
    directory: DIRECTORY,
    dialplan: { public: PUBLIC, default: DEFAULT },
    queues: { 'support@test.local': { agents: ['2003@test.local', '2002@test.local'], musicMs: 500 } },
    ...s,
    channel: {
      uuid: randomUUID(),
      callerNumber: '493055571600',
      callerName: 'Test Caller',
      destination: dest,
      context: 'public',
      sip: true,
      variables: { zammad_handled: 'true', zammad_direction: 'in', ...variables },
    },
  };
}

const commandLines = (call: SwitchCall): string[] => sentLines(call.commands);

const OPENING = ['connect', 'myevents json', 'linger'];
const FILTERS = [
  'filter Event-Name CHANNEL_BRIDGE',
  'filter Event-Name CHANNEL_HANGUP',
  'filter Event-Name CHANNEL_HANGUP_COMPLETE',
  'filter Application bridge',
  'filter Application uuid_bridge',
  'filter Application voicemail',
  'filter Application socket',
];

/** The commands up to the hand-back; after it only `api` look-ups (returned), then `exit`. */
function afterHandBack(call: SwitchCall, before: string[] = []): string[] {
  const lines = commandLines(call);
  const at = lines.indexOf(HAND_BACK);
  assert.ok(at >= 0, `hand-back sent: ${lines.join(' | ')}`);
  assert.deepEqual(
    lines.slice(0, at),
    [...OPENING, ...FILTERS, ...before],
    'subscription, filters, then straight to the hand-back',
  );
  const rest = lines.slice(at + 1);
  assert.equal(rest.at(-1), 'exit');
  assert.ok(
    rest.slice(0, -1).every((l) => l.startsWith('api ')),
    `nothing but api after the hand-back: ${rest.join(' | ')}`,
  );
  assert.ok(!call.socketLostWhileUp, 'the call never depended on the socket');
  return rest.slice(0, -1);
}
const getvars = (lines: string[]) =>
  lines.filter((l) => l.startsWith('api uuid_getvar')).map((l) => l.split(' ').slice(3).join(' '));

describe('dialplan mode with scripted calls (the switch double routes)', () => {
  test(
    "hand-back, group ring via the dialplan: answer names the B-leg's user, asked by uuid_getvar; " +
      'hangup normalClearing',
    async () => {
      const { call, posts } = await run(
        script('4930998003', {
          targets: { '2002': { kind: 'ring' }, '2003': { kind: 'answer', ringMs: 300, talkMs: 2000 } },
        }),
      );
      assert.deepEqual(summary(posts), ['newCall', 'answer Bob Agent 17 2003', 'hangup 2003 normalClearing']);
      for (const p of posts)
        assert.deepEqual([p['from'], p['to'], p['direction']], ['493055571600', '4930998003', 'in']);
      const api = afterHandBack(call);
      assert.deepEqual(getvars(api), ['dialed_user', 'dialed_domain'], 'who answered is asked of the B-leg');
      assert.ok(
        !call.framesSent.some((f) => f.kind === 'api-response' && (f.replyText ?? '').startsWith('-ERR')),
        'every look-up found the live B-leg',
      );
      assert.deepEqual(
        api.filter((l) => l.startsWith('api user_data')),
        [
          'api user_data 2003@test.local var effective_caller_id_name',
          'api user_data 2003@test.local var zammad_user_id',
        ],
      );
      assert.deepEqual(call.appsRun.slice(0, 3), [
        'transfer 4930998003 XML public',
        'set hangup_after_bridge=true',
        'bridge user/2003@test.local,user/2002@test.local',
      ]);
      assert.equal(zammad.entry(call.uuid)?.done, true);
    },
  );

  test(
    'no answer, then voicemail: answer user=voicemail with the mailbox, ' + 'hangup normalClearing, not done',
    async () => {
      const { call, posts } = await run(script('4930998001', { targets: { '2002': { kind: 'ring' } } }));
      assert.deepEqual(summary(posts), ['newCall', 'answer voicemail 2002', 'hangup 2002 normalClearing']);
      assert.deepEqual(afterHandBack(call), []);
      assert.ok(call.appsRun.includes('voicemail default test.local 2002'));
      assert.equal(zammad.entry(call.uuid)?.done, false);
    },
  );

  test(
    'mod_callcenter queue with music on hold: ' + "the queue's answer is none, the agent's is; queue on every post",
    async () => {
      const { call, posts } = await run(
        script(
          '4930998007',
          { targets: { '2002': { kind: 'ring' }, '2003': { kind: 'answer', ringMs: 300, talkMs: 2000 } } },
          { zammad_queue: 'support' },
        ),
      );
      assert.deepEqual(summary(posts), ['newCall', 'answer Bob Agent 17 2003', 'hangup 2003 normalClearing']);
      assert.deepEqual(
        posts.map((p) => p['queue']),
        ['support', 'support', 'support'],
      );
      const api = afterHandBack(call);
      assert.deepEqual(getvars(api), ['dialed_user', 'dialed_domain'], 'the agent leg (user/ contact) names the agent');
      assert.deepEqual(
        api.filter((l) => l.startsWith('api user_data')),
        [
          'api user_data 2003@test.local var effective_caller_id_name',
          'api user_data 2003@test.local var zammad_user_id',
        ],
      );
      assert.ok(
        !call.framesSent.some((f) => f.kind === 'api-response' && (f.replyText ?? '').startsWith('-ERR')),
        'every look-up found the live agent leg',
      );
      assert.equal(call.variables()['cc_agent'], '2003@test.local');
    },
  );

  test('IVR (answer, playback), then an agent: answer only at the bridge', async () => {
    const { call, posts } = await run(script('4930998008', { targets: { '2000': { kind: 'answer', talkMs: 2000 } } }));
    assert.deepEqual(summary(posts), ['newCall', 'answer Alice Agent 2000', 'hangup 2000 normalClearing']);
    afterHandBack(call);
  });

  test(
    "REFER blind transfer by the agent's phone: " + 'answer again for the new person, one hangup, never forwarded',
    async () => {
      const { call, posts } = await run(
        script('4930998010', {
          targets: {
            '2005': { kind: 'answer', referTo: '4930997006', referAfterMs: 2500 },
            '2003': { kind: 'answer', talkMs: 2000 },
          },
        }),
      );
      assert.deepEqual(summary(posts), [
        'newCall',
        'answer Erin Agent 2005',
        'answer Bob Agent 17 2003',
        'hangup 2003 normalClearing',
      ]);
      afterHandBack(call);
      assert.equal(call.hangupCause, 'NORMAL_CLEARING');
    },
  );

  test('uuid_transfer of the talking caller: answer again for the new person', async () => {
    const { call, posts } = await run(
      script('4930998005', {
        targets: { '2004': { kind: 'answer', talkMs: 60000 }, '2003': { kind: 'answer', talkMs: 2000 } },
      }),
      async (c) => {
        await zammad.waitFor((z) => z.postsFor(c.uuid).some((p) => p.params['event'] === 'answer'), 5000);
        c.uuidTransfer('4930998006');
      },
    );
    assert.deepEqual(summary(posts), [
      'newCall',
      'answer Dan Agent 2004',
      'answer Bob Agent 17 2003',
      'hangup 2003 normalClearing',
    ]);
    afterHandBack(call);
  });

  test('the caller gives up while the dialplan rings: hangup cancel', async () => {
    const { call, posts } = await run(
      script('4930998012', { targets: { '2002': { kind: 'ring' } }, callerCancelAfterMs: 1500 }),
    );
    assert.deepEqual(summary(posts), ['newCall', 'hangup cancel']);
    assert.deepEqual(afterHandBack(call), []);
    assert.equal(call.hangupCause, 'ORIGINATOR_CANCEL');
  });

  test('reject in dialplan mode: hangup USER_BUSY, no routing ran (no transfer, no bridge)', async () => {
    const sc = script('4930998003');
    sc.channel.callerNumber = '493055571699';
    const { call, posts } = await run(sc);
    assert.deepEqual(
      posts.map((p) => [p['event'], p['cause'] ?? '']),
      [
        ['newCall', ''],
        ['hangup', 'busy'],
      ],
    );
    assert.deepEqual(commandLines(call), [...OPENING, ...FILTERS, 'sendmsg hangup USER_BUSY', 'exit']);
    assert.equal(call.hangupCause, 'USER_BUSY');
    assert.deepEqual(call.bridges, []);
    assert.ok(!call.appsRun.some((a) => a.startsWith('transfer') || a.startsWith('bridge')), call.appsRun.join(' | '));
  });

  test(
    "outbound caller id in dialplan mode: the routing's set " +
      "effective_caller_id_number=${outbound_caller_id_number} keeps Zammad's",
    async () => {
      const sc = script(
        '01711234567',
        { targets: { '01711234567': { kind: 'answer', ringMs: 100, talkMs: 1000 } } },
        { zammad_direction: 'out' },
      );
      sc.channel.callerNumber = '2000';
      sc.channel.callerName = 'Agent Smith';
      sc.channel.context = 'default';
      const { call, posts } = await run(sc);
      assert.deepEqual(summary(posts), [
        'newCall Agent Smith',
        'answer 491711234567',
        'hangup 491711234567 normalClearing',
      ]);
      for (const p of posts) assert.deepEqual([p['from'], p['to'], p['direction']], ['2000', '491711234567', 'out']);
      afterHandBack(call, [
        'sendmsg execute set effective_caller_id_number=4930777000000',
        'sendmsg execute set outbound_caller_id_number=4930777000000',
      ]);
      assert.ok(
        call.appsRun.includes('set effective_caller_id_number=4930777000000'),
        'the routing re-set it from outbound_caller_id_number',
      );
      assert.equal(
        call.variables()['effective_caller_id_number'],
        '4930777000000',
        "the far end sees Zammad's caller id",
      );
    },
  );

  test(
    'a dialplan of 40 set/export apps before its bridge: none of their 80 events reaches the adapter; ' +
      'the call is reported exactly',
    async () => {
      const { call, posts } = await run(
        script('4930998040', { targets: { '2003': { kind: 'answer', ringMs: 300, talkMs: 2000 } } }),
      );
      assert.deepEqual(summary(posts), ['newCall', 'answer Bob Agent 17 2003', 'hangup 2003 normalClearing']);
      afterHandBack(call);
      assert.equal(call.appsRun.filter((a) => /^(set|export) fpbx_var_/.test(a)).length, 40, 'the 40 apps ran');
      const leaked = call.framesSent.filter(
        (f) => f.application === 'set' || f.application === 'export' || f.eventName === 'CHANNEL_STATE',
      );
      assert.deepEqual(
        leaked.map((f) => f.label),
        [],
        'nothing of the 40 apps was sent',
      );
      assert.ok(
        call.framesSent.some((f) => f.eventName === 'CHANNEL_BRIDGE') &&
          call.framesSent.some((f) => f.eventName === 'CHANNEL_HANGUP_COMPLETE'),
      );
    },
  );
});

describe('bridge mode (zammad_bridge) survives a transfer, scripted', () => {
  test(
    "REFER while the adapter's bridge runs: " +
      'the transferred caller is never hung up by it; answer again; one hangup',
    async () => {
      const { call, posts } = await run(
        script(
          '4930998010',
          {
            targets: {
              '2005': { kind: 'answer', referTo: '4930997006', referAfterMs: 2500 },
              '2003': { kind: 'answer', talkMs: 2000 },
            },
          },
          { zammad_bridge: 'user/2005@test.local' },
        ),
      );
      assert.deepEqual(summary(posts).slice(1), [
        'answer Erin Agent 2005',
        'answer Bob Agent 17 2003',
        'hangup 2003 normalClearing',
      ]);
      const lines = commandLines(call);
      assert.deepEqual(
        lines.filter((l) => l.startsWith('sendmsg')),
        ['sendmsg execute bridge user/2005@test.local'],
        'no hangup, no transfer: the dialplan routes the transferred caller',
      );
      assert.equal(lines.at(-1), 'exit');
      assert.equal(call.hangupCause, 'NORMAL_CLEARING');
      assert.ok(call.appsRun.includes('bridge user/2003@test.local'), 'the REFER target was rung by the dialplan');
    },
  );
});
