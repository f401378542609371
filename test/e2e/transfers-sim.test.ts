/**
 * Pickup, attended transfer, park and eavesdrop (issue 19) end to end with SCRIPTED calls: the real
 * adapter program in dialplan mode, the Zammad double, and the switch double playing each shape after
 * the adapter's hand-back (packages/sim/src/uuid-bridge.ts; proven against the captures by
 * test/sim/transfers.test.ts). Zammad gets one `answer` per new person, naming it from the double's
 * directory; an eavesdropper is nobody; the adapter never cuts a call: after the hand-back it sends
 * nothing but `api` look-ups, then `exit`.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { CallScript, DialplanApp, SwitchCall, TargetBehaviour } from '@freeswitch-zammad-cti/sim/switch';
import type { Params } from '@freeswitch-zammad-cti/sim/zammad';
import { commandLines } from './command-lines.js';
import { dialplanAdapter, HAND_BACK, summary } from './dialplan-adapter.js';

const { zammad, place: run } = dialplanAdapter();

const DIRECTORY: CallScript['directory'] = {
  '2000@test.local': { effective_caller_id_name: 'Alice Agent' },
  '2001@test.local': { effective_caller_id_name: 'Sue Supervisor', zammad_user_id: '5' },
  '2002@test.local': { effective_caller_id_name: 'Carol Agent' },
  '2003@test.local': { effective_caller_id_name: 'Bob Agent', zammad_user_id: '17' },
  '2004@test.local': { effective_caller_id_name: 'Dan Agent' },
};
const hab: DialplanApp = { app: 'set', data: 'hangup_after_bridge=true' };
const PUBLIC: Record<string, DialplanApp[]> = {
  '493099986001': [hab, { app: 'bridge', data: 'user/2002@test.local' }],
  '493099986002': [hab, { app: 'bridge', data: 'user/2004@test.local' }],
  '493099986003': [{ app: 'answer' }, { app: 'park' }],
};

function script(dest: string, s: Partial<CallScript> = {}): CallScript {
  return {
    timeScale: 0.2,
    originateTimeoutMs: 10000,
    directory: DIRECTORY,
    dialplan: { public: PUBLIC },
    ...s,
    channel: {
      uuid: randomUUID(),
      callerNumber: '493055571600',
      callerName: 'Test Caller',
      destination: dest,
      context: 'public',
      sip: true,
      variables: { zammad_handled: 'true', zammad_direction: 'in' },
    },
  };
}

/** After the hand-back only `api` look-ups (returned), then `exit`; the call never depended on the socket. */
function afterHandBack(call: SwitchCall): string[] {
  const lines = commandLines(call.commands);
  const at = lines.indexOf(HAND_BACK);
  assert.ok(at >= 0, `hand-back sent: ${lines.join(' | ')}`);
  const rest = lines.slice(at + 1);
  assert.equal(rest.at(-1), 'exit');
  const api = rest.slice(0, -1);
  assert.ok(
    api.every((l) => l.startsWith('api ')),
    `nothing but api after the hand-back: ${rest.join(' | ')}`,
  );
  assert.ok(!call.socketLostWhileUp, 'the call never depended on the socket');
  assert.equal(call.hangupCause, 'NORMAL_CLEARING', 'ended by a person, not cut');
  // user_data of a user without zammad_user_id answers '-ERR no reply' (as the real switch does)
  const gone = call.framesSent.filter((f) => f.kind === 'api-response' && f.replyText?.startsWith('-ERR No such'));
  assert.deepEqual(
    gone.map((f) => f.replyText),
    [],
    `every uuid_getvar found its leg: ${rest.join(' | ')}`,
  );
  return api;
}

const common = (posts: Params[]) => {
  for (const p of posts) {
    assert.deepEqual([p['from'], p['to'], p['direction']], ['493055571600', posts[0]?.['to'], 'in'], 'from, to, dir');
  }
};
const TRANSFERRED = ['newCall', 'answer Dan Agent 2004', 'answer Alice Agent 2000', 'hangup 2000 normalClearing'];
const pickup = (how: 'intercept' | 'intercept-bleg'): TargetBehaviour => ({
  kind: 'ring',
  pickedUpBy: { phone: '2003', how, afterMs: 1500, talkMs: 2000 },
});
const attXfer = (complete: 'bye' | 'hangup-key' | 'bleg-killed'): TargetBehaviour => ({
  kind: 'answer',
  talkMs: 60000,
  attXfer: { to: '2000', afterMs: 1500, completeAfterMs: 1500, talkMs: 2000, complete },
});

describe('pickup, attended transfer, park, eavesdrop with scripted calls (the switch double plays them)', () => {
  for (const how of ['intercept-bleg', 'intercept'] as const) {
    test(`ring 2002, 2003 picks it up (${how}): answer names the picker's user, asked of its own leg`, async () => {
      const { call, posts } = await run(script('493099986001', { targets: { '2002': pickup(how) } }));
      assert.deepEqual(summary(posts), ['newCall', 'answer Bob Agent 17 2003', 'hangup 2003 normalClearing']);
      common(posts);
      const api = afterHandBack(call);
      assert.deepEqual(
        api.filter((l) => l.startsWith('api user_data')),
        ['effective_caller_id_name', 'zammad_user_id'].map((v) => `api user_data 2003@test.local var ${v}`),
      );
      assert.deepEqual(call.phoneActs, [how === 'intercept' ? 'intercept 2003' : 'intercept -bleg 2003']);
      assert.equal(call.variables()['originate_disposition'], 'PICKED_OFF');
    });
  }

  for (const complete of ['bye', 'hangup-key'] as const) {
    test(`2004 answers, att_xfer to 2000 (${complete}): an answer for each person, one hangup`, async () => {
      const { call, posts } = await run(script('493099986002', { targets: { '2004': attXfer(complete) } }));
      assert.deepEqual(summary(posts), TRANSFERRED);
      common(posts);
      afterHandBack(call);
      assert.deepEqual(call.phoneActs, ['att_xfer 2004 2000']);
    });
  }

  test("att_xfer whose agent leg is killed: the caller's dialplan ends first; no answer for 2000", async () => {
    const { call, posts } = await run(script('493099986002', { targets: { '2004': attXfer('bleg-killed') } }));
    assert.deepEqual(summary(posts), ['newCall', 'answer Dan Agent 2004', 'hangup 2004 normalClearing']);
    afterHandBack(call);
  });

  test('an operator panel originates 2000 and uuid_bridges it to the talking caller: answer for 2000', async () => {
    const talking = script('493099986002', { targets: { '2004': { kind: 'answer', talkMs: 60000 } } });
    const { call, posts } = await run(talking, async (c) => {
      await zammad.waitFor((z) => z.postsFor(c.uuid).some((p) => p.params['event'] === 'answer'), 5000);
      c.uuidBridge('user/2000@test.local', { talkMs: 2000 });
    });
    assert.deepEqual(summary(posts), TRANSFERRED);
    afterHandBack(call);
    assert.deepEqual(call.phoneActs, ['uuid_bridge 2000']);
  });

  test('park, 2003 retrieves: the switch answering the parked caller is nobody; the retriever is', async () => {
    const parked = script('493099986003', { retrieve: { phone: '2003', afterMs: 1500, talkMs: 2000 } });
    const { call, posts } = await run(parked);
    assert.deepEqual(summary(posts), ['newCall', 'answer Bob Agent 17 2003', 'hangup 2003 normalClearing']);
    common(posts);
    afterHandBack(call);
    assert.deepEqual(call.phoneActs, ['retrieve 2003']);
  });

  test("2004 answers, 2001 eavesdrops: no extra answer; the call stays Dan's", async () => {
    const dan: TargetBehaviour = {
      kind: 'answer',
      talkMs: 60000,
      eavesdroppedBy: { phone: '2001', afterMs: 1000, talkMs: 1500 },
    };
    const sc = script('493099986002', { targets: { '2004': dan }, callerHangupAfterAnswerMs: 4000 });
    const { call, posts } = await run(sc);
    assert.deepEqual(summary(posts), ['newCall', 'answer Dan Agent 2004', 'hangup 2004 normalClearing']);
    afterHandBack(call);
    assert.deepEqual(call.phoneActs, ['eavesdrop 2001']);
  });
});
