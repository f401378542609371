/** Channel data → call facts: direction, numbers, users' source, bridge targets; Zammad replies and verdicts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { callFacts, missingFacts, type CallRules } from '../../src/call/facts.js';
import { expandVariables, parseDialString } from '../../src/call/dialstring.js';
import { decisionFromReply, readError } from '../../src/zammad/replies.js';
import { verdictOf } from '../../src/zammad/verdict.js';
import { formBody } from '../../src/zammad/form.js';

const rules: CallRules = {
  defaultCountryCode: '49',
  extensionMaxDigits: 6,
  inboundContexts: ['public', 'from-carrier'],
  defaultBridge: 'user/${destination_number}@${domain_name}',
};
const facts = (h: Record<string, string>) => callFacts((k) => h[k], rules);

test('direction: zammad_direction wins, else the context list decides', () => {
  assert.equal(facts({ 'Caller-Context': 'public' }).direction, 'in');
  assert.equal(facts({ 'Caller-Context': 'from-carrier' }).direction, 'in');
  assert.equal(facts({ 'Caller-Context': 'default' }).direction, 'out');
  assert.equal(facts({ 'Caller-Context': 'public', variable_zammad_direction: 'out' }).direction, 'out');
  assert.equal(facts({ 'Caller-Context': 'default', variable_zammad_direction: ' IN ' }).direction, 'in');
  assert.equal(
    facts({ 'Caller-Context': 'default', variable_zammad_direction: 'sideways' }).direction,
    'out',
    'an invalid value falls back to the context',
  );
});

test('numbers: E.164 digits, extensions kept, withheld callers anonymous (flag or sip Privacy: id)', () => {
  const f = facts({
    'Unique-ID': 'x',
    'Caller-Caller-ID-Number': '+49 30 5557-1600',
    'Caller-Destination-Number': '2000',
  });
  assert.equal(f.from, '493055571600');
  assert.equal(f.to, '2000');
  assert.equal(
    facts({ 'Caller-Caller-ID-Number': '493055571601', 'Caller-Privacy-Hide-Number': 'true' }).from,
    'anonymous',
  );
  assert.equal(facts({ 'Caller-Caller-ID-Number': '493055571601', variable_sip_Privacy: 'id' }).from, 'anonymous');
  assert.equal(facts({ 'Caller-Caller-ID-Number': '493055571601', variable_sip_Privacy: 'none' }).from, '493055571601');
  assert.equal(facts({ 'Caller-Caller-ID-Number': '' }).from, 'anonymous');
});

test("bridge: zammad_bridge, else DEFAULT_BRIDGE; targets read with the channel's own variables", () => {
  const def = facts({ 'Caller-Destination-Number': '2000', variable_domain_name: 'pbx.example' });
  assert.equal(def.dialString, 'user/${destination_number}@${domain_name}', 'sent unexpanded: FreeSWITCH expands it');
  assert.deepEqual(def.targets, [{ number: '2000', directoryId: '2000@pbx.example' }]);
  const own = facts({
    variable_zammad_bridge: '{originate_timeout=20}user/1000@d,[leg_timeout=5]user/1001@d|sofia/gateway/gw/0301234567',
  });
  assert.deepEqual(own.targets, [
    { number: '1000', directoryId: '1000@d' },
    { number: '1001', directoryId: '1001@d' },
    { number: '0301234567' },
  ]);
});

test('users: zammad_users split and trimmed; empty means unset', () => {
  assert.deepEqual(facts({ variable_zammad_users: ' Alice , Bob,, ' }).explicitUsers, ['Alice', 'Bob']);
  assert.equal(facts({ variable_zammad_users: ' , ' }).explicitUsers, null);
  assert.equal(facts({}).explicitUsers, null);
});

test('a connect reply without a usable Unique-ID cannot be reported', () => {
  assert.match(missingFacts(facts({})) ?? '', /Unique-ID/);
  assert.match(missingFacts(facts({ 'Unique-ID': 'a b' })) ?? '', /printable/);
  assert.equal(missingFacts(facts({ 'Unique-ID': '9876e732-ebc4-46bc-ab57-26a77b0b1c49' })), undefined);
});

test('dial strings: separators inside variable blocks are not targets; unknown ${vars} stay', () => {
  assert.deepEqual(parseDialString('{a=1,b=2}user/7@x:_:loopback/8/ctx'), [
    { number: '7', directoryId: '7@x' },
    { number: '8' },
  ]);
  assert.equal(
    expandVariables('user/${destination_number}@${nope}', (n) => (n === 'destination_number' ? '42' : undefined)),
    'user/42@${nope}',
  );
});

test('newCall replies: reject, dial with caller_id or callerId, anything else bridges', () => {
  assert.deepEqual(decisionFromReply('{"action":"reject","reason":"busy"}').decision, {
    kind: 'reject',
    reason: 'busy',
  });
  assert.deepEqual(decisionFromReply('{"action":"dial","caller_id":"4930777000000","number":"1"}').decision, {
    kind: 'dial',
    callerId: '4930777000000',
  });
  assert.deepEqual(decisionFromReply('{"action":"dial","callerId":"4930777000001"}').decision, {
    kind: 'dial',
    callerId: '4930777000001',
  });
  for (const body of ['', '{}', '<html>500</html>', '{"action":"explode"}', '[1,2]', 'null']) {
    assert.equal(decisionFromReply(body).decision.kind, 'continue', body);
  }
  assert.match(decisionFromReply('{"action":"explode"}').note ?? '', /unknown action "explode"/);
});

test("verdicts follow Zammad's status codes", () => {
  const r = (status: number, body = '{}') => verdictOf('hangup', { kind: 'response', status, body });
  assert.equal(r(200).kind, 'delivered');
  assert.equal(r(401, '{"error":"Invalid token, please contact your admin!"}').kind, 'configFault');
  assert.equal(r(422, '{"error":"Feature is disabled, please contact your administrator!"}').kind, 'configFault');
  assert.equal(r(422, '{"error":"Feature not configured, please contact your admin!"}').kind, 'configFault');
  assert.equal(r(422, '{"error":"Invalid direction!"}').kind, 'refused');
  assert.equal(r(302).kind, 'configFault');
  assert.equal(r(404).kind, 'configFault');
  assert.equal(r(500, '{"error":"Error ID x"}').kind, 'retry');
  assert.equal(r(503, '<html/>').kind, 'retry');
  assert.equal(
    verdictOf('newCall', { kind: 'response', status: 500, body: '{"error":"This object already exists."}' }).kind,
    'delivered',
  );
  assert.equal(verdictOf('hangup', { kind: 'failure', code: 'ECONNREFUSED', error: 'refused' }).kind, 'retry');
});

test('Zammad\'s error replies, read in one place (zammad-behaviour.md, "Checks, in order")', () => {
  const meaning = (status: number, body: string) => readError(status, body).meaning;
  assert.equal(meaning(422, '{"error":"Feature is disabled, please contact your administrator!"}'), 'disabled');
  assert.equal(meaning(422, '{"error":"Feature not configured, please contact your admin!"}'), 'notConfigured');
  assert.equal(meaning(401, '{"error":"Invalid token, please contact your admin!"}'), 'wrongToken');
  assert.equal(meaning(401, '<html><title>401 Authorization Required</title></html>'), 'other', 'a proxy, not Zammad');
  assert.equal(meaning(422, '{"error":"Invalid direction!"}'), 'invalidDirection');
  const exists = 'This object already exists.';
  assert.equal(meaning(500, JSON.stringify({ error: exists, error_human: exists })), 'alreadyExists');
  assert.equal(meaning(500, `<html><div>${exists}</div></html>`), 'alreadyExists', 'the HTML page says it too');
  assert.equal(meaning(200, '{"error":"Invalid direction!"}'), 'other', "the words alone are not Zammad's check");
  assert.deepEqual(readError(500, '{"error":"Error ID x"}'), { meaning: 'other', text: 'Error ID x' });
  assert.deepEqual(readError(502, 'Bad Gateway'), { meaning: 'other' });
});

test('form bodies: user[] repeated on newCall, a single user on answer, direction always', () => {
  const base = { callId: 'c1', direction: 'in' as const, from: '49301', to: '2000' };
  assert.equal(
    formBody({ event: 'newCall', ...base, users: ['Alice A', 'Bob'] }),
    'event=newCall&from=49301&to=2000&direction=in&callId=c1&user%5B%5D=Alice+A&user%5B%5D=Bob',
  );
  assert.equal(
    formBody({ event: 'answer', ...base, user: 'Bob', answeringNumber: '2000' }),
    'event=answer&from=49301&to=2000&direction=in&callId=c1&user=Bob&answeringNumber=2000',
  );
  assert.equal(
    formBody({ event: 'hangup', ...base, cause: 'cancel' }),
    'event=hangup&from=49301&to=2000&direction=in&callId=c1&cause=cancel',
  );
});
