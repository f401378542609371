/**
 * The raw shed exchange (src/switch/shed.ts) over a real loopback socket: `connect`, the channel data
 * however it is cut, each way it can fail (closed, not channel data, too large, too slow), and the
 * hand-back written in one piece with `exit`, read until FreeSWITCH closes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { handBackAndGo, peekChannelData } from '../../src/switch/shed.js';

/** A connected pair: `adapter` is the accepted side (as the listener hands it over), `fs` plays FreeSWITCH. */
async function pair(): Promise<{ adapter: net.Socket; fs: net.Socket; received: () => string; close: () => void }> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const fs = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  let text = '';
  fs.on('data', (d: Buffer) => (text += d.toString('latin1')));
  fs.on('error', () => {});
  const adapter = await accepted;
  adapter.on('error', () => {});
  return {
    adapter,
    fs,
    received: () => text,
    close: () => {
      fs.destroy();
      adapter.destroy();
      server.close();
    },
  };
}

const waitFor = async (what: () => boolean) => {
  for (let i = 0; i < 200 && !what(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(what());
};

const CHANNEL_DATA =
  'Event-Name: CHANNEL_DATA\nContent-Type: command/reply\nReply-Text: %2BOK%0A\nSocket-Mode: async\n' +
  'Unique-ID: 5d1c4b2e-0001\nCaller-Destination-Number: 4930998001\nCaller-Context: public\n' +
  'variable_zammad_handled: true\n\n';
const OPTIONS = { timeoutMs: 2000, maxBytes: 4096 };

test('connect, then the channel data cut anywhere (here byte by byte): its headers, URL-decoded', async () => {
  const p = await pair();
  try {
    const peek = peekChannelData(p.adapter, OPTIONS);
    await waitFor(() => p.received() === 'connect\n\n');
    for (const byte of CHANNEL_DATA) {
      p.fs.write(byte);
      await new Promise((r) => setImmediate(r));
    }
    const result = await peek;
    assert.ok('data' in result);
    assert.equal(result.data.get('Unique-ID'), '5d1c4b2e-0001');
    assert.equal(result.data.get('Reply-Text'), '+OK\n');
    assert.equal(result.data.get('variable_zammad_handled'), 'true');
    assert.ok(!p.adapter.destroyed, 'left open for the hand-back or the call');
  } finally {
    p.close();
  }
});

test('each failure closes the connection and says why', async (t) => {
  const cases: [string, (p: Awaited<ReturnType<typeof pair>>) => void, string, Partial<typeof OPTIONS>][] = [
    ['closed before the reply', (p) => p.fs.end(), 'closed', {}],
    [
      'a reply that is not channel data',
      (p) => p.fs.write('Content-Type: command/reply\nReply-Text: +OK\n\n'),
      'not-channel-data',
      {},
    ],
    ['a reply without an end within maxBytes', (p) => p.fs.write(`X-Junk: ${'x'.repeat(5000)}\n`), 'too-large', {}],
    ['no reply in time', () => {}, 'timeout', { timeoutMs: 50 }],
  ];
  for (const [name, act, failure, options] of cases)
    await t.test(name, async () => {
      const p = await pair();
      try {
        const peek = peekChannelData(p.adapter, { ...OPTIONS, ...options });
        await waitFor(() => p.received() === 'connect\n\n');
        act(p);
        assert.deepEqual(await peek, { failure });
        await waitFor(() => p.adapter.destroyed);
      } finally {
        p.close();
      }
    });
});

test('the hand-back: transfer and exit in one write, then read until FreeSWITCH closes', async () => {
  const p = await pair();
  try {
    const chunks: string[] = [];
    p.fs.removeAllListeners('data');
    p.fs.on('data', (d: Buffer) => chunks.push(d.toString('latin1')));
    let done = false;
    const going = handBackAndGo(p.adapter).then(() => (done = true));
    await waitFor(() => chunks.join('').endsWith('exit\n\n'));
    assert.equal(
      chunks.join(''),
      'sendmsg\ncall-command: execute\nexecute-app-name: transfer\n' +
        'execute-app-arg: ${destination_number} XML ${context}\n\nexit\n\n',
    );
    assert.equal(chunks.length, 1, 'one write: the transfer is queued before the connection can end');
    // What FreeSWITCH answers is read and dropped; the connection ends when FreeSWITCH closes it.
    p.fs.write('Content-Type: command/reply\nReply-Text: +OK\n\nContent-Type: command/reply\nReply-Text: +OK bye\n\n');
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(done, false, 'not gone before FreeSWITCH closes');
    p.fs.end();
    await going;
    assert.ok(p.adapter.destroyed);
  } finally {
    p.close();
  }
});
