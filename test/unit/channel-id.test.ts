/** The one Unique-ID rule (src/switch/channel-id.ts): reported, looked up and re-attached alike. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHANNEL_ID_MAX, isChannelId } from '../../src/switch/channel-id.js';
import { callFacts, missingFacts, type CallRules } from '../../src/call/facts.js';

const rules: CallRules = {
  defaultCountryCode: '49',
  extensionMaxDigits: 6,
  inboundContexts: ['public'],
  defaultBridge: '',
};
const problem = (id: string) => missingFacts(callFacts((k) => (k === 'Unique-ID' ? id : undefined), rules));

test('FreeSWITCH uuids and ids a dialplan sets with origination_uuid are channel ids', () => {
  for (const id of [
    '9876e732-ebc4-46bc-ab57-26a77b0b1c49',
    '9876E732EBC446BCAB5726A77B0B1C49',
    'call.4711.pbx-1.example',
    'tenant:acme@pbx_1',
    '1700000000.42',
    'x',
    'x'.repeat(CHANNEL_ID_MAX),
  ]) {
    assert.equal(isChannelId(id), true, id);
  }
});

test("what would not be one argument, one command or this channel's filter on the wire is not", () => {
  const bad: [string, string][] = [
    ['', 'empty'],
    ['a b', 'a space ends the argument'],
    ['a\tb', 'whitespace'],
    ['a\nb', 'a line break ends the command'],
    ['a\r', 'a carriage return'],
    ['a\x00b', 'a control character'],
    ['a\x7f', 'DEL'],
    ['müller', 'not ASCII'],
    ['-9876e732', "a filter value's leading '-' excludes"],
    ['+9876e732', "a filter value's leading '+' is read as include"],
    ['/.*/', "a filter value's leading '/' is a regular expression"],
    ['x'.repeat(CHANNEL_ID_MAX + 1), "longer than Zammad's call_id column"],
  ];
  for (const [id, why] of bad) assert.equal(isChannelId(id), false, why);
  assert.equal(isChannelId('a-b+c/d'), true, '+, - and / inside an id are plain characters');
});

test('facts use the same rule: a dotted id is reported, a leading "-" or a space is not', () => {
  assert.equal(problem('call.4711.pbx-1.example'), undefined);
  assert.match(problem('-call') ?? '', /printable id of at most 250 characters/);
  assert.match(problem('a b') ?? '', /printable/);
  assert.match(problem('') ?? '', /no Unique-ID/);
});
