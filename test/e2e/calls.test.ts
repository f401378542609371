/**
 * Every call scenario end to end: the real adapter program, a switch double speaking
 * FreeSWITCH's outbound-socket wire protocol, and a Zammad double. Each test asserts the exact
 * posts Zammad received and the exact commands the switch received.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { placeCall, type CallScript, type SwitchCall } from '@freeswitch-zammad-cti/sim/switch';
import { ZammadDouble, type Params } from '@freeswitch-zammad-cti/sim/zammad';
import { startAdapter, type AdapterProcess } from './adapter-process.js';
import { commandLines as sentLines } from './command-lines.js';

const TOKEN = `tok-${randomUUID()}`;
let zammad: ZammadDouble;
let adapter: AdapterProcess;

before(async () => {
  zammad = new ZammadDouble({
    token: TOKEN,
    blockedNumbers: ['4930999999999'],
    outboundRoutes: [{ dest: '49171*', callerId: '4930777000000' }],
  });
  await zammad.start();
  adapter = await startAdapter({ ZAMMAD_CTI_URL: zammad.url, ZAMMAD_NEWCALL_TIMEOUT_MS: '1500' });
});

after(async () => {
  await adapter?.stop();
  await zammad?.stop();
});

const target = () => ({ host: '127.0.0.1', port: adapter.eslPort });

/** Commands as one line each: `sendmsg execute bridge <arg>`, `api user_data …`, `linger`. */
const commandLines = (call: SwitchCall): string[] => sentLines(call.commands);

/**
 * The commands every call starts with: modesl's `connect`, its subscription (`myevents json`: this channel only),
 * `linger`.
 */
const OPENING = ['connect', 'myevents json', 'linger'];

async function finished(call: SwitchCall, events: number): Promise<Params[]> {
  await call.closed;
  await zammad.waitFor(() => zammad.postsFor(call.uuid).filter((p) => p.status === 200).length >= events, 5000);
  // Nothing more may follow: give a stray post a moment to show up.
  await new Promise((r) => setTimeout(r, 100));
  return zammad.postsFor(call.uuid).map((p) => p.params);
}

function script(s: Partial<Omit<CallScript, 'channel'>> & { channel: Partial<CallScript['channel']> }): CallScript {
  return {
    timeScale: 1,
    ...s,
    channel: {
      uuid: randomUUID(),
      context: 'public',
      sip: true,
      ...s.channel,
      callerNumber: s.channel.callerNumber ?? '03055571600',
      destination: s.channel.destination ?? '491711234567890',
    },
  };
}

describe('calls end to end', () => {
  test(
    'inbound group ring answered by the second agent: ' + 'names from the directory, answer names who picked up',
    async () => {
      const call = await placeCall(
        target(),
        script({
          channel: {
            variables: { zammad_bridge: 'user/2003@pbx.example,user/2002@pbx.example', domain_name: 'pbx.example' },
          },
          directory: { '2003@pbx.example': 'Alice Agent', '2002@pbx.example': 'Bob Agent' },
          targets: { '2003': { kind: 'ring' }, '2002': { kind: 'answer', ringMs: 80, talkMs: 150 } },
        }),
      );
      const posts = await finished(call, 3);
      const common = { from: '493055571600', to: '491711234567890', direction: 'in', callId: call.uuid };
      assert.deepEqual(posts, [
        { event: 'newCall', ...common, user: ['Alice Agent', 'Bob Agent'] },
        { event: 'answer', ...common, user: 'Bob Agent', answeringNumber: '2002' },
        { event: 'hangup', ...common, cause: 'normalClearing', answeringNumber: '2002' },
      ]);
      assert.deepEqual(commandLines(call), [
        ...OPENING,
        'api user_data 2003@pbx.example var effective_caller_id_name',
        'api user_data 2002@pbx.example var effective_caller_id_name',
        'sendmsg execute bridge user/2003@pbx.example,user/2002@pbx.example',
        'api user_data 2002@pbx.example var effective_caller_id_name',
        'api user_data 2002@pbx.example var zammad_user_id',
        'sendmsg hangup NORMAL_CLEARING',
        'exit',
      ]);
      const entry = zammad.entry(call.uuid);
      assert.equal(entry?.done, true);
      assert.equal(entry?.answeredBy, 'Bob Agent');
      for (const p of zammad.postsFor(call.uuid)) assert.equal(p.accept, 'application/json');
    },
  );

  test("inbound caller on Zammad's block list: hung up USER_BUSY, never bridged, hangup busy", async () => {
    const call = await placeCall(
      target(),
      script({ channel: { callerNumber: '+49 30 999999999', variables: { zammad_users: 'Alice' } } }),
    );
    const posts = await finished(call, 2);
    assert.deepEqual(
      posts.map((p) => [p['event'], p['cause'] ?? '']),
      [
        ['newCall', ''],
        ['hangup', 'busy'],
      ],
    );
    assert.deepEqual(commandLines(call), [...OPENING, 'sendmsg hangup USER_BUSY', 'exit']);
    assert.equal(call.hangupCause, 'USER_BUSY');
    assert.deepEqual(call.bridges, []);
  });

  test("outbound with Zammad's caller id: effective_caller_id_number set before the bridge", async () => {
    const call = await placeCall(
      target(),
      script({
        channel: {
          callerNumber: '2000',
          callerName: 'Agent Smith',
          destination: '01711234567',
          context: 'default',
          variables: { zammad_bridge: 'sofia/gateway/carrier/01711234567' },
        },
        targets: { '01711234567': { kind: 'answer', ringMs: 30, talkMs: 60 } },
      }),
    );
    const posts = await finished(call, 3);
    const common = { from: '2000', to: '491711234567', direction: 'out', callId: call.uuid };
    assert.deepEqual(posts, [
      { event: 'newCall', ...common, user: ['Agent Smith'] },
      { event: 'answer', ...common, answeringNumber: '491711234567' },
      { event: 'hangup', ...common, cause: 'normalClearing', answeringNumber: '491711234567' },
    ]);
    assert.deepEqual(commandLines(call), [
      ...OPENING,
      'sendmsg execute set effective_caller_id_number=4930777000000',
      'sendmsg execute bridge sofia/gateway/carrier/01711234567',
      'sendmsg hangup NORMAL_CLEARING',
      'exit',
    ]);
    assert.equal(call.variables()['effective_caller_id_number'], '4930777000000');
  });

  test('busy: FreeSWITCH hangs the caller up itself; hangup busy, no hangup command', async () => {
    const call = await placeCall(
      target(),
      script({
        channel: { variables: { zammad_users: 'Alice', zammad_bridge: 'user/2001@d' } },
        targets: { '2001': { kind: 'busy', ringMs: 20 } },
      }),
    );
    const posts = await finished(call, 2);
    assert.deepEqual(
      posts.map((p) => [p['event'], p['cause'] ?? '']),
      [
        ['newCall', ''],
        ['hangup', 'busy'],
      ],
    );
    assert.deepEqual(commandLines(call), [...OPENING, 'sendmsg execute bridge user/2001@d', 'exit']);
  });

  test('caller cancels while it rings: hangup cancel, Zammad shows a missed call', async () => {
    const call = await placeCall(
      target(),
      script({
        channel: { variables: { zammad_users: 'Alice', zammad_bridge: 'user/2002@d' } },
        targets: { '2002': { kind: 'ring' } },
        callerCancelAfterMs: 150,
      }),
    );
    const posts = await finished(call, 2);
    assert.deepEqual(
      posts.map((p) => [p['event'], p['cause'] ?? '']),
      [
        ['newCall', ''],
        ['hangup', 'cancel'],
      ],
    );
    assert.equal(zammad.entry(call.uuid)?.done, false, 'an unanswered inbound call is missed');
    assert.ok(!commandLines(call).some((l) => l.startsWith('sendmsg hangup')));
  });

  test(
    'no answer: FreeSWITCH leaves the caller up after NO_ANSWER; ' + 'the adapter hangs it up with that cause',
    async () => {
      const call = await placeCall(
        target(),
        script({
          channel: { variables: { zammad_users: 'Alice', zammad_bridge: 'user/2002@d' } },
          targets: { '2002': { kind: 'ring' } },
          originateTimeoutMs: 150,
        }),
      );
      const posts = await finished(call, 2);
      assert.deepEqual(
        posts.map((p) => [p['event'], p['cause'] ?? '']),
        [
          ['newCall', ''],
          ['hangup', 'noAnswer'],
        ],
      );
      assert.deepEqual(commandLines(call).slice(-2), ['sendmsg hangup NO_ANSWER', 'exit']);
      assert.equal(call.hangupCause, 'NO_ANSWER');
    },
  );

  test('unknown number: hangup notFound', async () => {
    const call = await placeCall(
      target(),
      script({
        channel: { variables: { zammad_users: 'Alice', zammad_bridge: 'sofia/gateway/carrier/0301' } },
        targets: { '0301': { kind: 'fail', cause: 'NO_ROUTE_DESTINATION', ringMs: 10 } },
      }),
    );
    const posts = await finished(call, 2);
    assert.deepEqual(
      posts.map((p) => [p['event'], p['cause'] ?? '']),
      [
        ['newCall', ''],
        ['hangup', 'notFound'],
      ],
    );
  });

  test('withheld caller id (CLIR: real number delivered with the privacy flag) becomes anonymous', async () => {
    const call = await placeCall(
      target(),
      script({
        channel: {
          callerNumber: '493055571601',
          hideNumber: true,
          variables: { zammad_users: 'Alice', zammad_bridge: 'user/2000@d' },
        },
        targets: { '2000': { kind: 'answer', talkMs: 30 } },
      }),
    );
    const posts = await finished(call, 3);
    assert.deepEqual(
      posts.map((p) => p['from']),
      ['anonymous', 'anonymous', 'anonymous'],
    );
    assert.ok(
      !JSON.stringify(zammad.postsFor(call.uuid)).includes('55571601'),
      'the withheld number never reaches Zammad',
    );
  });

  test('50 calls at once: every call reported complete and in order', async () => {
    const calls = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        placeCall(
          target(),
          script({
            channel: {
              callerNumber: `0301234${String(i).padStart(4, '0')}`,
              variables: { zammad_users: `Agent ${i}`, zammad_bridge: `user/${3000 + i}@d` },
            },
            targets: {
              [String(3000 + i)]:
                i % 5 === 0 ? { kind: 'busy', ringMs: 10 } : { kind: 'answer', ringMs: 20, talkMs: 50 },
            },
            chunking: i % 2 === 0 ? 'split' : 'whole',
          }),
        ),
      ),
    );
    await Promise.all(calls.map((c) => c.closed));
    await zammad.waitFor(() => calls.every((c) => zammad.entry(c.uuid)?.state === 'hangup'), 10_000);
    calls.forEach((call, i) => {
      const events = zammad.postsFor(call.uuid).map((p) => `${p.params['event']}:${p.status}`);
      assert.deepEqual(
        events,
        i % 5 === 0 ? ['newCall:200', 'hangup:200'] : ['newCall:200', 'answer:200', 'hangup:200'],
        `call ${i}`,
      );
      assert.equal(zammad.postsFor(call.uuid)[0]?.params['from'], `49301234${String(i).padStart(4, '0')}`);
    });
  });
});

describe('Zammad not reachable', () => {
  let down: AdapterProcess;
  let slow: ZammadDouble;
  before(async () => {
    slow = new ZammadDouble({ token: TOKEN });
    await slow.start();
    slow.setFault({ kind: 'hang' });
    down = await startAdapter({
      ZAMMAD_CTI_URL: slow.url,
      ZAMMAD_NEWCALL_TIMEOUT_MS: '300',
      ZAMMAD_REQUEST_TIMEOUT_MS: '400',
      RETRY_BASE_MS: '50',
      RETRY_MAX_MS: '200',
    });
  });
  after(async () => {
    await down?.stop();
    await slow?.stop();
  });

  test(
    'a Zammad that never answers: the call is bridged within the bound, ' + 'and reported once Zammad is back',
    async () => {
      const call = await placeCall(
        { host: '127.0.0.1', port: down.eslPort },
        script({
          channel: { variables: { zammad_users: 'Alice', zammad_bridge: 'user/2000@d' } },
          targets: { '2000': { kind: 'answer', ringMs: 10, talkMs: 30 } },
        }),
      );
      await call.closed;
      const connectReply = call.framesSent.find((f) => f.kind === 'connect-reply')?.at ?? 0;
      const bridge = call.commands.find((c) => c.headers['execute-app-name'] === 'bridge');
      assert.ok(bridge, 'bridged without Zammad');
      assert.ok(
        bridge.at - connectReply < 300 + 400,
        `bridged ${bridge.at - connectReply} ms after the channel data (bound 300 ms + slack)`,
      );
      slow.clearFault();
      await slow.waitFor(() => slow.entry(call.uuid)?.state === 'hangup', 10_000);
      const accepted = slow
        .postsFor(call.uuid)
        .filter((p) => p.status === 200)
        .map((p) => p.params['event']);
      assert.deepEqual(accepted, ['newCall', 'answer', 'hangup']);
      assert.equal(slow.entry(call.uuid)?.hangups, 1);
    },
  );
});
