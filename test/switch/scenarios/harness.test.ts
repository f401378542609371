/**
 * The harness itself on the real switch, for the scenarios to come (queues, dialplan mode):
 * mod_callcenter's agent legs carry none of the suite's tags and are still found as legs of the
 * test call, by `variable_cc_member_session_uuid`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RealSwitch } from '../harness.js';

const QUEUE = 'support@test.local';
const AGENTS = ['2003@test.local', '2002@test.local'];
const QUEUE_NUMBER = '493099970199';

let sw: RealSwitch;

async function agentsReady(): Promise<void> {
  // after a restart or a no-answer the agents are not offered calls (shared/freeswitch/README.md)
  for (const a of AGENTS) {
    await sw.esl.api(`callcenter_config agent set status ${a} Available`);
    await sw.esl.api(`callcenter_config agent set state ${a} Waiting`);
  }
}

before(async () => {
  sw = await RealSwitch.open();
  await sw.dialplan(`00_cti_test_harness_${process.pid}`, [
    { name: 'cti_test_queue', number: QUEUE_NUMBER, actions: [['answer'], ['callcenter', QUEUE], ['hangup']] },
  ]);
  await agentsReady();
});

after(async () => {
  if (sw) await agentsReady().catch(() => undefined);
  await sw?.close();
});

describe('the harness on a real FreeSWITCH', () => {
  test(
    'a queue call: the agent legs mod_callcenter originates (no tag of ours) ' + 'are found by cc_member_session_uuid',
    async () => {
      const call = sw.call('queue', { to: QUEUE_NUMBER, from: '493055571600' });
      const ringing = await sw.legs.waitFor(
        call.tag,
        (l) => l.byRole('bleg').length >= 2,
        15_000,
        'both agents rung by the queue',
      );
      const inbound = ringing.one('inbound');
      await sw.esl.api(`uuid_kill ${call.callerUuid} ORIGINATOR_CANCEL`);
      const done = await sw.legs.allEnded(call.tag, 20_000);
      const agentLegs = done.byRole('bleg');
      assert.deepEqual(
        agentLegs.map((l) => l.first('Caller-Destination-Number')).sort(),
        ['2002', '2003'],
        done.describe(),
      );
      for (const leg of agentLegs) {
        assert.equal(leg.first('variable_sip_h_X-Cti-Test'), undefined, 'an agent leg carries no tag of ours');
        assert.equal(leg.get('variable_cc_member_session_uuid'), inbound.uuid);
        assert.equal(leg.parent, inbound.uuid);
      }
    },
  );
});
