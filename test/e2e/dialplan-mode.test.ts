/**
 * Dialplan mode and transfers end to end: the real adapter program (DEFAULT_BRIDGE empty, the
 * product's default), a Zammad double, and FreeSWITCH played by the real captures of calls routed
 * by the dialplan (test/fixtures/esl/routing/, replayed by routing-replay.ts). Each test
 * asserts the exact posts Zammad received, Zammad's caller log, and the exact commands the switch
 * received: in dialplan mode nothing after the hand-back but `api` look-ups.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { ZammadDouble, type Params } from '@freeswitch-zammad-cti/sim/zammad';
import { startAdapter, type AdapterProcess } from './adapter-process.js';
import { replayRouting, type ReplayOptions, type ReplayResult } from './routing-replay.js';
import { commandLines } from './command-lines.js';

const TOKEN = `tok-${randomUUID()}`;
let zammad: ZammadDouble;
let adapter: AdapterProcess;

before(async () => {
  zammad = new ZammadDouble({ token: TOKEN, blockedNumbers: ['493055571699'] });
  await zammad.start();
  adapter = await startAdapter({ ZAMMAD_CTI_URL: zammad.url, ZAMMAD_NEWCALL_TIMEOUT_MS: '1500', DEFAULT_BRIDGE: '' });
});

after(async () => {
  await adapter?.stop();
  await zammad?.stop();
});

/** The directory of the capture's switch (test/fixtures/esl/README.md): users of test.local. */
const DIRECTORY: ReplayOptions['directory'] = {
  '2000@test.local': { effective_caller_id_name: 'Alice Agent' },
  '2002@test.local': { effective_caller_id_name: 'Carol Agent' },
  '2003@test.local': { effective_caller_id_name: 'Bob Agent', zammad_user_id: '17' },
  '2004@test.local': { effective_caller_id_name: 'Dan Agent' },
  '2005@test.local': { effective_caller_id_name: 'Erin Agent' },
};
/** The B-legs' own variables (observation 9): the user/ endpoint sets dialed_user/dialed_domain. */
const user = (n: string) => ({ dialed_user: n, dialed_domain: 'test.local' });
const LEGS: ReplayOptions['legs'] = {
  '2000': user('2000'),
  '2003': { ...user('2003'), cc_agent: '2003@test.local' },
  '2005': user('2005'),
};

async function replay(name: string, opts: ReplayOptions = {}): Promise<{ r: ReplayResult; posts: Params[] }> {
  const r = await replayRouting(name, adapter.eslPort, {
    directory: DIRECTORY,
    legs: LEGS,
    ...opts,
    variables: { zammad_handled: 'true', zammad_direction: 'in', ...opts.variables },
  });
  await r.closed;
  await zammad.waitFor((z) => z.postsFor(r.uuid).some((p) => p.params['event'] === 'hangup' && p.status === 200), 5000);
  await new Promise((res) => setTimeout(res, 100)); // a stray post would show up now
  return { r, posts: zammad.postsFor(r.uuid).map((p) => p.params) };
}

/** event, user, user_id, answeringNumber, cause of each post */
const summary = (posts: Params[]) =>
  posts.map((p) =>
    [p['event'], p['user'] ?? '', p['user_id'] ?? '', p['answeringNumber'] ?? '', p['cause'] ?? '']
      .filter((x) => x !== '')
      .join(' '),
  );

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
const HAND_BACK = 'sendmsg execute transfer ${destination_number} XML ${context}';

/** After the hand-back: only read-only api look-ups, then the goodbye. */
function afterHandBack(r: ReplayResult): string[] {
  const lines = commandLines(r.commands);
  const at = lines.indexOf(HAND_BACK);
  assert.ok(at >= 0, `hand-back sent: ${lines.join(' | ')}`);
  assert.deepEqual(
    lines.slice(0, at),
    [...OPENING, ...FILTERS],
    'subscription, filters, then straight to the hand-back',
  );
  const rest = lines.slice(at + 1);
  assert.equal(rest.at(-1), 'exit');
  assert.ok(
    rest.slice(0, -1).every((l) => l.startsWith('api ')),
    `nothing but api after the hand-back: ${rest.join(' | ')}`,
  );
  return rest.slice(0, -1);
}

describe('dialplan mode, replaying real captures of calls the dialplan routed', () => {
  test(
    'group ring by the dialplan (obs. 4): answer names who picked up, ' + 'asked of the B-leg; hangup normalClearing',
    async () => {
      const { r, posts } = await replay('handback-group-ring');
      assert.deepEqual(summary(posts), ['newCall', 'answer Bob Agent 17 2003', 'hangup 2003 normalClearing']);
      assert.equal(
        posts[0]?.['user[]'],
        undefined,
        'inbound newCall in dialplan mode: whom the dialplan rings is not known, no user[]',
      );
      const uuid = r.commands.find((c) => c.line.startsWith('api uuid_getvar'))?.args.split(' ')[1];
      assert.deepEqual(afterHandBack(r), [
        `api uuid_getvar ${uuid} dialed_user`,
        `api uuid_getvar ${uuid} dialed_domain`,
        'api user_data 2003@test.local var effective_caller_id_name',
        'api user_data 2003@test.local var zammad_user_id',
      ]);
      assert.equal(zammad.entry(r.uuid)?.done, true);
    },
  );

  test(
    "every post carries the newCall's from/to/direction: " + 'the dialplan moved the call to another context (obs. 1)',
    async () => {
      const { posts } = await replay('handback-group-ring');
      for (const p of posts)
        assert.deepEqual([p['from'], p['to'], p['direction']], ['493055571600', '4930998003', 'in']);
    },
  );

  test(
    "the dialplan's set/export apps never reach the adapter: " + 'the filters hold back everything it does not read',
    async () => {
      const { r } = await replay('handback-group-ring');
      assert.ok(
        !r.eventsSent.some(
          (e) => e.includes('[set]') || e.includes('[export]') || e === 'CHANNEL_STATE' || e === 'CHANNEL_ANSWER',
        ),
        r.eventsSent.join(' '),
      );
      assert.ok(r.eventsHeldBack > 10, `held back: ${r.eventsHeldBack}`);
      assert.ok(r.eventsSent.includes('CHANNEL_BRIDGE') && r.eventsSent.includes('CHANNEL_HANGUP_COMPLETE'));
    },
  );

  test(
    'no answer, then voicemail (obs. 5/6): answer user=voicemail with the mailbox, hangup normalClearing; ' +
      'Zammad keeps it not done',
    async () => {
      const { r, posts } = await replay('handback-noanswer-voicemail');
      assert.deepEqual(summary(posts), ['newCall', 'answer voicemail 2002', 'hangup 2002 normalClearing']);
      assert.deepEqual(afterHandBack(r), []);
      assert.equal(zammad.entry(r.uuid)?.done, false, 'a voicemail call stays to be called back');
    },
  );

  test(
    "mod_callcenter queue (obs. 4/5/9): the queue's own answer (music on hold) is no answer; the agent is; " +
      'zammad_queue on every post',
    async () => {
      const { r, posts } = await replay('handback-queue-callcenter', { variables: { zammad_queue: 'support' } });
      assert.deepEqual(summary(posts), ['newCall', 'answer Bob Agent 17 2003', 'hangup 2003 normalClearing']);
      assert.deepEqual(
        posts.map((p) => p['queue']),
        ['support', 'support', 'support'],
      );
      assert.equal(zammad.entry(r.uuid)?.queue, 'support');
      afterHandBack(r);
    },
  );

  test('IVR greeting, then an agent (obs. 5): answer only at the bridge, naming the agent', async () => {
    const { r, posts } = await replay('handback-ivr-then-agent');
    assert.deepEqual(summary(posts), ['newCall', 'answer Alice Agent 2000', 'hangup 2000 normalClearing']);
    afterHandBack(r);
  });

  test(
    'uuid_transfer after answer (obs. 7): a second answer names the new person; one hangup normalClearing, ' +
      'never forwarded',
    async () => {
      const { r, posts } = await replay('handback-transfer-by-uuid');
      // 2004 is bridged as sofia/… (not user/): no directory user, so no name — its number answers.
      assert.deepEqual(summary(posts), [
        'newCall',
        'answer 2004',
        'answer Bob Agent 17 2003',
        'hangup 2003 normalClearing',
      ]);
      afterHandBack(r);
      assert.equal(zammad.entry(r.uuid)?.answeredBy, 'Bob Agent');
    },
  );

  test("blind transfer by the agent's phone, SIP REFER (obs. 7): answer again for the new person", async () => {
    const { r, posts } = await replay('handback-refer-blind-transfer');
    assert.deepEqual(summary(posts), [
      'newCall',
      'answer Erin Agent 2005',
      'answer Bob Agent 17 2003',
      'hangup 2003 normalClearing',
    ]);
    afterHandBack(r);
  });

  test(
    'the caller gives up while the dialplan rings (obs. ' + '10): hangup cancel, no answer; Zammad shows it missed',
    async () => {
      const { r, posts } = await replay('handback-caller-cancel');
      assert.deepEqual(summary(posts), ['newCall', 'hangup cancel']);
      afterHandBack(r);
      assert.equal(zammad.entry(r.uuid)?.done, false);
    },
  );

  test(
    'a second socket connection for a call already followed ' +
      '(a gate without the guard) posts nothing and is let go',
    async () => {
      const uuid = randomUUID();
      const first = replay('handback-group-ring', { uuid });
      await zammad.waitFor((z) => z.postsFor(uuid).length > 0, 3000);
      const second = await replayRouting('handback-group-ring', adapter.eslPort, {
        uuid,
        variables: { zammad_handled: 'true', zammad_direction: 'in' },
      });
      await second.closed;
      assert.deepEqual(commandLines(second.commands), ['connect', 'exit'], 'let go without a subscription');
      const { posts } = await first;
      assert.deepEqual(
        summary(posts),
        ['newCall', 'answer Bob Agent 17 2003', 'hangup 2003 normalClearing'],
        'the first connection reports the call once',
      );
      await adapter.waitForLog((l) => /second socket connection for a call already followed/.test(l.message), 2000);
    },
  );

  test(
    'no zammad_handled and no zammad_bridge (an old unguarded socket extension): not handed back, nothing posted, ' +
      'the socket lets go',
    async () => {
      const r = await replayRouting('handback-group-ring', adapter.eslPort, {
        directory: DIRECTORY,
        legs: LEGS,
        variables: { zammad_direction: 'in' },
      });
      await r.closed;
      assert.deepEqual(
        commandLines(r.commands),
        [...OPENING, ...FILTERS, 'exit'],
        'no transfer that would enter the unguarded socket again',
      );
      await new Promise((res) => setTimeout(res, 200));
      assert.deepEqual(zammad.postsFor(r.uuid), []);
      await adapter.waitForLog(
        (l) => /not following this call: the channel has neither zammad_handled/.test(l.message),
        2000,
      );
    },
  );
});

describe('bridge mode survives a transfer', () => {
  test(
    "REFER while the adapter's own bridge runs (obs. 8): no hangup after the bridge returns; answer again; " +
      'one hangup normalClearing',
    async () => {
      const { r, posts } = await replay('bridge-refer-blind-transfer', {
        variables: { zammad_bridge: 'sofia/lo-in/2005@127.0.0.1:5091' },
      });
      const lines = commandLines(r.commands);
      assert.deepEqual(
        lines.filter((l) => l.startsWith('sendmsg')),
        ['sendmsg execute bridge sofia/lo-in/2005@127.0.0.1:5091'],
        'the transferred caller is never hung up',
      );
      // 2005 was dialled as sofia/… and is the bridge's own target: its number, no directory look-up.
      assert.deepEqual(summary(posts), [
        'newCall 2005',
        'answer 2005',
        'answer Bob Agent 17 2003',
        'hangup 2003 normalClearing',
      ]);
    },
  );
});
