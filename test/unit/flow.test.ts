/**
 * The per-call state machine, driven without sockets: switch signals and Zammad decisions in, commands and posts out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { callFacts } from '../../src/call/facts.js';
import { initialState, reattachedState, type CallState, type Effect, type Input } from '../../src/call/flow.js';
import { readSignal } from '../../src/call/signals.js';
import { ReattachedCall } from '../../src/call/reattached.js';
import type { Logger } from '../../src/process/log.js';
import { dpRules, posts, rules, runner, sig, stateOf } from './flow-kit.js';

function channel(h: Record<string, string>): CallState {
  return stateOf(
    {
      'Unique-ID': 'u-1',
      'Caller-Caller-ID-Number': '03055571600',
      'Caller-Caller-ID-Name': 'Test Caller',
      'Caller-Destination-Number': '491711234567890',
      'Caller-Context': 'public',
      variable_domain_name: 'pbx.example',
      ...h,
    },
    rules,
  );
}

/** Feeds inputs one after another; returns the final state and every effect, in order. */
const run = runner(rules);

const withoutLogs = (effects: Effect[]) => effects.filter((e) => e.type !== 'log');

test(
  'inbound group ring: users looked up, newCall before bridge, ' +
    'answer names the leg that won, hangup normalClearing',
  () => {
    const s = channel({ variable_zammad_bridge: 'user/2003@pbx.example,user/2002@pbx.example' });
    const r = run(s, [
      { type: 'start' },
      { type: 'usersResolved', names: ['Alice', 'Bob'] },
      { type: 'decision', decision: { kind: 'continue', why: 'reply' } },
      sig({ kind: 'bridged', otherNumber: '2002', otherChannel: 'sofia/internal/2002@pbx', otherUuid: 'b-2002' }),
      { type: 'answererResolved', leg: 'b-2002', answerer: { name: 'Bob', number: '2002' } },
      sig({ kind: 'bridgeDone', cause: undefined, transferSource: undefined }),
      sig({ kind: 'hangup', cause: 'NORMAL_CLEARING', bridgeCause: 'SUCCESS' }),
      sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: 'SUCCESS' }),
    ]);
    assert.deepEqual(withoutLogs(r.effects), [
      { type: 'lookupUsers', directoryIds: ['2003@pbx.example', '2002@pbx.example'] },
      {
        type: 'decide',
        post: {
          event: 'newCall',
          callId: 'u-1',
          direction: 'in',
          from: '493055571600',
          to: '491711234567890',
          users: ['Alice', 'Bob'],
        },
      },
      { type: 'bridge', dialString: 'user/2003@pbx.example,user/2002@pbx.example' },
      { type: 'lookupAnswerer', leg: 'b-2002', directoryId: '2002@pbx.example' },
      {
        type: 'post',
        post: {
          event: 'answer',
          callId: 'u-1',
          direction: 'in',
          from: '493055571600',
          to: '491711234567890',
          user: 'Bob',
          answeringNumber: '2002',
        },
      },
      { type: 'hangup', cause: 'NORMAL_CLEARING' },
      {
        type: 'post',
        post: {
          event: 'hangup',
          callId: 'u-1',
          direction: 'in',
          from: '493055571600',
          to: '491711234567890',
          cause: 'normalClearing',
          answeringNumber: '2002',
        },
      },
      { type: 'exit' },
    ]);
  },
);

test('reject: hangs up USER_BUSY, never bridges, reports hangup busy', () => {
  const r = run(channel({ variable_zammad_users: 'Alice' }), [
    { type: 'start' },
    { type: 'decision', decision: { kind: 'reject', reason: 'busy' } },
    sig({ kind: 'hangup', cause: 'USER_BUSY', bridgeCause: undefined }),
    sig({ kind: 'hangupComplete', cause: 'USER_BUSY', bridgeCause: undefined }),
  ]);
  const cmds = withoutLogs(r.effects).map((e) => e.type);
  assert.deepEqual(cmds, ['decide', 'hangup', 'post', 'exit']);
  assert.ok(!r.effects.some((e) => e.type === 'bridge'));
  assert.deepEqual(
    r.effects.find((e) => e.type === 'hangup'),
    { type: 'hangup', cause: 'USER_BUSY' },
  );
  assert.equal(posts(r.effects).at(-1)?.event, 'hangup');
  assert.equal((posts(r.effects).at(-1) as { cause: string }).cause, 'busy');
});

test('outbound dial reply: caller id set before bridge; invalid caller ids never reach the switch', () => {
  const out = {
    'Caller-Context': 'default',
    'Caller-Caller-ID-Number': '2000',
    'Caller-Caller-ID-Name': 'Agent Smith',
    'Caller-Destination-Number': '01711234567',
    variable_zammad_bridge: 'sofia/gateway/carrier/01711234567',
  };
  const good = run(channel(out), [
    { type: 'start' },
    { type: 'decision', decision: { kind: 'dial', callerId: '4930777000000' } },
  ]);
  assert.deepEqual(withoutLogs(good.effects), [
    {
      type: 'decide',
      post: {
        event: 'newCall',
        callId: 'u-1',
        direction: 'out',
        from: '2000',
        to: '491711234567',
        users: ['Agent Smith'],
      },
    },
    { type: 'setVariable', name: 'effective_caller_id_number', value: '4930777000000' },
    { type: 'bridge', dialString: 'sofia/gateway/carrier/01711234567' },
  ]);
  for (const bad of ['4930777\nEvent-UUID: x', '49 30 777', 'abc', 42, null, '1']) {
    const r = run(channel(out), [{ type: 'start' }, { type: 'decision', decision: { kind: 'dial', callerId: bad } }]);
    assert.ok(!r.effects.some((e) => e.type === 'setVariable'), `caller id ${JSON.stringify(bad)} must not be set`);
    assert.ok(r.effects.some((e) => e.type === 'bridge'));
  }
});

test('Zammad silent or failing: the call is bridged all the same', () => {
  for (const why of ['timeout', 'error'] as const) {
    const r = run(channel({ variable_zammad_users: 'A' }), [
      { type: 'start' },
      { type: 'decision', decision: { kind: 'continue', why } },
    ]);
    assert.deepEqual(r.effects.at(-1), { type: 'bridge', dialString: 'user/${destination_number}@${domain_name}' });
  }
});

test('busy: FreeSWITCH hangs the caller up itself, the adapter sends no hangup and reports busy', () => {
  const r = run(channel({ variable_zammad_users: 'A' }), [
    { type: 'start' },
    { type: 'decision', decision: { kind: 'continue', why: 'reply' } },
    sig({ kind: 'hangup', cause: 'USER_BUSY', bridgeCause: 'USER_BUSY' }),
    sig({ kind: 'bridgeDone', cause: 'USER_BUSY', transferSource: undefined }),
    sig({ kind: 'hangupComplete', cause: 'USER_BUSY', bridgeCause: 'USER_BUSY' }),
  ]);
  assert.ok(!r.effects.some((e) => e.type === 'hangup'));
  assert.equal((posts(r.effects).at(-1) as { cause: string }).cause, 'busy');
});

test('no answer: the caller stays up after the bridge, the adapter hangs it up with NO_ANSWER', () => {
  const r = run(channel({ variable_zammad_users: 'A' }), [
    { type: 'start' },
    { type: 'decision', decision: { kind: 'continue', why: 'reply' } },
    sig({ kind: 'bridgeDone', cause: 'NO_ANSWER', transferSource: undefined }),
  ]);
  assert.deepEqual(r.effects.at(-1), { type: 'hangup', cause: 'NO_ANSWER' });
  const end = run(r.state, [sig({ kind: 'hangupComplete', cause: 'NO_ANSWER', bridgeCause: 'NO_ANSWER' })]);
  assert.equal((posts(end.effects)[0] as { cause: string }).cause, 'noAnswer');
});

test('caller cancels while ringing → cancel; hung up while Zammad decides → cancel, no bridge afterwards', () => {
  const ringing = run(channel({ variable_zammad_users: 'A' }), [
    { type: 'start' },
    { type: 'decision', decision: { kind: 'continue', why: 'reply' } },
    // Seen in caller-cancel-sip.txt: at CHANNEL_HANGUP DIALSTATUS is still stale; the final values come later.
    sig({ kind: 'hangup', cause: 'ORIGINATOR_CANCEL', bridgeCause: 'failure' }),
    sig({ kind: 'bridgeDone', cause: 'ORIGINATOR_CANCEL', transferSource: undefined }),
    sig({ kind: 'hangupComplete', cause: 'ORIGINATOR_CANCEL', bridgeCause: 'ORIGINATOR_CANCEL' }),
  ]);
  assert.equal((posts(ringing.effects).at(-1) as { cause: string }).cause, 'cancel');
  assert.ok(!ringing.effects.some((e) => e.type === 'hangup'));

  const early = run(channel({ variable_zammad_users: 'A' }), [
    { type: 'start' },
    sig({ kind: 'hangup', cause: 'NORMAL_CLEARING', bridgeCause: undefined }),
    sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: undefined }),
    { type: 'decision', decision: { kind: 'continue', why: 'reply' } },
  ]);
  assert.ok(!early.effects.some((e) => e.type === 'bridge'));
  assert.deepEqual(
    posts(early.effects).map((p) => [p.event, 'cause' in p ? p.cause : '']),
    [
      ['newCall', ''],
      ['hangup', 'cancel'],
    ],
  );
});

test('unknown number and other failures map through the cause table', () => {
  for (const [fs, zammad] of [
    ['NO_ROUTE_DESTINATION', 'notFound'],
    ['USER_NOT_REGISTERED', 'notFound'],
    ['NORMAL_TEMPORARY_FAILURE', 'congestion'],
    ['REDIRECTION_TO_NEW_DESTINATION', 'forwarded'],
  ] as const) {
    const r = run(channel({ variable_zammad_users: 'A' }), [
      { type: 'start' },
      { type: 'decision', decision: { kind: 'continue', why: 'reply' } },
      sig({ kind: 'hangup', cause: fs, bridgeCause: fs }),
      sig({ kind: 'hangupComplete', cause: fs, bridgeCause: fs }),
    ]);
    assert.equal((posts(r.effects).at(-1) as { cause: string }).cause, zammad, fs);
  }
});

test('hangup waits for the answer lookup, so answer always goes out first; exactly one hangup', () => {
  const r = run(channel({ variable_zammad_bridge: 'user/2003@d' }), [
    { type: 'start' },
    { type: 'usersResolved', names: [undefined] },
    { type: 'decision', decision: { kind: 'continue', why: 'reply' } },
    sig({ kind: 'bridged', otherNumber: '2003', otherChannel: 'x', otherUuid: 'b-2003' }),
    sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: 'SUCCESS' }),
    { type: 'connectionLost' },
    { type: 'answererResolved', leg: 'b-2003', answerer: { number: '2003' } },
    sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: 'SUCCESS' }),
  ]);
  assert.deepEqual(
    posts(r.effects).map((p) => p.event),
    ['newCall', 'answer', 'hangup'],
  );
  const answer = posts(r.effects)[1] as { user: string };
  assert.equal(answer.user, '2003', 'no directory name: the extension stands in');
  assert.deepEqual((posts(r.effects)[0] as { users: string[] }).users, ['2003']);
});

test(
  'connection lost mid-call, answer look-up pending: the answer, then one hangup with what is known; ' +
    'the same leg bridged twice answers once',
  () => {
    const r = run(channel({ variable_zammad_users: 'A' }), [
      { type: 'start' },
      { type: 'decision', decision: { kind: 'continue', why: 'reply' } },
      sig({ kind: 'bridged', otherNumber: '2000', otherChannel: 'x', otherUuid: 'b-2000' }),
      sig({ kind: 'bridged', otherNumber: '2000', otherChannel: 'x', otherUuid: 'b-2000' }),
      { type: 'connectionLost' },
      { type: 'connectionLost' },
    ]);
    assert.deepEqual(
      posts(r.effects).map((p) => p.event),
      ['newCall', 'answer', 'hangup'],
    );
    assert.equal((posts(r.effects)[2] as { cause: string }).cause, 'normalClearing');
  },
);

test('a call without a Unique-ID is still bridged, but nothing is posted', () => {
  const headers: Record<string, string> = { 'Caller-Context': 'public' };
  const s = initialState(
    callFacts((k) => headers[k], rules),
    false,
  );
  const r = run(s, [
    { type: 'start' },
    sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: undefined }),
  ]);
  assert.deepEqual(
    withoutLogs(r.effects).map((e) => e.type),
    ['bridge', 'exit'],
  );
});

test('connection lost before newCall went out: newCall then hangup, so Zammad knows the call', () => {
  const r = run(channel({ variable_zammad_bridge: 'user/2003@d' }), [
    { type: 'start' },
    { type: 'connectionLost' },
    { type: 'usersResolved', names: ['X'] },
  ]);
  assert.deepEqual(
    posts(r.effects).map((p) => p.event),
    ['newCall', 'hangup'],
  );
  assert.ok(!r.effects.some((e) => e.type === 'bridge' || e.type === 'decide'));
});

// ---------------------------------------------------------------------------------------------
// Transfers and dialplan mode (test/fixtures/esl/routing/README.md, observations named)
// ---------------------------------------------------------------------------------------------

/** A caller channel whose gate set zammad_handled; no zammad_bridge and DEFAULT_BRIDGE empty: dialplan mode. */
function dpChannel(h: Record<string, string> = {}): CallState {
  return stateOf(
    {
      'Unique-ID': 'u-1',
      'Caller-Caller-ID-Number': '03055571600',
      'Caller-Caller-ID-Name': 'Test Caller',
      'Caller-Destination-Number': '4930998001',
      'Caller-Context': 'public',
      variable_zammad_handled: 'true',
      variable_transfer_source: '1796318661:aa:bl_xfer:4930998001/public/XML',
      ...h,
    },
    dpRules,
  );
}
const handedBack = (_s: CallState): Input[] => [
  { type: 'start' },
  { type: 'decision', decision: { kind: 'continue', why: 'reply' } },
];
const causeOf = (effects: Effect[]) => (posts(effects).at(-1) as { cause?: string }).cause;
const commands = (effects: Effect[]) =>
  effects.filter((e) => ['bridge', 'hangup', 'setVariable', 'handBack'].includes(e.type));

test(
  'bridge mode, REFER blind transfer (obs. 7/8): the bridge returns with a new transfer_source → no hangup; ' +
    'the new person answers again; one hangup normalClearing',
  () => {
    const s = channel({ variable_zammad_bridge: 'user/2005@d', variable_transfer_source: 't0' });
    const r = run(s, [
      { type: 'start' },
      { type: 'usersResolved', names: ['Erin'] },
      { type: 'decision', decision: { kind: 'continue', why: 'reply' } },
      sig({ kind: 'bridged', otherNumber: '2005', otherChannel: 'sofia/lo-in/2005', otherUuid: 'b-2005' }),
      { type: 'answererResolved', leg: 'b-2005', answerer: { name: 'Erin Agent', number: '2005' } },
      sig({ kind: 'bridgeDone', cause: 'SUCCESS', transferSource: 't1:bl_xfer:4930997006/zx/XML' }),
      sig({ kind: 'socketReturned' }),
      sig({ kind: 'bridged', otherNumber: '2003', otherChannel: 'sofia/lo-in/2003', otherUuid: 'b-2003' }),
      { type: 'answererResolved', leg: 'b-2003', answerer: { name: 'Bob Agent', number: '2003', userId: '17' } },
      sig({ kind: 'bridgeDone', cause: 'SUCCESS', transferSource: 't1:bl_xfer:4930997006/zx/XML' }),
      sig({ kind: 'hangup', cause: 'NORMAL_CLEARING', bridgeCause: 'SUCCESS' }),
      sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: 'SUCCESS' }),
    ]);
    assert.deepEqual(
      commands(r.effects),
      [{ type: 'bridge', dialString: 'user/2005@d' }],
      'the adapter never hangs up the transferred caller',
    );
    assert.deepEqual(
      posts(r.effects).map((p) => [
        p.event,
        'user' in p ? p.user : '',
        'answeringNumber' in p ? p.answeringNumber : '',
        'cause' in p ? p.cause : '',
      ]),
      [
        ['newCall', '', '', ''],
        ['answer', 'Erin Agent', '2005', ''],
        ['answer', 'Bob Agent', '2003', ''],
        ['hangup', '', '2003', 'normalClearing'],
      ],
    );
    assert.equal((posts(r.effects)[2] as { userId?: string }).userId, '17');
    assert.ok(
      r.effects.some((e) => e.type === 'lookupAnswerer' && e.leg === 'b-2003' && e.directoryId === undefined),
      'a transfer target is asked of its B-leg',
    );
  },
);

test(
  'bridge mode: a bridge that returns with the same transfer_source is the agent hanging up → the adapter hangs ' +
    'the caller up',
  () => {
    const r = run(channel({ variable_zammad_users: 'A', variable_transfer_source: 't0' }), [
      { type: 'start' },
      { type: 'decision', decision: { kind: 'continue', why: 'reply' } },
      sig({ kind: 'bridged', otherNumber: '2000', otherChannel: 'x', otherUuid: 'b-2000' }),
      { type: 'answererResolved', leg: 'b-2000', answerer: {} },
      sig({ kind: 'bridgeDone', cause: 'SUCCESS', transferSource: 't0' }),
    ]);
    assert.deepEqual(r.effects.at(-1), { type: 'hangup', cause: 'NORMAL_CLEARING' });
  },
);

test(
  'dialplan mode: newCall (no user[] inbound), then the hand-back; nothing commanded afterwards, ' +
    'whatever the dialplan does',
  () => {
    const r = run(dpChannel(), [
      ...handedBack(dpChannel()),
      sig({ kind: 'socketReturned' }),
      sig({ kind: 'bridgeDone', cause: 'NO_ANSWER', transferSource: 'other' }),
      sig({ kind: 'bridgeDone', cause: 'USER_BUSY', transferSource: undefined }),
      sig({ kind: 'hangup', cause: 'NORMAL_CLEARING', bridgeCause: 'USER_BUSY' }),
      sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: 'USER_BUSY' }),
    ]);
    assert.deepEqual(withoutLogs(r.effects), [
      {
        type: 'decide',
        post: { event: 'newCall', callId: 'u-1', direction: 'in', from: '493055571600', to: '4930998001', users: [] },
      },
      { type: 'handBack' },
      {
        type: 'post',
        post: {
          event: 'hangup',
          callId: 'u-1',
          direction: 'in',
          from: '493055571600',
          to: '4930998001',
          cause: 'busy',
        },
      },
      { type: 'exit' },
    ]);
  },
);

test('dialplan mode: zammad_users still names the users', () => {
  const r = run(dpChannel({ variable_zammad_users: 'Support, Sales' }), handedBack(dpChannel()));
  assert.deepEqual((posts(r.effects)[0] as { users: string[] }).users, ['Support', 'Sales']);
  assert.deepEqual(r.effects.at(-1), { type: 'handBack' });
});

test(
  'no dial string and no zammad_handled (an old unguarded socket extension): not followed, nothing posted, ' +
    'the socket lets go',
  () => {
    const r = run(dpChannel({ variable_zammad_handled: '' }), [
      ...handedBack(dpChannel()),
      sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: undefined }),
      { type: 'connectionLost' },
    ]);
    assert.deepEqual(
      posts(r.effects),
      [],
      'Zammad never hears of it: a second newCall (or a hangup of a call it never saw) would be wrong',
    );
    assert.deepEqual(withoutLogs(r.effects), [{ type: 'exit' }]);
    assert.ok(r.effects.some((e) => e.type === 'log' && /neither zammad_handled .* nor zammad_bridge/.test(e.message)));
  },
);

test('dialplan mode: reject hangs up USER_BUSY and never hands back (no routing runs); hangup busy', () => {
  const r = run(dpChannel(), [
    { type: 'start' },
    { type: 'decision', decision: { kind: 'reject', reason: 'busy' } },
    sig({ kind: 'hangupComplete', cause: 'USER_BUSY', bridgeCause: undefined }),
  ]);
  assert.deepEqual(commands(r.effects), [{ type: 'hangup', cause: 'USER_BUSY' }]);
  assert.equal(causeOf(r.effects), 'busy');
});

test(
  'dialplan mode, outbound dial reply: effective_ and outbound_caller_id_number set, then the hand-back; ' +
    'user[] names the caller',
  () => {
    const r = run(
      dpChannel({
        'Caller-Context': 'default',
        'Caller-Caller-ID-Number': '2000',
        'Caller-Caller-ID-Name': 'Agent Smith',
        'Caller-Destination-Number': '01711234567',
      }),
      [{ type: 'start' }, { type: 'decision', decision: { kind: 'dial', callerId: '4930777000000' } }],
    );
    assert.deepEqual((posts(r.effects)[0] as { users: string[] }).users, ['Agent Smith']);
    assert.deepEqual(commands(r.effects), [
      { type: 'setVariable', name: 'effective_caller_id_number', value: '4930777000000' },
      { type: 'setVariable', name: 'outbound_caller_id_number', value: '4930777000000' },
      { type: 'handBack' },
    ]);
  },
);

test(
  'dialplan mode, group ring (obs. 4): the CHANNEL_BRIDGE names the person, asked of the B-leg; ' +
    'hangup normalClearing with their number',
  () => {
    const r = run(dpChannel(), [
      ...handedBack(dpChannel()),
      sig({ kind: 'bridged', otherNumber: '2003', otherChannel: 'sofia/lo-in/2003@127.0.0.1:5091', otherUuid: 'b-1' }),
      { type: 'answererResolved', leg: 'b-1', answerer: { name: 'Bob Agent', number: '2003' } },
      sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: 'SUCCESS' }),
    ]);
    assert.ok(r.effects.some((e) => e.type === 'lookupAnswerer' && e.leg === 'b-1' && e.directoryId === undefined));
    const answer = posts(r.effects)[1] as { event: string; user: string; answeringNumber: string };
    assert.deepEqual([answer.event, answer.user, answer.answeringNumber], ['answer', 'Bob Agent', '2003']);
    assert.equal(causeOf(r.effects), 'normalClearing');
  },
);

test(
  'the switch answering is not a person (obs. 5): CHANNEL_ANSWER is not even read; ' +
    'a caller who leaves during queue music or an IVR → cancel',
  () => {
    assert.equal(readSignal({ name: 'CHANNEL_ANSWER', get: () => undefined }), null);
    const r = run(dpChannel(), [
      ...handedBack(dpChannel()),
      sig({ kind: 'hangup', cause: 'NORMAL_CLEARING', bridgeCause: undefined }),
      sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: undefined }),
    ]);
    assert.deepEqual(
      posts(r.effects).map((p) => p.event),
      ['newCall', 'hangup'],
    );
    assert.equal(causeOf(r.effects), 'cancel');
  },
);

test('queue agent (obs. 4/9): answer names the agent; zammad_queue goes out on every post', () => {
  const r = run(dpChannel({ variable_zammad_queue: 'support' }), [
    ...handedBack(dpChannel()),
    sig({ kind: 'bridged', otherNumber: '2003', otherChannel: 'sofia/lo-in/2003', otherUuid: 'agent-leg' }),
    { type: 'answererResolved', leg: 'agent-leg', answerer: { name: 'Bob Agent', number: '2003' } },
    sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: undefined }),
  ]);
  assert.deepEqual(
    posts(r.effects).map((p) => [p.event, p.queue]),
    [
      ['newCall', 'support'],
      ['answer', 'support'],
      ['hangup', 'support'],
    ],
  );
});

test('no answer, then voicemail (obs. 6): answer user=voicemail with the mailbox, hangup normalClearing', () => {
  const r = run(dpChannel(), [
    ...handedBack(dpChannel()),
    sig({ kind: 'bridgeDone', cause: 'NO_ANSWER', transferSource: undefined }),
    sig({ kind: 'voicemail', mailbox: '2002' }),
    sig({ kind: 'hangup', cause: 'NORMAL_CLEARING', bridgeCause: 'NO_ANSWER' }),
    sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: 'NO_ANSWER' }),
  ]);
  assert.deepEqual(posts(r.effects).slice(1), [
    {
      event: 'answer',
      callId: 'u-1',
      direction: 'in',
      from: '493055571600',
      to: '4930998001',
      user: 'voicemail',
      answeringNumber: '2002',
    },
    {
      event: 'hangup',
      callId: 'u-1',
      direction: 'in',
      from: '493055571600',
      to: '4930998001',
      cause: 'normalClearing',
      answeringNumber: '2002',
    },
  ]);
  assert.ok(!r.effects.some((e) => e.type === 'hangup'));
});

test('voicemail after a person talked is not a second answer', () => {
  const r = run(dpChannel(), [
    ...handedBack(dpChannel()),
    sig({ kind: 'bridged', otherNumber: '2000', otherChannel: 'x', otherUuid: 'b-2000' }),
    { type: 'answererResolved', leg: 'b-2000', answerer: { name: 'Alice', number: '2000' } },
    sig({ kind: 'voicemail', mailbox: '2002' }),
  ]);
  assert.deepEqual(
    posts(r.effects).map((p) => p.event),
    ['newCall', 'answer'],
  );
});

test(
  'a bridge that timed out, then the dialplan hangs up → noAnswer; the caller gives up while the dialplan rings ' +
    '(obs. 10) → cancel',
  () => {
    const timedOut = run(dpChannel(), [
      ...handedBack(dpChannel()),
      sig({ kind: 'bridgeDone', cause: 'NO_ANSWER', transferSource: undefined }),
      sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: 'NO_ANSWER' }),
    ]);
    assert.equal(causeOf(timedOut.effects), 'noAnswer');
    const cancelled = run(dpChannel(), [
      ...handedBack(dpChannel()),
      sig({ kind: 'hangup', cause: 'ORIGINATOR_CANCEL', bridgeCause: undefined }),
      sig({ kind: 'bridgeDone', cause: 'ORIGINATOR_CANCEL', transferSource: undefined }),
      sig({ kind: 'hangupComplete', cause: 'ORIGINATOR_CANCEL', bridgeCause: 'ORIGINATOR_CANCEL' }),
    ]);
    assert.equal(causeOf(cancelled.effects), 'cancel');
  },
);

test(
  'transfer after answer (uuid_transfer, REFER): a new person answers again, the same person twice does not; ' +
    'no transfer yields forwarded',
  () => {
    const r = run(dpChannel(), [
      ...handedBack(dpChannel()),
      sig({ kind: 'bridged', otherNumber: '2004', otherChannel: 'x', otherUuid: 'b-2004' }),
      { type: 'answererResolved', leg: 'b-2004', answerer: { name: 'Dan Agent', number: '2004' } },
      sig({ kind: 'bridged', otherNumber: '2004', otherChannel: 'x', otherUuid: 'b-2004' }),
      sig({ kind: 'bridgeDone', cause: 'SUCCESS', transferSource: 'moved' }),
      sig({ kind: 'bridged', otherNumber: '2003', otherChannel: 'y', otherUuid: 'b-2003' }),
      { type: 'answererResolved', leg: 'b-2003', answerer: { name: 'Bob Agent', number: '2003' } },
      sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: 'SUCCESS' }),
    ]);
    assert.deepEqual(
      posts(r.effects).map((p) => [p.event, 'user' in p ? p.user : 'cause' in p ? p.cause : '']),
      [
        ['newCall', ''],
        ['answer', 'Dan Agent'],
        ['answer', 'Bob Agent'],
        ['hangup', 'normalClearing'],
      ],
    );
  },
);

test(
  'answers go out in the order people picked up, ' + 'whatever order their look-ups finish in; the hangup after them',
  () => {
    const r = run(dpChannel(), [
      ...handedBack(dpChannel()),
      sig({ kind: 'bridged', otherNumber: '2004', otherChannel: 'x', otherUuid: 'b-2004' }),
      sig({ kind: 'bridged', otherNumber: '2003', otherChannel: 'y', otherUuid: 'b-2003' }),
      sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: 'SUCCESS' }),
      { type: 'answererResolved', leg: 'b-2003', answerer: { name: 'Bob Agent', number: '2003' } },
      { type: 'answererResolved', leg: 'b-2004', answerer: { name: 'Dan Agent' } },
    ]);
    assert.deepEqual(
      posts(r.effects).map((p) => [p.event, 'user' in p ? p.user : '']),
      [
        ['newCall', ''],
        ['answer', 'Dan Agent'],
        ['answer', 'Bob Agent'],
        ['hangup', ''],
      ],
    );
    assert.equal(
      (posts(r.effects)[3] as { answeringNumber?: string }).answeringNumber,
      '2003',
      'the hangup names who had the call last',
    );
    assert.deepEqual(
      r.effects.at(-1),
      { type: 'exit' },
      'the goodbye waits for the look-ups: they go over this socket',
    );
    assert.equal(r.effects.filter((e) => e.type === 'exit').length, 1);
  },
);

test('a leg that is no directory user (gateway, sofia/…) answers with its number and no user', () => {
  const r = run(dpChannel(), [
    ...handedBack(dpChannel()),
    sig({ kind: 'bridged', otherNumber: '0301234567', otherChannel: 'sofia/gateway/gw/0301234567', otherUuid: 'b-gw' }),
    { type: 'answererResolved', leg: 'b-gw', answerer: {} },
  ]);
  const answer = posts(r.effects)[1] as unknown as Record<string, unknown>;
  assert.equal(answer['answeringNumber'], '49301234567');
  assert.equal('user' in answer, false);
});

test(
  're-attached after a restart: an answered caller channel without a bridge partner is not a person (IVR, ' +
    'queue music); one with Other-Leg-* is',
  () => {
    const quiet = {
      info() {},
      warn() {},
      error() {},
      debug() {},
      child() {
        return quiet;
      },
    } as unknown as Logger;
    const ev = (name: string, h: Record<string, string>) => ({
      name,
      get: (k: string) => ({ 'Unique-ID': 'u-1', ...h })[k],
    });
    for (const [bridged, expected] of [
      [false, ['hangup:cancel']],
      [true, ['answer', 'hangup:normalClearing']],
    ] as const) {
      const sent: string[] = [];
      const facts = dpChannel().facts;
      const call = new ReattachedCall(
        facts,
        false,
        undefined,
        rules,
        (p) => sent.push(p.event === 'hangup' ? `hangup:${p.cause}` : p.event),
        quiet,
      );
      const other: Record<string, string> = bridged
        ? { 'Other-Leg-Unique-ID': 'b-1', 'Other-Leg-Destination-Number': '2003' }
        : {};
      call.onEvent(
        ev('CHANNEL_EXECUTE', {
          'Caller-Channel-Answered-Time': '1796318665019029',
          Application: 'playback',
          ...other,
        }),
      );
      call.onEvent(
        ev('CHANNEL_HANGUP_COMPLETE', {
          'Caller-Channel-Answered-Time': '1796318665019029',
          'Hangup-Cause': 'NORMAL_CLEARING',
          ...other,
        }),
      );
      assert.deepEqual(sent, expected);
    }
  },
);

test(
  'a destination with a space (a SIP user part may carry %20) is never handed back with transfer: ' +
    'the socket lets go instead, nothing posted',
  () => {
    const r = run(dpChannel({ 'Caller-Destination-Number': '1000 XML default' }), [
      ...handedBack(dpChannel()),
      { type: 'connectionLost' },
    ]);
    assert.ok(!r.effects.some((e) => e.type === 'handBack'), 'no transfer into another context');
    assert.deepEqual(withoutLogs(r.effects), [{ type: 'exit' }]);
    assert.ok(r.effects.some((e) => e.type === 'log' && /a transfer could reach another context/.test(e.message)));
    const fine = run(dpChannel({ 'Caller-Destination-Number': '+4930998001' }), handedBack(dpChannel()));
    assert.deepEqual(fine.effects.at(-1), { type: 'handBack' });
  },
);

test('a hangup held for a look-up names the number the look-up found (dialed_user), like the answer before it', () => {
  const r = run(dpChannel(), [
    ...handedBack(dpChannel()),
    sig({ kind: 'bridged', otherNumber: 'agent-x', otherChannel: 'loopback/agent-x', otherUuid: 'b-1' }),
    sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: 'SUCCESS' }),
    { type: 'answererResolved', leg: 'b-1', answerer: { name: 'Bob Agent', number: '2003' } },
  ]);
  const [, answer, hangup] = posts(r.effects) as { answeringNumber?: string }[];
  assert.equal(answer?.answeringNumber, '2003');
  assert.equal(hangup?.answeringNumber, '2003');
});

test(
  're-attached after a restart: the person the journal knows is not answered again, ' +
    'a new one (a transfer since) is',
  () => {
    const facts = dpChannel().facts;
    const later = (otherNumber: string) =>
      run(reattachedState(facts, true, '2003'), [
        sig({ kind: 'bridged', otherNumber, otherChannel: 'x', otherUuid: 'b-late' }),
        { type: 'answererResolved', leg: 'b-late', answerer: {} },
      ]);
    assert.deepEqual(posts(later('2003').effects), []);
    assert.deepEqual(
      posts(later('2004').effects).map((p) => [p.event, 'answeringNumber' in p ? p.answeringNumber : '']),
      [['answer', '2004']],
    );
  },
);

test(
  'voicemail leaving a message is read with its mailbox; `voicemail check …` (someone listening to their messages) ' +
    'is not an answer',
  () => {
    const ev = (data: string) => ({
      name: 'CHANNEL_EXECUTE',
      get: (h: string) => ({ Application: 'voicemail', 'Application-Data': data })[h],
    });
    assert.deepEqual(readSignal(ev('default test.local 2002')), { kind: 'voicemail', mailbox: '2002' });
    assert.equal(readSignal(ev('check default test.local 2002')), null);
    assert.equal(readSignal(ev('check auth default test.local')), null);
  },
);
