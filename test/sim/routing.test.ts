/**
 * Proves the switch double's dialplan routing against the real captures in test/fixtures/esl/routing/
 * (issue 11): each capture's app is replayed byte for byte against the double (its writes, each after
 * as many non-racy frames as in the capture), the double running a CallScript whose dialplan mirrors
 * the capture's (routing/README.md and each file's '#' header lines). Compared: the frame sequence
 * without the racy CHANNEL_PARK / linger notice (event names, Application of EXECUTE/EXECUTE_COMPLETE,
 * Hangup-Cause, reply texts), then key headers event by event: Other-Leg-Destination-Number (who is
 * bridged), Caller-Destination-Number and Caller-Context (where a transfer went), originate_disposition,
 * bridge_hangup_cause, Hangup-Cause, the states, cc_queue/cc_agent, sip_refer_to.
 *
 * Not replayed: handback-execute-extension-voicemail.txt — execute_extension runs the extension INSIDE
 * the socket application (obs. 3); the double does not model execute_extension (the adapter must not
 * use it), so there is nothing of the double to prove with it.
 *
 * Run: node --import tsx --test test/sim/routing.test.ts
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CallScript, DialplanApp, SwitchCall, TargetBehaviour } from '@freeswitch-zammad-cti/sim/call-script';
import { eslFixture, eslFixtureNames } from '../fixtures/index.js';
import { encodeCommand } from '@freeswitch-zammad-cti/sim/esl-wire';
import { passesFilters } from '@freeswitch-zammad-cti/sim/event-filter';
import {
  type Labeled,
  eventPairs,
  transcriptFrames,
  replay,
  labels,
  assertTolerant,
  startApp,
  bridgeCmd,
  waitFor,
  type MiniApp,
} from './transcript-replay.js';

const TS = 0.01;

const hab: DialplanApp = { app: 'set', data: 'hangup_after_bridge=true' };
/** The capture switch's context zx (routing/README.md), one extension per number. */
const ZX: Record<string, DialplanApp[]> = {
  '4930998001': [
    { app: 'set', data: 'continue_on_fail=true' },
    hab,
    { app: 'bridge', data: '{originate_timeout=4}user/2002@test.local' },
    { app: 'answer' },
    { app: 'voicemail', data: 'default test.local 2002' },
    { app: 'hangup' },
  ],
  '4930998003': [hab, { app: 'bridge', data: 'user/2003@test.local,user/2002@test.local' }],
  '4930998005': [hab, { app: 'bridge', data: 'sofia/lo-in/2004@127.0.0.1:5091' }],
  '4930998006': [hab, { app: 'bridge', data: 'user/2003@test.local' }],
  '4930998007': [hab, { app: 'callcenter', data: 'support@test.local' }],
  '4930998008': [
    { app: 'answer' },
    { app: 'playback', data: 'tone_stream://%(1000,0,350)' },
    hab,
    { app: 'bridge', data: 'user/2000@test.local' },
  ],
  '4930998010': [hab, { app: 'bridge', data: 'sofia/lo-in/2005@127.0.0.1:5091' }],
  '4930998011': [hab, { app: 'bridge', data: 'user/2003@test.local' }], // never reached: the app bridges itself
  '4930998012': [hab, { app: 'bridge', data: 'user/2002@test.local' }],
  '4930997006': [hab, { app: 'bridge', data: 'user/2003@test.local' }],
};

interface RoutingScenario {
  file: string;
  dest: string;
  targets: Record<string, TargetBehaviour>;
  /**
   * replies after the connect reply before CHANNEL_PARK in the capture (racy; default 4: both sendmsg's answered first)
   */
  park?: number;
  /** what the capture's inbound-ESL driver did, relative to a frame of the socket */
  on?: { label: string; afterMs: number; act: (call: SwitchCall) => void };
}

const SCENARIOS: RoutingScenario[] = [
  {
    file: 'handback-group-ring',
    dest: '4930998003',
    targets: { '2002': { kind: 'ring' }, '2003': { kind: 'answer', ringMs: 3000, talkMs: 3000 } },
  },
  { file: 'handback-noanswer-voicemail', dest: '4930998001', targets: { '2002': { kind: 'ring' } }, park: 3 },
  {
    file: 'handback-queue-callcenter',
    dest: '4930998007',
    targets: { '2002': { kind: 'ring' }, '2003': { kind: 'answer', ringMs: 2000, talkMs: 3000 } },
  },
  { file: 'handback-ivr-then-agent', dest: '4930998008', targets: { '2000': { kind: 'answer', talkMs: 2000 } } },
  {
    file: 'handback-transfer-by-uuid',
    dest: '4930998005',
    targets: { '2004': { kind: 'answer', talkMs: 20000 }, '2003': { kind: 'answer', talkMs: 2000 } },
    on: { label: 'CHANNEL_BRIDGE', afterMs: 20, act: (c) => c.uuidTransfer('4930998006') },
  },
  {
    file: 'handback-refer-blind-transfer',
    dest: '4930998010',
    targets: {
      '2005': { kind: 'answer', referTo: '4930997006', referAfterMs: 2000 },
      '2003': { kind: 'answer', talkMs: 2000 },
    },
  },
  {
    file: 'bridge-refer-blind-transfer',
    dest: '4930998011',
    park: 2,
    targets: {
      '2005': { kind: 'answer', referTo: '4930997006', referAfterMs: 2000 },
      '2003': { kind: 'answer', talkMs: 2000 },
    },
  },
  {
    file: 'handback-caller-cancel',
    dest: '4930998012',
    targets: { '2002': { kind: 'ring' } },
    on: { label: 'CHANNEL_PROGRESS', afterMs: 20, act: (c) => c.hangup('ORIGINATOR_CANCEL') },
  },
];

function scriptFor(s: RoutingScenario, extra: Partial<CallScript> = {}): CallScript {
  // the capture's channel came in on lo-in in context public, which transferred it to zx (transfer_source)
  const src = `${Math.floor(Date.now() / 1000)}:00000000-0000-4000-8000-00000000a001:bl_xfer:${s.dest}/zx/XML`;
  return {
    channel: {
      callerNumber: '493055571600',
      callerName: 'Test Caller',
      destination: s.dest,
      context: 'zx',
      sip: true,
      transferSource: src,
    },
    timeScale: TS,
    originateTimeoutMs: 60000,
    targets: s.targets,
    dialplan: { zx: ZX },
    queues: { 'support@test.local': { agents: ['2003@test.local', '2002@test.local'], musicMs: 500 } },
    directory: { '2003@test.local': 'Bob Agent', '2002@test.local': 'Carol Agent', '2000@test.local': 'Alice Agent' },
    ...extra,
  };
}

const ROUTING_KEYS = [
  'Event-Name',
  'Channel-State',
  'Answer-State',
  'Hangup-Cause',
  'Caller-Destination-Number',
  'Caller-Context',
  'Caller-Caller-ID-Number',
  'Application',
  'variable_originate_disposition',
  'variable_bridge_hangup_cause',
  'variable_cc_queue',
  'variable_cc_agent',
  'variable_sip_refer_to',
  'variable_hangup_after_bridge',
  'variable_continue_on_fail',
];

function assertRoutingHeaders(got: Labeled[], want: Labeled[]): void {
  for (const { i, label, ge, we } of eventPairs(got, want)) {
    const at = `event #${i} ${label}`;
    for (const h of ROUTING_KEYS) assert.equal(ge[h], we[h], `${at}: header ${h}`);
    // the socket's own Application-Data is the capture server's address, 9084
    // uuid_bridge's is the agent leg's uuid: checked against the originatee instead
    if (we.Application === 'uuid_bridge')
      assert.equal(ge['Application-Data'], ge['Other-Leg-Unique-ID'], `${at}: uuid_bridge names the agent leg`);
    else if (we.Application !== 'socket')
      assert.equal(ge['Application-Data'], we['Application-Data'], `${at}: Application-Data`);
    // who is bridged: on CHANNEL_BRIDGE/UNBRIDGE, and the originatee's absence after a transfer
    if (/BRIDGE|EXECUTE_COMPLETE\[(bridge|callcenter)\]/.test(label ?? '')) {
      assert.equal(
        ge['Other-Leg-Destination-Number'],
        we['Other-Leg-Destination-Number'],
        `${at}: Other-Leg-Destination-Number`,
      );
    }
    if (label === 'CHANNEL_BRIDGE')
      assert.equal(
        ge['Bridge-B-Unique-ID'],
        ge['Other-Leg-Unique-ID'],
        `${at}: Bridge-B-Unique-ID names the other leg`,
      );
    for (const v of ['variable_transfer_source', 'variable_transfer_history']) {
      assert.equal(ge[v] === undefined, we[v] === undefined, `${at}: ${v} present`);
      if (we[v] !== undefined) {
        // same shape and same number of entries: epoch:uuid:bl_xfer:dest/ctx/XML or epoch:uuid:uuid_br:<agent leg>
        const shape = (x: string): string =>
          x
            .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, 'U')
            .replace(/(^|\|:|::)\d{10}:/g, '$1E:');
        assert.equal(shape(ge[v] ?? ''), shape(we[v] ?? ''), `${at}: ${v}`);
      }
    }
  }
}

for (const s of SCENARIOS) {
  test(`routing capture ${s.file}: same frames and key headers as the capture (PARK/linger tolerated)`, async () => {
    const file = eslFixture(`routing/${s.file}.txt`);
    const want = transcriptFrames(file);
    const on = s.on;
    const hooks = on
      ? {
          onFrame: (l: Labeled, call: SwitchCall) => {
            if (l.label === on.label) setTimeout(() => on.act(call), on.afterMs);
          },
        }
      : {};
    const { frames, call } = await replay(file, scriptFor(s), hooks);
    assertTolerant(frames, want);
    // connect reply: the same profile/state headers in the same order (the variables differ: SIP headers of the
    // capture's caller)
    const names = (l: Labeled[]): string[] =>
      (l[0]?.frame.headerList ?? []).map(([k]) => k).filter((k) => !k.startsWith('variable_'));
    assert.deepEqual(names(frames), names(want), 'connect reply header names and order (without variables)');
    assertRoutingHeaders(frames, want);
    assert.ok(!call.socketLostWhileUp, 'the exit after the end never touched the call');
  });
  test(`routing capture ${s.file}: exact frame sequence with CHANNEL_PARK where the capture had it`, async () => {
    const file = eslFixture(`routing/${s.file}.txt`);
    const want = transcriptFrames(file);
    const on = s.on;
    const hooks = on
      ? {
          onFrame: (l: Labeled, call: SwitchCall) => {
            if (l.label === on.label) setTimeout(() => on.act(call), on.afterMs);
          },
        }
      : {};
    const { frames } = await replay(file, scriptFor(s, { parkAfterReplies: s.park ?? 4 }), hooks);
    assert.deepEqual(labels(frames), labels(want));
  });
}

test('every routing capture is covered (execute_extension on purpose not)', () => {
  const files = eslFixtureNames('routing');
  assert.deepEqual(files, [...SCENARIOS.map((s) => s.file), 'handback-execute-extension-voicemail'].sort());
});

// ---------------------------------------------------------------------------
// Behaviour beyond the captures (mod_commands.c, switch_ivr.c, the README's observations)
// ---------------------------------------------------------------------------

const exec = (app: string, arg: string): string =>
  encodeCommand('sendmsg', [
    ['call-command', 'execute'],
    ['execute-app-name', app],
    ['execute-app-arg', arg],
  ]);
const HANDBACK = exec('transfer', '${destination_number} XML ${context}');
const noRacy = (a: MiniApp): string[] => a.labels().filter((l) => l !== 'CHANNEL_PARK' && l !== 'notice:linger');
const apiBody = async (a: MiniApp, cmd: string): Promise<string> => {
  const n = a.frames.filter((f) => f.label === 'api-response').length;
  await a.send(`api ${cmd}\n\n`, (l) => l.filter((x) => x === 'api-response').length > n);
  return a.frames.filter((f) => f.label === 'api-response')[n]?.frame.body ?? '';
};
function sim(dest: string, extra: Partial<CallScript> = {}): CallScript {
  const s = scriptFor({ file: '', dest, targets: {} }, extra);
  s.channel = { ...s.channel, transferSource: undefined };
  return s;
}

test(
  'after the hand-back the connection only listens: ' + 'an exit while the caller talks leaves the call alone (obs. 2)',
  async () => {
    const { app, call, stop } = await startApp(
      sim('4930998006', { targets: { '2003': { kind: 'answer', talkMs: 3000 } } }),
    );
    await app.send(HANDBACK, (l) => l.includes('CHANNEL_BRIDGE'));
    assert.deepEqual(noRacy(app).slice(3, 12), [
      'reply:+OK',
      'CHANNEL_EXECUTE[transfer]',
      'CHANNEL_EXECUTE_COMPLETE[transfer]',
      'CHANNEL_UNPARK',
      'CHANNEL_EXECUTE_COMPLETE[socket]',
      'CHANNEL_STATE',
      'CHANNEL_STATE',
      'CHANNEL_EXECUTE[set]',
      'CHANNEL_EXECUTE_COMPLETE[set]',
    ]);
    await app.send('exit\n\n', (l) => l.includes('notice:disconnect'));
    assert.equal(call.hangupCause, null, 'still talking after the exit');
    assert.equal(await call.channelDone, 'NORMAL_CLEARING', 'the agent hung up (hangup_after_bridge)');
    assert.equal(call.socketLostWhileUp, false);
    await stop();
  },
);

test(
  'uuid_getvar reads the B-leg (dialed_user/dialed_domain, the directory name), _undef_, -ERR No such channel!; ' +
    'user_data any variable',
  async () => {
    const { app, stop } = await startApp(
      sim('4930998003', {
        targets: { '2002': { kind: 'ring' }, '2003': { kind: 'answer', ringMs: 200, talkMs: 3000 } },
        directory: { '2003@test.local': { effective_caller_id_name: 'Bob Agent', zammad_user_id: '17' } },
      }),
    );
    await app.send(HANDBACK, (l) => l.includes('CHANNEL_BRIDGE'));
    const b = app.event('CHANNEL_BRIDGE')['Bridge-B-Unique-ID'] ?? '';
    assert.equal(await apiBody(app, `uuid_getvar ${b} dialed_user`), '2003');
    assert.equal(await apiBody(app, `uuid_getvar ${b} dialed_domain`), 'test.local');
    assert.equal(await apiBody(app, `uuid_getvar ${b} effective_caller_id_name`), 'Bob Agent');
    assert.equal(await apiBody(app, `uuid_getvar ${b} no_such_var`), '_undef_');
    assert.equal(
      await apiBody(app, 'uuid_getvar 00000000-0000-4000-8000-000000000000 dialed_user'),
      '-ERR No such channel!\n',
    );
    assert.equal(await apiBody(app, 'user_data 2003@test.local var zammad_user_id'), '17');
    assert.equal(await apiBody(app, 'user_data 2003@test.local var no_such_var'), '-ERR no reply\n');
    await app.send('', () => app.labels().includes('CHANNEL_HANGUP_COMPLETE[NORMAL_CLEARING]'));
    assert.equal(await apiBody(app, `uuid_getvar ${b} dialed_user`), '-ERR No such channel!\n', 'the leg is gone');
    await stop();
  },
);

test(
  'bridge mode: api uuid_transfer moves the caller (+OK); a hangup sent after the bridge returned still ' +
    'kills it (obs. 8)',
  async () => {
    const { app, call, stop } = await startApp(
      sim('4930998011', {
        targets: {
          '2004': { kind: 'answer', talkMs: 60000 },
          '2003': { kind: 'answer', ringMs: 20000, talkMs: 60000 },
        },
      }),
    );
    await app.send(bridgeCmd('user/2004@test.local'), (l) => l.includes('CHANNEL_BRIDGE'));
    assert.equal(await apiBody(app, `uuid_transfer ${call.uuid} 4930998006`), '+OK\n');
    await waitFor(() => app.labels().includes('CHANNEL_EXECUTE_COMPLETE[socket]'));
    const unbridge = app.event('CHANNEL_UNBRIDGE');
    assert.equal(unbridge['Caller-Destination-Number'], '4930998006');
    assert.equal(unbridge['Caller-Context'], 'zx', 'routed in its current context');
    assert.deepEqual(
      noRacy(app).slice(
        noRacy(app).indexOf('CHANNEL_UNBRIDGE'),
        noRacy(app).indexOf('CHANNEL_EXECUTE_COMPLETE[socket]') + 1,
      ),
      ['CHANNEL_UNBRIDGE', 'CHANNEL_EXECUTE_COMPLETE[bridge]', 'CHANNEL_UNPARK', 'CHANNEL_EXECUTE_COMPLETE[socket]'],
    );
    await app.send(
      encodeCommand('sendmsg', [
        ['call-command', 'hangup'],
        ['hangup-cause', 'NORMAL_CLEARING'],
      ]),
    );
    assert.equal(await call.channelDone, 'NORMAL_CLEARING');
    assert.ok(
      !app.labels().includes('CHANNEL_BRIDGE', app.labels().indexOf('CHANNEL_UNBRIDGE')),
      'the new target was never connected',
    );
    assert.equal(await apiBody(app, `uuid_transfer ${call.uuid} 4930998006`), '-ERR No such channel!\n');
    await stop();
  },
);

test('no extension for the number: CS_ROUTING, then hangup NO_ROUTE_DESTINATION', async () => {
  const { app, call, stop } = await startApp(sim('4930999000'));
  await app.send(HANDBACK, (l) => l.some((x) => x.startsWith('CHANNEL_HANGUP_COMPLETE')));
  const l = noRacy(app);
  assert.deepEqual(l.slice(l.indexOf('CHANNEL_EXECUTE_COMPLETE[socket]')), [
    'CHANNEL_EXECUTE_COMPLETE[socket]',
    'CHANNEL_STATE',
    'CHANNEL_HANGUP[NO_ROUTE_DESTINATION]',
    'CHANNEL_STATE',
    'CHANNEL_STATE',
    'CHANNEL_HANGUP_COMPLETE[NO_ROUTE_DESTINATION]',
  ]);
  assert.equal(call.hangupCause, 'NO_ROUTE_DESTINATION');
  await stop();
});

test(
  'a dialplan transfer action, a bridge without hangup_after_bridge: transfer_source grows, ' +
    'the extension goes on, then ends',
  async () => {
    const sc = sim('4930998100', { targets: { '2003': { kind: 'answer', talkMs: 300 } } });
    sc.dialplan = {
      zx: { '4930998100': [{ app: 'transfer', data: '200 XML tenant' }] },
      tenant: {
        '200': [
          { app: 'bridge', data: 'user/2003@test.local' },
          { app: 'set', data: 'after_bridge=yes' },
        ],
      },
    };
    const { app, call, stop } = await startApp(sc);
    await app.send(HANDBACK, (l) => l.some((x) => x.startsWith('CHANNEL_HANGUP_COMPLETE')));
    const end = app.event('CHANNEL_HANGUP_COMPLETE[NORMAL_CLEARING]');
    assert.equal(end['Caller-Destination-Number'], '200');
    assert.equal(end['Caller-Context'], 'tenant');
    assert.equal(end['Caller-RDNIS'], '4930998100');
    assert.match(end.variable_transfer_source ?? '', /^\d{10}:[0-9a-f-]{36}:bl_xfer:200\/tenant\/XML$/);
    assert.equal((end.variable_transfer_history ?? '').split('|:').length, 2);
    assert.equal(end.variable_after_bridge, 'yes', 'the extension went on after the bridge');
    assert.deepEqual(call.appsRun, [
      'transfer 4930998100 XML zx',
      'transfer 200 XML tenant',
      'bridge user/2003@test.local',
      'set after_bridge=yes',
    ]);
    await stop();
  },
);

test("a dialplan of 40 set apps: 80 events without filters, none with the adapter's filters", async () => {
  const forty = Array.from({ length: 40 }, (_, i): DialplanApp => ({ app: 'set', data: `v${i}=${i}` }));
  const run40 = async (filters: string[]): Promise<number> => {
    const sc = sim('4930998040', { targets: { '2003': { kind: 'answer', talkMs: 100 } } });
    sc.dialplan = { zx: { '4930998040': [...forty, hab, { app: 'bridge', data: 'user/2003@test.local' }] } };
    const { app, stop } = await startApp(sc);
    for (const f of filters) await app.send(`filter ${f}\n\n`);
    await app.send(HANDBACK, (l) => l.some((x) => x.startsWith('CHANNEL_HANGUP_COMPLETE')));
    assert.ok(app.labels().includes('CHANNEL_BRIDGE'));
    const n = app.labels().filter((x) => x.endsWith('[set]')).length;
    await stop();
    return n;
  };
  assert.equal(await run40([]), 82, '40 sets + hangup_after_bridge, EXECUTE and EXECUTE_COMPLETE each');
  assert.equal(
    await run40([
      'Event-Name CHANNEL_BRIDGE',
      'Event-Name CHANNEL_HANGUP',
      'Event-Name CHANNEL_HANGUP_COMPLETE',
      'Application bridge',
      'Application voicemail',
      'Application socket',
    ]),
    0,
  );
});

test(
  'filters as event_handler() applies them: positive matches, a negative one wins when it comes first, regex, ' +
    'names case-insensitive',
  () => {
    const ev: Record<string, string> = { 'Event-Name': 'CHANNEL_EXECUTE', Application: 'set', 'Unique-ID': 'u-1' };
    const get = (h: string) => Object.entries(ev).find(([k]) => k.toLowerCase() === h.toLowerCase())?.[1];
    assert.equal(passesFilters([], get), true, 'no filter: everything');
    assert.equal(passesFilters([['Event-Name', 'CHANNEL_BRIDGE']], get), false, 'filters set: only what one matches');
    assert.equal(passesFilters([['application', 'SET']], get), true);
    assert.equal(
      passesFilters(
        [
          ['Application', '-set'],
          ['Unique-ID', 'u-1'],
        ],
        get,
      ),
      false,
      'a negative match drops it',
    );
    assert.equal(
      passesFilters(
        [
          ['Unique-ID', 'u-1'],
          ['Application', '-set'],
        ],
        get,
      ),
      false,
      'also after a positive one',
    );
    assert.equal(
      passesFilters(
        [
          ['Unique-ID', 'u-1'],
          ['Application', '-bridge'],
        ],
        get,
      ),
      true,
    );
    assert.equal(passesFilters([['Event-Name', '/^CHANNEL_EXEC/']], get), true, 'regex');
    assert.equal(
      passesFilters([['Caller-Context', 'public']], get),
      false,
      'a filter on a header the event lacks does not match',
    );
  },
);
