/**
 * Pickup, attended transfer, park and eavesdrop (issue 19) end to end: the built adapter, in
 * dialplan mode, is sent the real captures of test/fixtures/esl/transfers (README.md there) over
 * TCP as FreeSWITCH sent them (routing-replay.ts: the capture's events after the hand-back, through
 * the adapter's own subscription and filters; its look-ups answered from the directory below),
 * and Zammad's double receives what it reports.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Params } from '@freeswitch-zammad-cti/sim/zammad';
import { replayRouting, type ReplayOptions } from './routing-replay.js';
import { commandLines } from './command-lines.js';
import { dialplanAdapter, HAND_BACK, summary } from './dialplan-adapter.js';

/** These captures live in test/fixtures/esl/transfers/, beside the routing ones. */
const fixture = (name: string) => `transfers/${name}`;

const { eslPort, postsOf } = dialplanAdapter();

const DIRECTORY: ReplayOptions['directory'] = {
  '2000@test.local': { effective_caller_id_name: 'Alice Agent' },
  '2003@test.local': { effective_caller_id_name: 'Bob Agent', zammad_user_id: '17' },
  '2004@test.local': { effective_caller_id_name: 'Dan Agent' },
};
const dialled = (ext: string) => ({ dialed_user: ext, dialed_domain: 'test.local' });
const LEGS: ReplayOptions['legs'] = { '2000': dialled('2000'), '2004': dialled('2004') };

async function replay(name: string): Promise<{ posts: Params[]; lookups: string[] }> {
  // domain_name as a FusionPBX inbound route sets it: the directory domain of a phone that picks up
  const r = await replayRouting(fixture(name), eslPort(), {
    directory: DIRECTORY,
    legs: LEGS,
    variables: { zammad_handled: 'true', zammad_direction: 'in', domain_name: 'test.local' },
  });
  await r.closed;
  const posts = await postsOf(r.uuid);
  const lines = commandLines(r.commands);
  const rest = lines.slice(lines.indexOf(HAND_BACK) + 1);
  return { posts, lookups: rest };
}

describe('pickup, attended transfer, park, eavesdrop: real captures replayed to the adapter', {
  concurrency: true,
}, () => {
  for (const [name, expected] of [
    ['pickup-intercept-bleg', ['newCall', 'answer Bob Agent 17 2003', 'hangup 2003 normalClearing']],
    ['pickup-intercept', ['newCall', 'answer Bob Agent 17 2003', 'hangup 2003 normalClearing']],
    [
      'attended-transfer-att-xfer',
      ['newCall', 'answer Dan Agent 2004', 'answer Alice Agent 2000', 'hangup 2000 normalClearing'],
    ],
    [
      'attended-transfer-uuid-bridge',
      ['newCall', 'answer Dan Agent 2004', 'answer Alice Agent 2000', 'hangup 2000 normalClearing'],
    ],
    ['park-retrieve', ['newCall', 'answer Bob Agent 17 2003', 'hangup 2003 normalClearing']],
    ['eavesdrop-not-a-person', ['newCall', 'answer Dan Agent 2004', 'hangup 2004 normalClearing']],
  ] as const) {
    test(`${name}: ${expected.join(', ')}; only look-ups after the hand-back`, async () => {
      const { posts, lookups } = await replay(name);
      assert.deepEqual(summary(posts), expected);
      for (const p of posts)
        assert.deepEqual(
          [p['from'], p['to'], p['direction']],
          ['493055571600', posts[0]?.['to'], 'in'],
          "newCall's from, to, direction on every post",
        );
      assert.equal(lookups.at(-1), 'exit');
      assert.ok(
        lookups.slice(0, -1).every((l) => l.startsWith('api ')),
        lookups.join(' | '),
      );
    });
  }
});
