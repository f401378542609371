/**
 * Hostile input on the switch side (issue 4): who may connect, and what a connection may send.
 * The real program runs as a child process; attackers are raw peers (raw-switch.ts) writing
 * whatever bytes a test wants, while real calls go through the switch double beside them. Every
 * test checks that the process lives and that the calls around the attack are reported in full.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import net from 'node:net';
import { placeCall, type CallScript, type SwitchCall } from '@freeswitch-zammad-cti/sim/switch';
import { ZammadDouble } from '@freeswitch-zammad-cti/sim/zammad';
import {
  apiResponse,
  commandReply,
  connectReply,
  disconnectNotice,
  encodeEvent,
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
  openFds,
  opening,
  prng,
  uuidOf,
  waitUntil,
} from './raw-switch.js';

/** Every test ends, passed or failed: a hang is a failure, never a stuck CI run. */
const LIMIT = { timeout: 60000 };
const TOKEN = `tok-${randomUUID()}`;
let zammad: ZammadDouble;
let adapter: AdapterProcess;
const IDLE_MS = 1000;

before(async () => {
  zammad = new ZammadDouble({ token: TOKEN });
  await zammad.start();
  adapter = await startAdapter({
    ZAMMAD_CTI_URL: zammad.url,
    ESL_IDLE_TIMEOUT_MS: String(IDLE_MS),
    ESL_MAX_FRAME_BYTES: '65536',
    ZAMMAD_NEWCALL_TIMEOUT_MS: '3000',
  });
});

after(async () => {
  await adapter?.stop();
  await zammad?.stop();
});

function accepted(uuid: string): string[] {
  return zammad.acceptedWithCause(uuid);
}

function script(rest: Partial<CallScript> = {}, variables: Record<string, string> = {}): CallScript {
  return {
    channel: {
      uuid: randomUUID(),
      callerNumber: '03055571600',
      destination: '491711234567890',
      sip: true,
      variables: { zammad_users: 'Alice', zammad_bridge: 'user/2000@d', ...variables },
    },
    targets: { '2000': { kind: 'answer', ringMs: 50, talkMs: 300 } },
    ...rest,
  };
}

/** A real call beside the attack; `check` asserts it was reported in full. */
async function bystander(port = adapter.eslPort): Promise<{ call: SwitchCall; check: () => Promise<void> }> {
  const call = await placeCall({ host: '127.0.0.1', port }, script());
  return {
    call,
    check: async () => {
      await call.closed;
      await zammad.waitFor(() => accepted(call.uuid).length >= 3, 8000);
      assert.deepEqual(
        accepted(call.uuid),
        ['newCall', 'answer', 'hangup:normalClearing'],
        'the call beside the attack',
      );
      assert.deepEqual(call.bridges, ['user/2000@d']);
    },
  };
}

async function alive(a: AdapterProcess = adapter): Promise<void> {
  assert.equal(a.proc.exitCode, null, `the adapter exited; output:\n${a.output().slice(-3000)}`);
  assert.equal((await fetch(`http://127.0.0.1:${a.statusPort}/healthz`)).status, 200);
}

const errorsFor = (reason: string) => metric(adapter.statusPort, `cti_esl_connection_errors_total{reason="${reason}"}`);
const noCallsOpen = () =>
  waitUntil(
    async () => (await metric(adapter.statusPort, 'cti_calls_in_progress')) === 0,
    'cti_calls_in_progress back to 0',
  );

/** A non-loopback address of this host, if it has one. */
function externalAddress(family: 'IPv4' | 'IPv6'): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? [])
      if (a.family === family && !a.internal && !a.address.startsWith('fe80')) return a.address;
  }
  return undefined;
}

/** Whether this host can listen on ::1 (Docker without IPv6 cannot). */
function hasIPv6(): boolean {
  return Object.values(networkInterfaces()).some((list) =>
    list?.some((a) => a.family === 'IPv6' && a.address === '::1'),
  );
}

function tryConnect(host: string, port: number): Promise<'connected' | string> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

describe('who may connect', () => {
  test(
    "the event socket listens on 127.0.0.1 by default: not reachable on the host's other addresses",
    LIMIT,
    async () => {
      const listening = adapter.lines.find((l) => l.message === 'listening for FreeSWITCH');
      assert.equal(listening?.['host'], '127.0.0.1');
      assert.equal(adapter.lines.find((l) => l.message === 'status endpoints up')?.['host'], '127.0.0.1');
      const external = externalAddress('IPv4') ?? externalAddress('IPv6');
      if (external) {
        assert.equal(await tryConnect(external, adapter.eslPort), 'ECONNREFUSED', `ESL port reachable on ${external}`);
        assert.equal(
          await tryConnect(external, adapter.statusPort),
          'ECONNREFUSED',
          `status port reachable on ${external}`,
        );
      }
    },
  );

  describe('ESL_ALLOW', () => {
    let guarded: AdapterProcess;
    before(async () => {
      // 127.0.0.2 and 127.0.0.3 are loopback too (127.0.0.0/8) but not in the list: outsiders on any Linux host.
      guarded = await startAdapter({ ZAMMAD_CTI_URL: zammad.url, ESL_ALLOW: '127.0.0.1/32,198.51.100.0/24' });
    });
    after(async () => {
      await guarded?.stop();
    });

    test(
      'an address outside the list is closed at once, before a byte is written, logged and counted',
      LIMIT,
      async () => {
        const { check } = await bystander(guarded.eslPort); // from 127.0.0.1: allowed
        const outsiders = ['127.0.0.2', '127.0.0.3'];
        for (const from of outsiders) {
          const peer = await RawSwitch.connect(guarded.eslPort, '127.0.0.1', from);
          assert.notEqual(await peer.waitClosed(3000), undefined);
          assert.deepEqual(peer.commands, [], `nothing written to ${from}`);
        }
        await waitUntil(
          async () => (await metric(guarded.statusPort, 'cti_esl_rejected_connections_total')) === outsiders.length,
          `${outsiders.length} refusals counted`,
        );
        const refused = guarded.lines.filter(
          (l) => l.message === 'refused an event-socket connection from an address outside ESL_ALLOW',
        );
        assert.deepEqual(
          refused.map((l) => l['address']),
          outsiders,
        );
        await check();
        await alive(guarded);
      },
    );
  });

  describe('ESL_ALLOW on a dual-stack socket (ESL_HOST=::)', { skip: !hasIPv6() && 'this host has no IPv6' }, () => {
    let open: AdapterProcess;
    // A switch on another host: this host's own IPv6 address, when it has one, stands in for it.
    const remoteSwitch = externalAddress('IPv6');
    before(async () => {
      const allow = ['127.0.0.1/32', ...(remoteSwitch ? [`${remoteSwitch}/128`] : [])].join(',');
      open = await startAdapter({ ZAMMAD_CTI_URL: zammad.url, ESL_HOST: '::', ESL_ALLOW: allow });
    });
    after(async () => {
      await open?.stop();
    });

    test(
      'IPv4 peers arrive as ::ffff:a.b.c.d and are matched as IPv4; IPv6 peers by their own rules',
      LIMIT,
      async () => {
        const { check } = await bystander(open.eslPort); // 127.0.0.1 as ::ffff:127.0.0.1: allowed
        const outsiders = ['::1', externalAddress('IPv4')].filter((a): a is string => a !== undefined);
        for (const address of outsiders) {
          const peer = await RawSwitch.connect(open.eslPort, address);
          assert.notEqual(await peer.waitClosed(3000), undefined);
          assert.deepEqual(peer.commands, [], `nothing written to ${address}`);
        }
        await waitUntil(
          async () => (await metric(open.statusPort, 'cti_esl_rejected_connections_total')) === outsiders.length,
          `${outsiders.length} refusals counted`,
        );
        if (remoteSwitch) {
          const allowed = await RawSwitch.connect(open.eslPort, remoteSwitch);
          assert.equal((await allowed.next('connect', 5000)).name, 'connect', `${remoteSwitch} is in ESL_ALLOW`);
          allowed.end();
        }
        await check();
        await alive(open);
      },
    );
  });
});

describe('malformed input never takes the process down or disturbs other calls', () => {
  test('garbage bytes, before the handshake and in the middle of a call', LIMIT, async () => {
    const { check } = await bystander();
    const rnd = prng(4);
    const garbage = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rnd() * 256)));

    const early = await RawSwitch.connect(adapter.eslPort);
    await early.next('connect');
    early.write(garbage(3000));
    early.write('\n\n\0\0\xff\n\n: : :\n\n');
    await early.waitClosed(IDLE_MS + 8000);

    const { peer: mid, uuid } = await bridgedCall(adapter.eslPort, {
      variables: { zammad_users: 'Alice', zammad_bridge: 'user/2000@d' },
    });
    for (let i = 0; i < 20; i++) mid.write(Buffer.concat([garbage(200), Buffer.from('\n\n')]));
    mid.write(channelEvent('CHANNEL_BRIDGE', uuid, [['Other-Leg-Destination-Number', '2000']]));
    await zammad.waitFor(() => accepted(uuid).includes('answer'), 5000).catch(() => undefined);
    mid.reset();
    await zammad.waitFor(() => accepted(uuid).some((e) => e.startsWith('hangup')), 5000);
    assert.equal(accepted(uuid)[0], 'newCall');
    assert.equal(accepted(uuid).filter((e) => e.startsWith('hangup')).length, 1);
    await noCallsOpen();
    await alive();
    await check();
  });

  test('missing, negative, non-numeric and lying Content-Length', LIMIT, async () => {
    const { check } = await bystander();
    const { peer, uuid } = await bridgedCall(adapter.eslPort, {
      variables: { zammad_users: 'Alice', zammad_bridge: 'user/2000@d' },
    });
    const body = `Event-Name: CHANNEL_HANGUP_COMPLETE\nUnique-ID: ${uuid}\nHangup-Cause: CALL_REJECTED\n\n`;
    peer.write(`Content-Type: text/event-plain\n\n${body}`); // no Content-Length: the body is read as header blocks
    peer.write(`Content-Length: -5\nContent-Type: text/event-plain\n\n${body}`);
    peer.write(`Content-Length: abc\nContent-Type: text/event-plain\n\n${body}`);
    // too short: the rest is read as headers
    peer.write(`Content-Length: 3\nContent-Type: text/event-plain\n\n${body}`);
    // None of those was an event of the call: it is still ringing. Now the real end.
    peer.write(channelEvent('CHANNEL_BRIDGE', uuid, [['Other-Leg-Destination-Number', '2000']]));
    await endCall(peer, uuid);
    await zammad.waitFor(() => accepted(uuid).length >= 3, 5000);
    assert.deepEqual(accepted(uuid), ['newCall', 'answer', 'hangup:normalClearing']);
    await alive();
    await check();
  });

  test(
    'a large but complete event is read; one over ESL_MAX_FRAME_BYTES closes only its connection',
    LIMIT,
    async () => {
      const { check } = await bystander();
      const { peer, uuid } = await bridgedCall(adapter.eslPort, {
        variables: { zammad_users: 'Alice', zammad_bridge: 'user/2000@d' },
      });
      peer.write(
        channelEvent('CHANNEL_BRIDGE', uuid, [
          ['Other-Leg-Destination-Number', '2000'],
          ['variable_big', 'x'.repeat(50_000)],
        ]),
      );
      await zammad.waitFor(() => accepted(uuid).includes('answer'), 5000);
      const before = await errorsFor('frame-too-large');
      peer.write(channelEvent('CHANNEL_EXECUTE', uuid, [['variable_huge', 'y'.repeat(200_000)]]));
      await peer.waitClosed();
      await waitUntil(async () => (await errorsFor('frame-too-large')) === before + 1, 'frame-too-large counted');
      await zammad.waitFor(() => accepted(uuid).length >= 3, 5000);
      assert.deepEqual(accepted(uuid), ['newCall', 'answer', 'hangup:normalClearing']);
      await alive();
      await check();
    },
  );

  test(
    'a connect reply without Unique-ID is bridged but not reported; one without numbers is reported as anonymous',
    LIMIT,
    async () => {
      const { check } = await bystander();
      const noId = await RawSwitch.connect(adapter.eslPort);
      const withoutId = channelData({
        omit: ['Unique-ID', 'Caller-Unique-ID'],
        variables: { zammad_users: 'Alice', zammad_bridge: 'user/2000@d' },
      });
      await handshake(noId, withoutId);
      await opening(noId);
      const bridge = await noId.next('sendmsg');
      assert.equal(bridge.headers['execute-app-arg'], 'user/2000@d', 'bridged without Zammad');
      noId.write(commandReply('+OK'));
      noId.write(channelEvent('CHANNEL_HANGUP_COMPLETE', '', [['Hangup-Cause', 'NORMAL_CLEARING']]));
      await noId.next('exit');
      noId.end();
      assert.ok(adapter.lines.some((l) => /cannot report this call to Zammad \(no Unique-ID/.test(l.message)));

      const bare = channelData({
        omit: ['Caller-Caller-ID-Number', 'Caller-ANI', 'Caller-Caller-ID-Name', 'Caller-Destination-Number'],
        variables: { zammad_users: 'Alice', zammad_bridge: 'user/2000@d' },
      });
      const uuid = uuidOf(bare);
      const peer = await RawSwitch.connect(adapter.eslPort);
      await handshake(peer, bare);
      await opening(peer);
      await peer.next('sendmsg');
      peer.write(commandReply('+OK'));
      await endCall(peer, uuid, 'ORIGINATOR_CANCEL');
      await zammad.waitFor(() => accepted(uuid).length >= 2, 5000);
      assert.deepEqual(accepted(uuid), ['newCall', 'hangup:cancel']);
      assert.equal(zammad.postsFor(uuid)[0]?.params['from'], 'anonymous');
      await noCallsOpen();
      await alive();
      await check();
    },
  );

  test(
    'a reply to connect that is not channel data is closed at once, not left open until the idle timeout',
    LIMIT,
    async () => {
      const slow = await startAdapter({ ZAMMAD_CTI_URL: zammad.url, ESL_IDLE_TIMEOUT_MS: '60000' });
      try {
        const peer = await RawSwitch.connect(slow.eslPort);
        await peer.next('connect');
        peer.write(commandReply('+OK'));
        assert.equal(await peer.waitClosed(5000), 'end');
        await waitUntil(
          async () =>
            (await metric(slow.statusPort, 'cti_esl_connection_errors_total{reason="malformed-frame"}')) === 1,
          'counted as malformed',
        );
        assert.equal(await metric(slow.statusPort, 'cti_calls_in_progress'), 0);
      } finally {
        await slow.stop();
      }
    },
  );

  test(
    'a switch that refuses the subscription (-ERR to myevents json): closed at once with the reason logged, ' +
      'nothing posted',
    LIMIT,
    async () => {
      const headers = channelData({ variables: { zammad_users: 'Alice', zammad_bridge: 'user/2000@d' } });
      const peer = await RawSwitch.connect(adapter.eslPort);
      await peer.next('connect');
      peer.write(connectReply(headers));
      await peer.next('myevents');
      peer.write(commandReply('-ERR no way'));
      assert.equal(await peer.waitClosed(5000), 'end');
      await adapter.waitForLog(
        (l) =>
          /ended before the call could be followed/.test(l.message) &&
          String(l['detail']).includes('refused "myevents json": -ERR no way'),
        3000,
      );
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(zammad.postsFor(uuidOf(headers)), []);
      await noCallsOpen();
      await alive();
    },
  );

  test('unknown event types, names that mean something to modesl, events for another channel', LIMIT, async () => {
    const { call: other, check } = await bystander();
    const { peer, uuid } = await bridgedCall(adapter.eslPort, {
      variables: { zammad_users: 'Alice', zammad_bridge: 'user/2000@d' },
    });
    for (const name of [
      'HEARTBEAT',
      'CUSTOM',
      'NO_SUCH_EVENT',
      '',
      '*',
      '**',
      '__proto__',
      'constructor',
      'command::reply',
      'auth::request',
      'CHANNEL_DATA',
    ]) {
      peer.write(
        encodeEvent([
          ['Event-Name', name],
          ['Unique-ID', uuid],
          ['Event-Subclass', 'sofia::register'],
          ['Hangup-Cause', 'USER_BUSY'],
        ]),
      );
      peer.write(
        encodeEvent(
          [
            ['Event-Name', name],
            ['Unique-ID', uuid],
          ],
          'json',
        ),
      );
    }
    for (const type of ['text/unknown', 'log/data', 'auth/request', 'api/response', '*', 'text/disconnect-notice']) {
      peer.write(`Content-Type: ${type}\nContent-Length: 2\n\nok`);
    }
    // The other call's events, on this connection: they belong to nobody here.
    peer.write(channelEvent('CHANNEL_BRIDGE', other.uuid, [['Other-Leg-Destination-Number', '9999']]));
    peer.write(channelEvent('CHANNEL_HANGUP_COMPLETE', other.uuid, [['Hangup-Cause', 'CALL_REJECTED']]));
    peer.write(channelEvent('CHANNEL_HANGUP_COMPLETE', randomUUID(), [['Hangup-Cause', 'CALL_REJECTED']]));
    await check(); // the other call: unaffected
    assert.deepEqual(accepted(uuid), ['newCall'], 'this call: still ringing');
    assert.ok(!peer.commands.some((c) => c.name === 'auth'), 'no "auth undefined" answer to a fake auth/request');
    peer.write(channelEvent('CHANNEL_BRIDGE', uuid, [['Other-Leg-Destination-Number', '2000']]));
    await endCall(peer, uuid);
    await zammad.waitFor(() => accepted(uuid).length >= 3, 5000);
    assert.deepEqual(accepted(uuid), ['newCall', 'answer', 'hangup:normalClearing']);
    await alive();
  });

  test(
    'a peer that connects and says nothing, or never finishes its channel data, is closed after ESL_IDLE_TIMEOUT_MS',
    LIMIT,
    async () => {
      const before = await errorsFor('handshake-timeout');
      const silent = await RawSwitch.connect(adapter.eslPort);
      const slowloris = await RawSwitch.connect(adapter.eslPort);
      await slowloris.next('connect');
      const partial = connectReply(channelData());
      slowloris.write(partial.slice(0, 200));
      const dripping = setInterval(() => slowloris.write('X'), 100);
      try {
        await silent.waitClosed(IDLE_MS + 8000);
        await slowloris.waitClosed(IDLE_MS + 8000);
      } finally {
        clearInterval(dripping);
      }
      await waitUntil(
        async () => (await errorsFor('handshake-timeout')) === before + 2,
        'two handshake timeouts counted',
      );
      await noCallsOpen();
      await alive();
    },
  );

  test(
    'a TCP reset in every phase of a call: each call is closed once in Zammad, nothing stays open',
    LIMIT,
    async () => {
      const { check } = await bystander();
      /** `last`: the reset follows this step. */
      type Step = (p: RawSwitch, uuid: string, last: boolean) => Promise<void>;
      const steps: [phase: string, step: Step][] = [
        ['connected', async () => {}],
        ['connect received', async (p) => void (await p.next('connect'))],
        [
          'channel data sent',
          async (p, uuid) => {
            // A gateway target: no directory look-up of who answered (this peer answers no `api`).
            p.write(
              connectReply(
                channelData({
                  uuid,
                  variables: { zammad_users: 'Alice', zammad_bridge: 'sofia/gateway/carrier/2000' },
                }),
              ),
            );
            await p.next('myevents');
          },
        ],
        [
          'subscribed (myevents json), linger waiting',
          async (p) => {
            p.write(commandReply('+OK Events Enabled'));
            await p.next('linger');
          },
        ],
        [
          'Zammad deciding',
          async (p, uuid, last) => {
            if (last) zammad.setFault({ kind: 'delay', ms: 1500 }, { times: 1, events: ['newCall'] });
            p.write(commandReply('+OK will linger'));
            await zammad.waitFor(() => zammad.postsFor(uuid).length > 0, 5000);
          },
        ],
        [
          'ringing',
          async (p, uuid) => {
            await p.next('sendmsg', 6000);
            p.write(commandReply('+OK'));
            p.write(channelEvent('CHANNEL_EXECUTE', uuid, [['Application', 'bridge']]));
            p.write(channelEvent('CHANNEL_PROGRESS', uuid));
          },
        ],
        [
          'answered',
          async (p, uuid) => {
            p.write(channelEvent('CHANNEL_ANSWER', uuid));
            p.write(channelEvent('CHANNEL_BRIDGE', uuid, [['Other-Leg-Destination-Number', '2000']]));
            await zammad.waitFor(() => accepted(uuid).includes('answer'), 5000);
          },
        ],
        [
          'channel down',
          async (p, uuid) => {
            p.write(channelEvent('CHANNEL_UNBRIDGE', uuid));
            p.write(channelEvent('CHANNEL_HANGUP', uuid, [['Hangup-Cause', 'NORMAL_CLEARING']]));
          },
        ],
        [
          'hangup complete, exit waiting',
          async (p, uuid) => {
            p.write(channelEvent('CHANNEL_HANGUP_COMPLETE', uuid, [['Hangup-Cause', 'NORMAL_CLEARING']]));
            await p.next('exit');
          },
        ],
        [
          'goodbye sent',
          async (p, uuid) => {
            p.write(commandReply('+OK bye'));
            p.write(disconnectNotice(uuid, GOODBYE));
          },
        ],
      ];
      const expected = (phase: number): string[] =>
        phase <= 2 ? [] : phase <= 5 ? ['newCall', 'hangup:cancel'] : ['newCall', 'answer', 'hangup:normalClearing'];
      const resetsBefore = await errorsFor('reset');
      for (let phase = 0; phase < steps.length; phase++) {
        const uuid = randomUUID();
        const peer = await RawSwitch.connect(adapter.eslPort);
        for (let i = 0; i <= phase; i++) await steps[i]?.[1](peer, uuid, i === phase);
        peer.reset();
        const want = expected(phase);
        await zammad.waitFor(() => accepted(uuid).length >= want.length, 6000);
        await noCallsOpen();
        assert.deepEqual(accepted(uuid), want, `reset after: ${steps[phase]?.[0]}`);
      }
      zammad.clearFault();
      // Give a stray second hangup the time to show up.
      await new Promise((r) => setTimeout(r, 200));
      for (const p of zammad.posts) assert.notEqual(p.status, 500, `Zammad refused ${p.event} of ${p.callId}`);
      assert.ok((await errorsFor('reset')) > resetsBefore, 'resets seen as resets');
      await alive();
      await check();
    },
  );

  test('thousands of connections opened and dropped: nothing left behind, calls still work', LIMIT, async () => {
    const pid = adapter.proc.pid as number;
    await noCallsOpen();
    const fdsBefore = openFds(pid);
    const rnd = prng(7);
    let opened = 0;
    for (let batch = 0; batch < 10; batch++) {
      await Promise.all(
        Array.from({ length: 200 }, async () => {
          const peer = await RawSwitch.connect(adapter.eslPort).catch(() => undefined);
          if (!peer) return;
          opened++;
          const r = rnd();
          if (r < 0.3) peer.reset();
          else if (r < 0.6) peer.end();
          else if (r < 0.8) {
            peer.write('Content-Type: command/re');
            peer.reset();
          } else {
            await peer.next('connect', 5000).catch(() => undefined);
            peer.write(connectReply(channelData()).slice(0, 300));
            peer.end();
          }
          await peer.closed;
        }),
      );
    }
    assert.ok(opened >= 1900, `opened ${opened} connections`);
    await noCallsOpen();
    await waitUntil(() => openFds(pid) <= fdsBefore + 10, `descriptors back near ${fdsBefore} (now ${openFds(pid)})`);
    await alive();
    const { check } = await bystander();
    await check();
  });
});

describe('nothing that came from the channel, the directory or Zammad can inject a switch command', () => {
  test('a zammad_bridge with line breaks is not sent: the caller is hung up, Zammad gets the call', LIMIT, async () => {
    const injected = 'user/2000@d\n\napi system touch /tmp/cti-pwned\n\nsendmsg\ncall-command: hangup';
    const call = await placeCall({ host: '127.0.0.1', port: adapter.eslPort }, script({}, { zammad_bridge: injected }));
    await waitUntil(() => call.hangupCause !== null, 'the adapter hangs the caller up', 10_000);
    await call.closed;
    const sent = call.commands.map((c) => c.raw);
    assert.ok(
      !sent.some((raw) => /system|pwned/.test(raw)),
      `injected command reached the switch: ${JSON.stringify(sent)}`,
    );
    assert.deepEqual(call.bridges, [], 'never bridged');
    assert.equal(call.hangupCause, 'NORMAL_TEMPORARY_FAILURE', 'the caller is not left in silence');
    await zammad.waitFor(() => accepted(call.uuid).length >= 2, 5000);
    assert.equal(accepted(call.uuid)[0], 'newCall');
    assert.equal(accepted(call.uuid).filter((e) => e.startsWith('hangup')).length, 1);
    assert.ok(
      adapter.lines.some(
        (l) => l.level === 'error' && /execute-app-arg.*line break/.test(l.message) && l['callId'] === call.uuid,
      ),
      'one clear error line',
    );
  });

  test('a directory name with line breaks or control characters is never used', LIMIT, async () => {
    const headers = channelData({ variables: { zammad_bridge: 'user/2003@pbx.example' } });
    const uuid = uuidOf(headers);
    const peer = await RawSwitch.connect(adapter.eslPort);
    await handshake(peer, headers);
    await opening(peer);
    await peer.next('api');
    peer.write(apiResponse('Alice\nContent-Type: command/reply\nReply-Text: +OK\n\n'));
    const bridge = await peer.next('sendmsg');
    assert.equal(bridge.headers['execute-app-arg'], 'user/2003@pbx.example');
    peer.write(commandReply('+OK'));
    await endCall(peer, uuid, 'ORIGINATOR_CANCEL');
    await zammad.waitFor(() => accepted(uuid).length >= 2, 5000);
    assert.deepEqual(zammad.postsFor(uuid)[0]?.params['user'], ['2003'], 'the number instead of the broken name');
    await alive();
  });
});
