/**
 * Who has the caller when someone else bridges it (issue 19): pickup (`intercept`, `intercept
 * -bleg`), attended transfer (`att_xfer`, a `uuid_bridge` by anything else), park and retrieve, and
 * an eavesdropper that is no person. First the state machine with hand-made signals, then the real
 * captures of test/fixtures/esl/transfers (README.md there) read event by event through the
 * adapter's own dialplan-mode filters, readSignal() and step().
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { eslFixture } from '../fixtures/index.js';
import { callFacts } from '../../src/call/facts.js';
import { initialState, step, type Answerer, type CallState, type CtiPost, type Input } from '../../src/call/flow.js';
import { DIALPLAN_EVENT_FILTERS, readSignal } from '../../src/call/signals.js';
import type { SwitchEvent } from '../../src/switch/esl-connection.js';
import { dpRules, posts, runner, sig, stateOf } from './flow-kit.js';

function dpChannel(h: Record<string, string> = {}): CallState {
  return stateOf(
    {
      'Unique-ID': 'u-1',
      'Caller-Caller-ID-Number': '493055571600',
      'Caller-Destination-Number': '493099986001',
      'Caller-Context': 'public',
      variable_zammad_handled: 'true',
      ...h,
    },
    dpRules,
  );
}

const run = runner(dpRules);
const handedBack: Input[] = [{ type: 'start' }, { type: 'decision', decision: { kind: 'continue', why: 'reply' } }];
const c = { callId: 'u-1', direction: 'in', from: '493055571600', to: '493099986001' } as const;

test(
  "pickup: the ringing bridge ends PICKED_OFF, then the picker's phone (a leg that called in) is bridged: " +
    'one answer naming its user, hangup normalClearing',
  () => {
    const r = run(dpChannel(), [
      ...handedBack,
      sig({ kind: 'bridgeDone', cause: 'PICKED_OFF', transferSource: '1:u-1:uuid_br:bob' }),
      sig({
        kind: 'bridged',
        otherNumber: '493099986901',
        otherChannel: 'sofia/lo-in/2003@127.0.0.1',
        otherUuid: 'bob',
        phoneNumber: '2003',
      }),
      { type: 'answererResolved', leg: 'bob', answerer: { name: 'Bob Agent', number: '2003' } },
      sig({ kind: 'hangup', cause: 'NORMAL_CLEARING', bridgeCause: 'PICKED_OFF' }),
      sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: 'PICKED_OFF' }),
    ]);
    assert.ok(
      r.effects.some(
        (e) => e.type === 'lookupAnswerer' && e.leg === 'bob' && e.phone === '2003' && e.directoryId === undefined,
      ),
    );
    assert.deepEqual(posts(r.effects), [
      { event: 'newCall', ...c, users: [] },
      { event: 'answer', ...c, user: 'Bob Agent', answeringNumber: '2003' },
      { event: 'hangup', ...c, cause: 'normalClearing', answeringNumber: '2003' },
    ]);
  },
);

test(
  'attended transfer: Dan (CHANNEL_BRIDGE), then Zoe (uuid_bridge): two answers in the order they took the call; ' +
    'Dan leaving alone changes nothing',
  () => {
    const r = run(dpChannel(), [
      ...handedBack,
      sig({ kind: 'bridged', otherNumber: '2004', otherChannel: 'sofia/lo-in/2004@x', otherUuid: 'dan' }),
      sig({ kind: 'bridgeDone', cause: 'SUCCESS', transferSource: '2:u-1:uuid_br:zoe' }),
      sig({ kind: 'bridged', otherNumber: '2000', otherChannel: 'sofia/lo-in/2000@x', otherUuid: 'zoe' }),
      // Zoe's look-up answers first: the answers still go out in the order the people took the call
      { type: 'answererResolved', leg: 'zoe', answerer: { name: 'Zoe Agent', number: '2000' } },
      { type: 'answererResolved', leg: 'dan', answerer: { name: 'Dan Agent', number: '2004' } },
      sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: 'SUCCESS' }),
    ]);
    assert.deepEqual(posts(r.effects).slice(1), [
      { event: 'answer', ...c, user: 'Dan Agent', answeringNumber: '2004' },
      { event: 'answer', ...c, user: 'Zoe Agent', answeringNumber: '2000' },
      { event: 'hangup', ...c, cause: 'normalClearing', answeringNumber: '2000' },
    ]);
    const lookups = r.effects.filter((e) => e.type === 'lookupAnswerer');
    assert.deepEqual(
      lookups,
      [
        { type: 'lookupAnswerer', leg: 'dan' },
        { type: 'lookupAnswerer', leg: 'zoe' },
      ],
      'a dialled leg is asked for its dialed_user, not as a phone',
    );
  },
);

test('park and retrieve: the switch answering (park) is no person; the retriever is', () => {
  const parked = run(dpChannel(), [
    ...handedBack,
    sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: undefined }),
  ]);
  assert.deepEqual(
    posts(parked.effects).map((p) => (p.event === 'hangup' ? `hangup:${p.cause}` : p.event)),
    ['newCall', 'hangup:cancel'],
    'nobody retrieved it: missed',
  );
  const r = run(dpChannel(), [
    ...handedBack,
    sig({
      kind: 'bridged',
      otherNumber: '493099986903',
      otherChannel: 'sofia/lo-in/2003@127.0.0.1',
      otherUuid: 'bob',
      phoneNumber: '2003',
    }),
    { type: 'answererResolved', leg: 'bob', answerer: { number: '2003' } },
    sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: undefined }),
  ]);
  assert.deepEqual(posts(r.effects).slice(1), [
    { event: 'answer', ...c, user: '2003', answeringNumber: '2003' },
    { event: 'hangup', ...c, cause: 'normalClearing', answeringNumber: '2003' },
  ]);
});

test(
  "bridge mode: a pickup while the adapter's own bridge rings moves the caller (new transfer_source): " +
    'never hung up, answer the picker',
  () => {
    const s = dpChannel({ variable_zammad_bridge: 'user/2002@test.local', variable_zammad_handled: '' });
    const r = run(s, [
      { type: 'start' },
      { type: 'usersResolved', names: ['Carol Agent'] },
      { type: 'decision', decision: { kind: 'continue', why: 'reply' } },
      sig({ kind: 'bridgeDone', cause: 'PICKED_OFF', transferSource: '1:u-1:uuid_br:bob' }),
      sig({
        kind: 'bridged',
        otherNumber: '*8',
        otherChannel: 'sofia/internal/2003@pbx',
        otherUuid: 'bob',
        phoneNumber: '2003',
      }),
      { type: 'answererResolved', leg: 'bob', answerer: { name: 'Bob Agent', number: '2003' } },
      sig({ kind: 'hangupComplete', cause: 'NORMAL_CLEARING', bridgeCause: 'PICKED_OFF' }),
    ]);
    assert.deepEqual(
      r.effects.filter((e) => e.type === 'hangup' || e.type === 'bridge').map((e) => e.type),
      ['bridge'],
      'no hangup command',
    );
    assert.deepEqual(
      posts(r.effects).map((p) =>
        p.event === 'answer' ? `answer:${p.user}` : p.event === 'hangup' ? `hangup:${p.cause}` : p.event,
      ),
      ['newCall', 'answer:Bob Agent', 'hangup:normalClearing'],
    );
  },
);

test(
  "readSignal: the caller's CHANNEL_EXECUTE uuid_bridge is a person connected; " +
    'a leg that called in is named by its caller id; eavesdrop is nothing',
  () => {
    const h: Record<string, string> = {
      Application: 'uuid_bridge',
      'Application-Data': 'bob',
      'Other-Leg-Unique-ID': 'bob',
      'Other-Leg-Direction': 'inbound',
      'Other-Leg-Caller-ID-Number': '2003',
      'Other-Leg-Destination-Number': '*8',
      'Other-Leg-Channel-Name': 'sofia/internal/2003@pbx',
    };
    assert.deepEqual(readSignal({ name: 'CHANNEL_EXECUTE', get: (k) => h[k] }), {
      kind: 'bridged',
      otherNumber: '*8',
      otherChannel: 'sofia/internal/2003@pbx',
      otherUuid: 'bob',
      phoneNumber: '2003',
    });
    const out: Record<string, string> = {
      ...h,
      'Other-Leg-Direction': 'outbound',
      'Other-Leg-Destination-Number': '2000',
    };
    assert.equal(
      (readSignal({ name: 'CHANNEL_EXECUTE', get: (k) => out[k] }) as { phoneNumber?: string }).phoneNumber,
      undefined,
    );
    assert.equal(
      readSignal({ name: 'CHANNEL_EXECUTE', get: (k) => ({ Application: 'eavesdrop', 'Application-Data': 'x' })[k] }),
      null,
    );
    assert.ok(
      DIALPLAN_EVENT_FILTERS.some(([k, v]) => k === 'Application' && v === 'uuid_bridge'),
      'the dialplan-mode filters let it through',
    );
  },
);

// --- the real captures -------------------------------------------------------------------------

/** The FS->APP byte stream of a capture, cut into frames; each plain event with decoded headers. */
function captureEvents(file: string): { data: Record<string, string>; events: SwitchEvent[] } {
  const text = readFileSync(eslFixture(`transfers/${file}`), 'latin1');
  const re = /===== \d+ \S+ \+\S+ (\S+) (\d+) bytes =====\n/g;
  let stream = '';
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const n = Number(m[2]);
    if (m[1] === 'FS->APP') stream += text.slice(re.lastIndex, re.lastIndex + n);
    re.lastIndex += n;
  }
  const decode = (v: string) => {
    try {
      return decodeURIComponent(v);
    } catch {
      return v;
    }
  };
  const headersOf = (block: string) =>
    Object.fromEntries(
      block
        .split('\n')
        .flatMap((l) =>
          l.includes(': ') ? [[l.slice(0, l.indexOf(': ')), decode(l.slice(l.indexOf(': ') + 2))]] : [],
        ),
    );
  let data: Record<string, string> = {};
  const events: SwitchEvent[] = [];
  for (let at = 0; at < stream.length; ) {
    const end = stream.indexOf('\n\n', at);
    if (end < 0) break;
    const outer = headersOf(stream.slice(at, end));
    const len = Number(outer['Content-Length'] ?? 0);
    const body = stream.slice(end + 2, end + 2 + len);
    at = end + 2 + len;
    if (outer['Event-Name'] === 'CHANNEL_DATA') data = outer;
    else if (outer['Content-Type'] === 'text/event-plain') {
      const h = headersOf(body.split('\n\n')[0] ?? '');
      events.push({ name: h['Event-Name'] ?? '', get: (k) => h[k] });
    }
  }
  return { data, events };
}

/** test.local as the switch bundle's directory has it (the test switch's, test/switch/). */
const DIRECTORY: Record<string, string> = {
  '2000': 'Alice Agent',
  '2002': 'Carol Agent',
  '2003': 'Bob Agent',
  '2004': 'Dan Agent',
};

/** Runs a capture through the dialplan-mode adapter's rules; a look-up answers from DIRECTORY. */
function replay(file: string): CtiPost[] {
  const { data, events } = captureEvents(file);
  let state = initialState(
    callFacts((k) => data[k] ?? (k === 'variable_zammad_handled' ? 'true' : undefined), dpRules),
    true,
  );
  const out: CtiPost[] = [];
  const apply = (input: Input) => {
    const r = step(state, input, dpRules);
    state = r.state;
    for (const e of r.effects) {
      if (e.type === 'post' || e.type === 'decide') out.push(e.post);
      if (e.type === 'decide') apply({ type: 'decision', decision: { kind: 'continue', why: 'reply' } });
      if (e.type === 'lookupAnswerer') {
        // what session.ts finds on the real switch: a phone's caller id, else the leg's dialed_user
        const leg = events.find((ev) => (ev.get('Other-Leg-Unique-ID') ?? ev.get('Application-Data')) === e.leg);
        const number = e.phone ?? leg?.get('Other-Leg-Destination-Number') ?? '';
        const who: Answerer = DIRECTORY[number] ? { name: DIRECTORY[number], number } : {};
        apply({ type: 'answererResolved', leg: e.leg, answerer: who });
      }
    }
  };
  apply({ type: 'start' });
  for (const e of events) {
    if (!DIALPLAN_EVENT_FILTERS.some(([k, v]) => e.get(k)?.toLowerCase() === v.toLowerCase())) continue;
    const signal = readSignal(e);
    if (signal) apply({ type: 'signal', signal });
  }
  return out;
}

const brief = (p: CtiPost) =>
  p.event === 'answer'
    ? `answer ${p.user ?? ''}/${p.answeringNumber}`
    : p.event === 'hangup'
      ? `hangup ${p.cause}`
      : p.event;

for (const [file, expected] of [
  ['pickup-intercept-bleg.txt', ['newCall', 'answer Bob Agent/2003', 'hangup normalClearing']],
  ['pickup-intercept.txt', ['newCall', 'answer Bob Agent/2003', 'hangup normalClearing']],
  [
    'attended-transfer-att-xfer.txt',
    ['newCall', 'answer Dan Agent/2004', 'answer Alice Agent/2000', 'hangup normalClearing'],
  ],
  [
    'attended-transfer-att-xfer-hangup-key.txt',
    ['newCall', 'answer Dan Agent/2004', 'answer Alice Agent/2000', 'hangup normalClearing'],
  ],
  // Dan's own leg killed: the caller's dialplan ended before att_xfer could bridge it: one person
  ['attended-transfer-att-xfer-bleg-killed.txt', ['newCall', 'answer Dan Agent/2004', 'hangup normalClearing']],
  [
    'attended-transfer-uuid-bridge.txt',
    ['newCall', 'answer Dan Agent/2004', 'answer Alice Agent/2000', 'hangup normalClearing'],
  ],
  ['park-retrieve.txt', ['newCall', 'answer Bob Agent/2003', 'hangup normalClearing']],
  ['eavesdrop-not-a-person.txt', ['newCall', 'answer Dan Agent/2004', 'hangup normalClearing']],
] as const) {
  test(`capture ${file}: ${expected.join(', ')}; every post keeps newCall's from, to, direction`, () => {
    const got = replay(file);
    assert.deepEqual(got.map(brief), expected);
    const first = got[0] as CtiPost;
    for (const p of got)
      assert.deepEqual([p.from, p.to, p.direction, p.callId], [first.from, first.to, first.direction, first.callId]);
    assert.equal(first.from, '493055571600');
  });
}
