/** The per-call state machine, driven without sockets: switch signals and Zammad decisions in, commands and posts out. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { callFacts, type CallRules } from '../../src/call/facts.js';
import { initialState, step, type CallState, type CtiPost, type Effect, type Input } from '../../src/call/flow.js';
import type { ChannelSignal } from '../../src/call/signals.js';

const rules: CallRules = { defaultCountryCode: '49', extensionMaxDigits: 6, inboundContexts: ['public'], defaultBridge: 'user/${destination_number}@${domain_name}' };

function channel(h: Record<string, string>): CallState {
  const headers: Record<string, string> = {
    'Unique-ID': 'u-1',
    'Caller-Caller-ID-Number': '03055571600',
    'Caller-Caller-ID-Name': 'Test Caller',
    'Caller-Destination-Number': '491711234567890',
    'Caller-Context': 'public',
    'variable_domain_name': 'pbx.example',
    ...h,
  };
  return initialState(callFacts((k) => headers[k], rules), true);
}

/** Feeds inputs one after another; returns the final state and every effect, in order. */
function run(s: CallState, inputs: Input[]): { state: CallState; effects: Effect[] } {
  const effects: Effect[] = [];
  let state = s;
  for (const input of inputs) {
    const r = step(state, input, rules);
    state = r.state;
    effects.push(...r.effects);
  }
  return { state, effects };
}

const sig = (signal: ChannelSignal): Input => ({ type: 'signal', signal });
const withoutLogs = (effects: Effect[]) => effects.filter((e) => e.type !== 'log');
const posts = (effects: Effect[]): CtiPost[] => effects.flatMap((e): CtiPost[] => (e.type === 'post' || e.type === 'decide' ? [e.post] : []));

test('inbound group ring: users looked up, newCall before bridge, answer names the leg that won, hangup normalClearing', () => {
  const s = channel({ variable_zammad_bridge: 'user/2003@pbx.example,user/2002@pbx.example' });
  const r = run(s, [
    { type: 'start' },
    { type: 'usersResolved', names: ['Alice', 'Bob'] },
    { type: 'decision', decision: { kind: 'continue', why: 'reply' } },
    sig({ kind: 'bridged', otherNumber: '2002', otherChannel: 'sofia/internal/2002@pbx' }),
    { type: 'answererResolved', name: 'Bob' },
    sig({ kind: 'bridgeDone', cause: undefined, transferred: false }),
    sig({ kind: 'hangup', cause: 'NORMAL_CLEARING', bridgeCause: 'SUCCESS', transferred: false }),
    sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: 'SUCCESS', transferred: false }),
  ]);
  assert.deepEqual(withoutLogs(r.effects), [
    { type: 'lookupUsers', directoryIds: ['2003@pbx.example', '2002@pbx.example'] },
    { type: 'decide', post: { event: 'newCall', callId: 'u-1', direction: 'in', from: '493055571600', to: '491711234567890', users: ['Alice', 'Bob'] } },
    { type: 'bridge', dialString: 'user/2003@pbx.example,user/2002@pbx.example' },
    { type: 'lookupAnswerer', directoryId: '2002@pbx.example' },
    { type: 'post', post: { event: 'answer', callId: 'u-1', direction: 'in', from: '493055571600', to: '491711234567890', user: 'Bob', answeringNumber: '2002' } },
    { type: 'hangup', cause: 'NORMAL_CLEARING' },
    { type: 'post', post: { event: 'hangup', callId: 'u-1', direction: 'in', from: '493055571600', to: '491711234567890', cause: 'normalClearing', answeringNumber: '2002' } },
    { type: 'exit' },
  ]);
});

test('reject: hangs up USER_BUSY, never bridges, reports hangup busy', () => {
  const r = run(channel({ variable_zammad_users: 'Alice' }), [
    { type: 'start' },
    { type: 'decision', decision: { kind: 'reject', reason: 'busy' } },
    sig({ kind: 'hangup', cause: 'USER_BUSY', bridgeCause: undefined, transferred: false }),
    sig({ kind: 'hangupComplete', cause: 'USER_BUSY', bridgeCause: undefined, transferred: false }),
  ]);
  const cmds = withoutLogs(r.effects).map((e) => e.type);
  assert.deepEqual(cmds, ['decide', 'hangup', 'post', 'exit']);
  assert.ok(!r.effects.some((e) => e.type === 'bridge'));
  assert.deepEqual(r.effects.find((e) => e.type === 'hangup'), { type: 'hangup', cause: 'USER_BUSY' });
  assert.equal(posts(r.effects).at(-1)?.event, 'hangup');
  assert.equal((posts(r.effects).at(-1) as { cause: string }).cause, 'busy');
});

test('outbound dial reply: caller id set before bridge; invalid caller ids never reach the switch', () => {
  const out = { 'Caller-Context': 'default', 'Caller-Caller-ID-Number': '2000', 'Caller-Caller-ID-Name': 'Agent Smith', 'Caller-Destination-Number': '01711234567', variable_zammad_bridge: 'sofia/gateway/carrier/01711234567' };
  const good = run(channel(out), [{ type: 'start' }, { type: 'decision', decision: { kind: 'dial', callerId: '4930777000000' } }]);
  assert.deepEqual(withoutLogs(good.effects), [
    { type: 'decide', post: { event: 'newCall', callId: 'u-1', direction: 'out', from: '2000', to: '491711234567', users: ['Agent Smith'] } },
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
    const r = run(channel({ variable_zammad_users: 'A' }), [{ type: 'start' }, { type: 'decision', decision: { kind: 'continue', why } }]);
    assert.deepEqual(r.effects.at(-1), { type: 'bridge', dialString: 'user/${destination_number}@${domain_name}' });
  }
});

test('busy: FreeSWITCH hangs the caller up itself, the adapter sends no hangup and reports busy', () => {
  const r = run(channel({ variable_zammad_users: 'A' }), [
    { type: 'start' },
    { type: 'decision', decision: { kind: 'continue', why: 'reply' } },
    sig({ kind: 'hangup', cause: 'USER_BUSY', bridgeCause: 'USER_BUSY', transferred: false }),
    sig({ kind: 'bridgeDone', cause: 'USER_BUSY', transferred: false }),
    sig({ kind: 'hangupComplete', cause: 'USER_BUSY', bridgeCause: 'USER_BUSY', transferred: false }),
  ]);
  assert.ok(!r.effects.some((e) => e.type === 'hangup'));
  assert.equal((posts(r.effects).at(-1) as { cause: string }).cause, 'busy');
});

test('no answer: the caller stays up after the bridge, the adapter hangs it up with NO_ANSWER', () => {
  const r = run(channel({ variable_zammad_users: 'A' }), [
    { type: 'start' },
    { type: 'decision', decision: { kind: 'continue', why: 'reply' } },
    sig({ kind: 'bridgeDone', cause: 'NO_ANSWER', transferred: false }),
  ]);
  assert.deepEqual(r.effects.at(-1), { type: 'hangup', cause: 'NO_ANSWER' });
  const end = run(r.state, [sig({ kind: 'hangupComplete', cause: 'NO_ANSWER', bridgeCause: 'NO_ANSWER', transferred: false })]);
  assert.equal((posts(end.effects)[0] as { cause: string }).cause, 'noAnswer');
});

test('caller cancels while ringing → cancel; hung up while Zammad decides → cancel, no bridge afterwards', () => {
  const ringing = run(channel({ variable_zammad_users: 'A' }), [
    { type: 'start' },
    { type: 'decision', decision: { kind: 'continue', why: 'reply' } },
    // Seen in caller-cancel-sip.txt: at CHANNEL_HANGUP DIALSTATUS is still stale; the final values come later.
    sig({ kind: 'hangup', cause: 'ORIGINATOR_CANCEL', bridgeCause: 'failure', transferred: false }),
    sig({ kind: 'bridgeDone', cause: 'ORIGINATOR_CANCEL', transferred: false }),
    sig({ kind: 'hangupComplete', cause: 'ORIGINATOR_CANCEL', bridgeCause: 'ORIGINATOR_CANCEL', transferred: false }),
  ]);
  assert.equal((posts(ringing.effects).at(-1) as { cause: string }).cause, 'cancel');
  assert.ok(!ringing.effects.some((e) => e.type === 'hangup'));

  const early = run(channel({ variable_zammad_users: 'A' }), [
    { type: 'start' },
    sig({ kind: 'hangup', cause: 'NORMAL_CLEARING', bridgeCause: undefined, transferred: false }),
    sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: undefined, transferred: false }),
    { type: 'decision', decision: { kind: 'continue', why: 'reply' } },
  ]);
  assert.ok(!early.effects.some((e) => e.type === 'bridge'));
  assert.deepEqual(posts(early.effects).map((p) => [p.event, 'cause' in p ? p.cause : '']), [['newCall', ''], ['hangup', 'cancel']]);
});

test('unknown number and other failures map through the cause table', () => {
  for (const [fs, zammad] of [['NO_ROUTE_DESTINATION', 'notFound'], ['USER_NOT_REGISTERED', 'notFound'], ['NORMAL_TEMPORARY_FAILURE', 'congestion'], ['REDIRECTION_TO_NEW_DESTINATION', 'forwarded']] as const) {
    const r = run(channel({ variable_zammad_users: 'A' }), [
      { type: 'start' },
      { type: 'decision', decision: { kind: 'continue', why: 'reply' } },
      sig({ kind: 'hangup', cause: fs, bridgeCause: fs, transferred: false }),
      sig({ kind: 'hangupComplete', cause: fs, bridgeCause: fs, transferred: false }),
    ]);
    assert.equal((posts(r.effects).at(-1) as { cause: string }).cause, zammad, fs);
  }
});

test('transfer after answer → forwarded, and the adapter does not hang up the transferred caller', () => {
  const r = run(channel({ variable_zammad_users: 'A' }), [
    { type: 'start' },
    { type: 'decision', decision: { kind: 'continue', why: 'reply' } },
    sig({ kind: 'bridged', otherNumber: '2000', otherChannel: 'x' }),
    sig({ kind: 'bridgeDone', cause: 'SUCCESS', transferred: true }),
    sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: 'SUCCESS', transferred: false }),
  ]);
  assert.ok(!r.effects.some((e) => e.type === 'hangup'));
  assert.equal((posts(r.effects).at(-1) as { cause: string }).cause, 'forwarded');
});

test('hangup waits for the answer lookup, so answer always goes out first; exactly one hangup', () => {
  const r = run(channel({ variable_zammad_bridge: 'user/2003@d' }), [
    { type: 'start' },
    { type: 'usersResolved', names: [undefined] },
    { type: 'decision', decision: { kind: 'continue', why: 'reply' } },
    sig({ kind: 'bridged', otherNumber: '2003', otherChannel: 'x' }),
    sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: 'SUCCESS', transferred: false }),
    { type: 'connectionLost' },
    { type: 'answererResolved', name: undefined },
    sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: 'SUCCESS', transferred: false }),
  ]);
  assert.deepEqual(posts(r.effects).map((p) => p.event), ['newCall', 'answer', 'hangup']);
  const answer = posts(r.effects)[1] as { user: string };
  assert.equal(answer.user, '2003', 'no directory name: the extension stands in');
  assert.deepEqual((posts(r.effects)[0] as { users: string[] }).users, ['2003']);
});

test('connection lost mid-call: one hangup with what is known; a second bridge CHANNEL_BRIDGE does not answer twice', () => {
  const r = run(channel({ variable_zammad_users: 'A' }), [
    { type: 'start' },
    { type: 'decision', decision: { kind: 'continue', why: 'reply' } },
    sig({ kind: 'bridged', otherNumber: '2000', otherChannel: 'x' }),
    sig({ kind: 'bridged', otherNumber: '2001', otherChannel: 'y' }),
    { type: 'connectionLost' },
    { type: 'connectionLost' },
  ]);
  assert.deepEqual(posts(r.effects).map((p) => p.event), ['newCall', 'answer', 'hangup']);
  assert.equal((posts(r.effects)[2] as { cause: string }).cause, 'normalClearing');
});

test('a call without a Unique-ID is still bridged, but nothing is posted', () => {
  const headers: Record<string, string> = { 'Caller-Context': 'public' };
  const s = initialState(callFacts((k) => headers[k], rules), false);
  const r = run(s, [{ type: 'start' }, sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: undefined, transferred: false })]);
  assert.deepEqual(withoutLogs(r.effects).map((e) => e.type), ['bridge', 'exit']);
});

test('connection lost before newCall went out: newCall then hangup, so Zammad knows the call', () => {
  const r = run(channel({ variable_zammad_bridge: 'user/2003@d' }), [{ type: 'start' }, { type: 'connectionLost' }, { type: 'usersResolved', names: ['X'] }]);
  assert.deepEqual(posts(r.effects).map((p) => p.event), ['newCall', 'hangup']);
  assert.ok(!r.effects.some((e) => e.type === 'bridge' || e.type === 'decide'));
});
