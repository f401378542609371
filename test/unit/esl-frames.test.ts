/**
 * esl-frames.ts gives the same answers as modesl's own Parser (which it replaces for speed:
 * bench/README.md): every FreeSWITCH → app stream of the real captures is read by both, whole
 * and cut into random small reads, and every header of every message is looked up in both.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import {
  BlockEvent,
  FrameReader,
  JsonEvent,
  jsonStringValue,
  jsonStringValues,
  plainEvent,
  type EventLike,
  type HeaderText,
} from '../../src/switch/esl-frames.js';
import { records } from '../../bench/frames.js';
import { eslFixture, eslFixtureNames } from '../fixtures/index.js';
import { encodeEvent, serializeJson, type Header } from '@freeswitch-zammad-cti/sim/esl-wire';

interface ModeslEvent {
  headers: { name: string; value: unknown }[];
  getHeader(name: string): unknown;
  getBody(): string;
}
type ParserCtor = new (socket: EventEmitter) => EventEmitter;
const Parser = createRequire(import.meta.url)('modesl/lib/esl/Parser.js') as ParserCtor;

function modeslMessages(chunks: Buffer[]): { event: ModeslEvent; type: unknown }[] {
  const socket = new EventEmitter();
  const parser = new Parser(socket);
  const out: { event: ModeslEvent; type: unknown }[] = [];
  parser.on('esl::event', (event: ModeslEvent, headers: Record<string, unknown>) =>
    out.push({ event, type: headers['Content-Type'] }),
  );
  for (const c of chunks) socket.emit('data', c);
  return out;
}

/** What esl-connection.ts (eventOf) and esl.ts (hand) build for a message. */
function ours(chunks: Buffer[]): { event: EventLike; type: unknown }[] {
  const reader = new FrameReader();
  const out: { event: EventLike; type: unknown }[] = [];
  const onMessage = (headers: HeaderText, body: string | undefined) => {
    const type = headers.get('Content-Type');
    const event =
      type === 'text/event-json'
        ? new JsonEvent(body ?? '')
        : type === 'text/event-plain'
          ? plainEvent(body ?? '')
          : new BlockEvent(headers, body ?? '');
    out.push({ event, type });
  };
  for (const c of chunks) reader.push(c, onMessage);
  return out;
}

function randomCuts(stream: Buffer, seed: number): Buffer[] {
  let x = seed;
  const rnd = () => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x / 0x7fffffff;
  };
  const out: Buffer[] = [];
  for (let at = 0; at < stream.length; ) {
    const n = rnd() < 0.3 ? 1 : 1 + Math.floor(rnd() * 700);
    out.push(stream.subarray(at, at + n));
    at += n;
  }
  return out;
}

function assertSame(
  theirs: { event: ModeslEvent; type: unknown }[],
  mine: { event: EventLike; type: unknown }[],
  where: string,
): void {
  assert.equal(mine.length, theirs.length, `${where}: number of messages`);
  theirs.forEach((t, i) => {
    const m = mine[i] as { event: EventLike; type: unknown };
    assert.equal(m.type, t.type, `${where} #${i}: Content-Type`);
    const names = [
      ...t.event.headers.map((h) => h.name).filter((n) => !n.startsWith('Modesl-')),
      'Job-UUID',
      'No-Such-Header',
      'Unique',
      '_body',
    ];
    for (const name of names)
      assert.deepEqual(m.event.getHeader(name), t.event.getHeader(name), `${where} #${i}: ${name}`);
    assert.equal(m.event.getBody(), t.event.getBody(), `${where} #${i}: body`);
  });
}

test('every capture reads the same as with modesl, whole and in random small reads', () => {
  for (const file of eslFixtureNames()) {
    const stream = Buffer.concat(
      records(eslFixture(`${file}.txt`))
        .filter((r) => r.dir === 'FS->APP')
        .map((r) => r.data),
    );
    const theirs = modeslMessages([stream]);
    assert.ok(theirs.length > 5, file);
    assertSame(theirs, ours([stream]), file);
    for (const seed of [1, 2, 3]) assertSame(theirs, ours(randomCuts(stream, seed)), `${file} (cut, seed ${seed})`);
  }
});

test(
  'JSON events: duplicates, arrays, escapes, ' +
    'non-string values and look-alike values read as JSON.parse reads them',
  () => {
    const headers: Header[] = [
      ['Event-Name', 'CHANNEL_HANGUP_COMPLETE'],
      ['Unique-ID', 'abc'],
      ['Hangup-Cause', 'NORMAL_CLEARING'],
      ['variable_x', 'Hangup-Cause'],
      ['variable_quote', 'say "hi"\\'],
      ['variable_DP_MATCH', 'ARRAY::1|:2'],
      ['variable_empty', ''],
      ['Hangup-Cause', 'USER_BUSY'],
    ];
    const stream = Buffer.from(encodeEvent(headers, 'json', 'the body') + encodeEvent(headers, 'json'));
    assertSame(modeslMessages([stream]), ours([stream]), 'synthetic');
    const text = serializeJson(headers);
    assert.equal(jsonStringValue(text, 'Hangup-Cause'), 'USER_BUSY'); // the last one, as JSON.parse
    assert.equal(jsonStringValue(text, 'variable_quote'), undefined); // escapes: JSON.parse decides
    assert.equal(jsonStringValue(text, 'variable_DP_MATCH'), undefined); // an array
    assert.equal(jsonStringValue(text, 'Nope'), null);
    assert.equal(jsonStringValue('{ "a": "b" }', 'a'), undefined); // not cJSON's compact form
  },
);

test(
  'header blocks: duplicates, lines without ": ", ' + 'values with ": " inside, split reads around the blank line',
  () => {
    const block = 'Content-Type: command/reply\nReply-Text: +OK: fine\nX-Dup: 1\nX-Bare\nX-Dup: 2\nVal: a%20b\n\n';
    const stream = Buffer.from(`${block}Content-Type: api/response\nContent-Length: 5\n\nhello`);
    const theirs = modeslMessages([stream]);
    for (let cut = 1; cut < stream.length; cut++)
      assertSame(theirs, ours([stream.subarray(0, cut), stream.subarray(cut)]), `cut at ${cut}`);
  },
);

test('a long header block reads as with modesl, edge cases included', () => {
  const filler = Array.from({ length: 40 }, (_, i) => `X-Fill-${i}: ${'v'.repeat(30)}`).join('\n');
  const block =
    `Content-Type: command/reply\nReply-Text: +OK: fine\nX-Dup: 1\nX-Bare\nNo-Space:here\n${filler}\n` +
    'X-Dup: 2\nVal: a%20b\nX-Bare: late\nEmpty: \n\n';
  const stream = Buffer.from(`${block}Content-Type: api/response\nContent-Length: 5\n\nhello`);
  const theirs = modeslMessages([stream]);
  assertSame(theirs, ours([stream]), 'whole');
  for (const cut of [1, 500, block.length - 1, block.length + 3])
    assertSame(theirs, ours([stream.subarray(0, cut), stream.subarray(cut)]), `cut at ${cut}`);
});

test('JSON events read in one pass for several names give what one scan per name gives', () => {
  const headers: Header[] = [
    ['Event-Name', 'CHANNEL_HANGUP_COMPLETE'],
    ['Unique-ID', 'abc'],
    ['Hangup-Cause', 'NORMAL_CLEARING'],
    ['variable_x', 'Hangup-Cause'],
    ['variable_y', 'Unique-ID'],
    ['variable_quote', 'say "hi"\\'],
    ['variable_DP_MATCH', 'ARRAY::1|:2'],
    ['variable_empty', ''],
    ['Hangup-Cause', 'USER_BUSY'],
    ['Application-Data', '"Event-Name"'],
  ];
  const names = [
    'Event-Name',
    'Unique-ID',
    'Hangup-Cause',
    'variable_quote',
    'variable_DP_MATCH',
    'variable_empty',
    'Application',
    'Application-Data',
    'No-Such',
  ];
  const texts = [
    serializeJson(headers),
    serializeJson(headers, 'a body with "Unique-ID":"x"'),
    '{ "Event-Name": "X" }',
    ...records(eslFixture('answered-normal-json.txt'))
      .filter((r) => r.dir === 'FS->APP')
      .map((r) => r.data.toString('utf8'))
      .filter((t) => t.includes('{"Event-Name"'))
      .map((t) => t.slice(t.indexOf('{"Event-Name"'))),
  ];
  for (const text of texts) {
    const batch = jsonStringValues(text, names);
    for (const name of names) {
      const one = jsonStringValue(text, name);
      if (one === undefined) assert.ok(!batch.has(name), `${name}: left to JSON.parse`);
      else assert.equal(batch.get(name), one, name);
    }
  }
});
