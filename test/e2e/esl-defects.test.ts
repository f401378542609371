/**
 * Regression tests for modesl's known defects, each contained in src/switch/esl-connection.ts
 * (README, "The ESL library"). Every test fails when its containment is taken out:
 *  1. reset without an 'error' listener crashes   → EslConnection listens on the socket's 'error'
 *  2. a reset connection is never cleaned up        → teardown on the socket's 'close'
 *  3. pending command callbacks never fire          → our promises, rejected at teardown
 *  4. a raw '%' throws in the data handler          → FreeSWITCH's decoding (esl-frames.ts urlDecode)
 *                                                     + the guard around reading (try/catch in feed)
 *  5. no `linger`                                   → the session sends it; a switch that does
 *                                                     not linger is handled (disconnect notice)
 *  6. unbounded buffering                           → the byte counter (ESL_MAX_FRAME_BYTES)
 * The real program runs as a child process; the switch is a raw peer (raw-switch.ts) where a
 * phase has to be hit exactly, else the switch double.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { placeCall, type CallScript, type SwitchCall } from '@freeswitch-zammad-cti/sim/switch';
import { ZammadDouble } from '@freeswitch-zammad-cti/sim/zammad';
import {
  apiResponse,
  commandReply,
  connectReply,
  disconnectNotice,
  GOODBYE,
} from '@freeswitch-zammad-cti/sim/esl-wire';
import { startAdapter, type AdapterProcess } from './adapter-process.js';
import {
  RawSwitch,
  bridgedCall,
  channelData,
  channelEvent,
  endCall,
  handshake,
  metric,
  opening,
  uuidOf,
  waitUntil,
} from './raw-switch.js';

/** Every test ends, passed or failed: a hang is a failure, never a stuck CI run. */
const LIMIT = { timeout: 60000 };
const TOKEN = `tok-${randomUUID()}`;
let zammad: ZammadDouble;
let adapter: AdapterProcess;

before(async () => {
  zammad = new ZammadDouble({ token: TOKEN });
  await zammad.start();
  adapter = await startAdapter({
    ZAMMAD_CTI_URL: zammad.url,
    ESL_MAX_FRAME_BYTES: '65536',
    ESL_IDLE_TIMEOUT_MS: '20000',
  });
});

after(async () => {
  await adapter?.stop();
  await zammad?.stop();
});

/** What Zammad accepted for a call: "event" or "event:cause". */
function accepted(z: ZammadDouble, uuid: string): string[] {
  return z.acceptedWithCause(uuid);
}

function script(channel: Partial<CallScript['channel']> = {}, rest: Partial<CallScript> = {}): CallScript {
  return {
    channel: {
      uuid: randomUUID(),
      callerNumber: '03055571600',
      destination: '491711234567890',
      sip: true,
      variables: { zammad_users: 'Alice', zammad_bridge: 'user/2000@d' },
      ...channel,
    },
    targets: { '2000': { kind: 'answer', ringMs: 20, talkMs: 150 } },
    ...rest,
  };
}

/** A call through the switch double, running while a test attacks another connection. */
async function concurrentCall(port: number): Promise<{ call: SwitchCall; check: () => Promise<void> }> {
  const call = await placeCall(
    { host: '127.0.0.1', port },
    script({}, { targets: { '2000': { kind: 'answer', ringMs: 50, talkMs: 400 } } }),
  );
  return {
    call,
    check: async () => {
      await call.closed;
      await zammad.waitFor(() => accepted(zammad, call.uuid).length >= 3, 8000);
      assert.deepEqual(
        accepted(zammad, call.uuid),
        ['newCall', 'answer', 'hangup:normalClearing'],
        'the concurrent call is reported in full',
      );
    },
  };
}

const alive = async (a: AdapterProcess) => {
  assert.equal(a.proc.exitCode, null, `the adapter exited; output:\n${a.output().slice(-3000)}`);
  const res = await fetch(`http://127.0.0.1:${a.statusPort}/healthz`);
  assert.equal(res.status, 200);
};

describe('modesl defects, contained', () => {
  test(
    '1. a peer that resets the connection does not crash the process (no error event without a listener)',
    LIMIT,
    async () => {
      const before = await metric(adapter.statusPort, 'cti_esl_connection_errors_total{reason="reset"}');
      const { check } = await concurrentCall(adapter.eslPort);

      // Reset right after modesl's `connect`, after the channel data, and while `linger` waits.
      const early = await RawSwitch.connect(adapter.eslPort);
      await early.next('connect');
      early.reset();

      const afterData = await RawSwitch.connect(adapter.eslPort);
      await afterData.next('connect');
      afterData.write(connectReply(channelData()));
      await afterData.next('myevents');
      afterData.reset();

      const waiting = await RawSwitch.connect(adapter.eslPort);
      await handshake(waiting, channelData());
      await waiting.next('linger');
      waiting.reset();

      // The adapter saw three resets (a socket 'error' each, which nobody but EslConnection listens to).
      await waitUntil(
        async () => (await metric(adapter.statusPort, 'cti_esl_connection_errors_total{reason="reset"}')) >= before + 3,
        'three resets counted',
      );
      await alive(adapter);
      await check();
    },
  );

  test(
    '2. a reset connection (close without end) is cleaned up: cti_calls_in_progress returns to 0, the call is reported',
    LIMIT,
    async () => {
      const headers = channelData({ variables: { zammad_users: 'Alice', zammad_bridge: 'user/2000@d' } });
      const uuid = uuidOf(headers);
      const peer = await RawSwitch.connect(adapter.eslPort);
      await handshake(peer, headers);
      await opening(peer);
      await peer.next('sendmsg'); // the bridge: the call is ringing
      await zammad.waitFor(() => accepted(zammad, uuid).includes('newCall'), 5000);
      assert.ok((await metric(adapter.statusPort, 'cti_calls_in_progress')) >= 1);

      peer.reset();
      await waitUntil(
        async () => (await metric(adapter.statusPort, 'cti_calls_in_progress')) === 0,
        'cti_calls_in_progress back to 0 after the reset',
      );
      await zammad.waitFor(() => accepted(zammad, uuid).length >= 2, 5000);
      assert.deepEqual(accepted(zammad, uuid), ['newCall', 'hangup:cancel']);
      await alive(adapter);
    },
  );

  test(
    '4a. a raw % or an escape that is not UTF-8 in a header value: read as FreeSWITCH reads it, the call goes on',
    LIMIT,
    async () => {
      // switch_url_encode() leaves "%" + two upper-case hex digits as it is, so a caller named
      // "Mo%FCller" arrives as "Mo%FCller" (decodeURIComponent throws on it). The other two are
      // what a broken peer could send: a '%' at the end, '%zz'.
      const uuid = randomUUID();
      const frame = connectReply(
        channelData({ uuid, callerName: 'NAME', variables: { zammad_users: 'USERS', zammad_bridge: 'user/2000@d' } }),
      )
        .replace('Caller-Caller-ID-Name: NAME\n', 'Caller-Caller-ID-Name: Mo%FCller\n')
        .replace('variable_zammad_users: USERS\n', 'variable_zammad_users: Agent 100%zz %\n');
      assert.match(frame, /Mo%FCller/);
      const peer = await RawSwitch.connect(adapter.eslPort);
      await handshake(peer, frame);
      await opening(peer);
      const bridge = await peer.next('sendmsg');
      assert.equal(bridge.headers['execute-app-arg'], 'user/2000@d');
      peer.write(commandReply('+OK'));
      peer.write(
        channelEvent('CHANNEL_BRIDGE', uuid, [
          ['Other-Leg-Destination-Number', '2000'],
          ['variable_sip_from_display', 'Bj%F6rn 50%'],
        ]),
      );
      peer.write(channelEvent('CHANNEL_UNBRIDGE', uuid, [['variable_x', '%E2%82']]));
      await endCall(peer, uuid);

      await zammad.waitFor(() => accepted(zammad, uuid).length >= 3, 5000);
      assert.deepEqual(accepted(zammad, uuid), ['newCall', 'answer', 'hangup:normalClearing']);
      assert.deepEqual(zammad.postsFor(uuid)[0]?.params['user'], ['Agent 100%zz %']);
      await alive(adapter);
    },
  );

  test(
    '4b. a frame that makes the reader throw (a broken XML event) closes only that connection; ' +
      'a concurrent call is reported correctly',
    LIMIT,
    async () => {
      const before = await metric(adapter.statusPort, 'cti_esl_connection_errors_total{reason="malformed-frame"}');
      const { check } = await concurrentCall(adapter.eslPort);
      const { peer, uuid } = await bridgedCall(adapter.eslPort, {
        variables: { zammad_users: 'Alice', zammad_bridge: 'user/2000@d' },
      });
      // modesl's XML reading (Parser._parseXmlBody) throws a TypeError on a body without <headers>.
      const xml = '<event><nothing/></event>';
      peer.write(`Content-Length: ${xml.length}\nContent-Type: text/event-xml\n\n${xml}`);
      await peer.waitClosed();

      await waitUntil(
        async () =>
          (await metric(adapter.statusPort, 'cti_esl_connection_errors_total{reason="malformed-frame"}')) >= before + 1,
        'the malformed frame counted',
      );
      await zammad.waitFor(() => accepted(zammad, uuid).length >= 2, 5000);
      assert.deepEqual(
        accepted(zammad, uuid),
        ['newCall', 'hangup:cancel'],
        'the broken call is still closed in Zammad',
      );
      await alive(adapter);
      await check();
    },
  );

  test('5. `linger` is sent; the disconnect notice of a switch that does not linger is handled', LIMIT, async () => {
    // With linger (the switch double, as FreeSWITCH 1.10): the hangup events after the channel went down arrive.
    const call = await placeCall({ host: '127.0.0.1', port: adapter.eslPort }, script());
    await call.closed;
    assert.ok(
      call.commands.some((c) => c.name === 'linger'),
      'linger sent',
    );
    assert.ok(call.eventsSent.includes('disconnect-notice:linger'));
    await zammad.waitFor(() => accepted(zammad, call.uuid).length >= 3, 5000);
    assert.deepEqual(accepted(zammad, call.uuid), ['newCall', 'answer', 'hangup:normalClearing']);

    // A switch that does not linger (answered-normal-nolinger.txt): the "disconnect" notice and the
    // close come right after CHANNEL_HANGUP; CHANNEL_HANGUP_COMPLETE is lost.
    const errorsBefore = await metrics5();
    const headers = channelData({ variables: { zammad_users: 'Alice', zammad_bridge: 'user/2000@d' } });
    const uuid = uuidOf(headers);
    const peer = await RawSwitch.connect(adapter.eslPort);
    await handshake(peer, headers);
    await peer.next('linger');
    peer.write(commandReply('-ERR command not found'));
    await peer.next('sendmsg');
    peer.write(commandReply('+OK'));
    peer.write(channelEvent('CHANNEL_BRIDGE', uuid, [['Other-Leg-Destination-Number', '2000']]));
    peer.write(channelEvent('CHANNEL_HANGUP', uuid, [['Hangup-Cause', 'NORMAL_CLEARING']]));
    peer.write(disconnectNotice(uuid, GOODBYE));
    peer.end();
    await peer.closed;
    await zammad.waitFor(() => accepted(zammad, uuid).length >= 3, 5000);
    assert.deepEqual(accepted(zammad, uuid), ['newCall', 'answer', 'hangup:normalClearing']);
    await waitUntil(
      async () => (await metric(adapter.statusPort, 'cti_calls_in_progress')) === 0,
      'connection cleaned up',
    );
    assert.equal(await metrics5(), errorsBefore, 'a switch closing after its disconnect notice is not an error');
    await alive(adapter);
  });

  test(
    '6. buffering is bounded: more than ESL_MAX_FRAME_BYTES without a complete message closes that connection',
    LIMIT,
    async () => {
      const before = await metric(adapter.statusPort, 'cti_esl_connection_errors_total{reason="frame-too-large"}');
      const { check } = await concurrentCall(adapter.eslPort);

      // A header block that never ends, before the handshake.
      const endless = await RawSwitch.connect(adapter.eslPort);
      await endless.next('connect');
      const line = Buffer.from(`X-Filler: ${'a'.repeat(1000)}\n`);
      for (let i = 0; i < 200 && !endless.isClosed; i++) {
        endless.write(line);
        if (i % 20 === 0) await new Promise((r) => setImmediate(r));
      }
      await endless.waitClosed();

      // A lying Content-Length in the middle of a call: a body that is never complete.
      const { peer: liar, uuid } = await bridgedCall(adapter.eslPort, {
        variables: { zammad_users: 'Alice', zammad_bridge: 'user/2000@d' },
      });
      liar.write('Content-Length: 999999999\nContent-Type: text/event-plain\n\n');
      const chunk = Buffer.alloc(16 * 1024, 0x41);
      for (let i = 0; i < 40 && !liar.isClosed; i++) {
        liar.write(chunk);
        await new Promise((r) => setImmediate(r));
      }
      await liar.waitClosed();

      await waitUntil(
        async () =>
          (await metric(adapter.statusPort, 'cti_esl_connection_errors_total{reason="frame-too-large"}')) >= before + 2,
        'both connections closed for frame-too-large',
      );
      await zammad.waitFor(() => accepted(zammad, uuid).length >= 2, 5000);
      assert.deepEqual(accepted(zammad, uuid), ['newCall', 'hangup:cancel']);
      assert.ok(
        adapter.lines.some((l) => l['reason'] === 'frame-too-large'),
        'logged with its reason',
      );
      await alive(adapter);
      await check();
    },
  );
});

/** Every esl connection error counted so far, whatever the reason. */
async function metrics5(): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${adapter.statusPort}/metrics`);
  const text = await res.text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('cti_esl_connection_errors_total{'))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

describe('modesl defects, contained: pending commands', () => {
  let own: AdapterProcess;
  before(async () => {
    own = await startAdapter({ ZAMMAD_CTI_URL: zammad.url, SHUTDOWN_DRAIN_MS: '2000' });
  });
  after(async () => {
    await own?.stop('SIGKILL');
  });

  test(
    '3. pending commands are settled when the socket goes away: the call is reported, and the adapter can still stop',
    LIMIT,
    async () => {
      // Reset while the adapter waits for `api user_data` (the directory name of a group-ring target).
      const headers = channelData({ variables: { zammad_bridge: 'user/2003@pbx.example' } });
      const uuid = uuidOf(headers);
      const peer = await RawSwitch.connect(own.eslPort);
      await handshake(peer, headers);
      await opening(peer);
      const api = await peer.next('api');
      assert.match(api.line, /^api user_data 2003@pbx\.example var effective_caller_id_name$/);
      peer.reset();
      await zammad.waitFor(() => accepted(zammad, uuid).length >= 2, 5000);
      assert.deepEqual(accepted(zammad, uuid), ['newCall', 'hangup:cancel']);

      // Reset while `linger` waits for its reply: the session's own wait must end too.
      const second = channelData({ variables: { zammad_users: 'Alice' } });
      const waiting = await RawSwitch.connect(own.eslPort);
      await handshake(waiting, second);
      await waiting.next('linger');
      waiting.reset();
      await zammad.waitFor(() => accepted(zammad, uuidOf(second)).length >= 2, 5000);
      assert.deepEqual(accepted(zammad, uuidOf(second)), ['newCall', 'hangup:cancel']);

      // A late reply to a command of a connection that is gone is not an error either.
      const late = await RawSwitch.connect(own.eslPort);
      await handshake(late, channelData({ variables: { zammad_bridge: 'user/2004@pbx.example' } }));
      await opening(late);
      await late.next('api');
      late.write(apiResponse('Bob\n'));
      late.reset();

      // SIGTERM waits for every call session; one stuck on a command that never settles would hold it for ever.
      const exited = own.stop('SIGTERM');
      const code = await Promise.race([
        exited,
        new Promise<string>((r) => setTimeout(r, 15_000, 'still running 15 s after SIGTERM')),
      ]);
      assert.equal(code, 0, `exit after SIGTERM; output:\n${own.output().slice(-2000)}`);
      assert.ok(own.lines.some((l) => l.message === 'stopped'));
    },
  );
});
