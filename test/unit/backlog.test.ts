/**
 * The connections the kernel holds for a listening port (src/switch/backlog.ts): read from
 * /proc/net/tcp's listening lines, which come first; and on Linux the real kernel's count.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AcceptQueue, listenQueue } from '../../src/switch/backlog.js';

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
const line = (sl: number, local: string, st: string, queues: string) =>
  `  ${sl}: ${local} 00000000:0000 ${st} ${queues} 00:00000000 00000000     0        0 6644214 1 0000 100 0 0 10 0\n`;

test('the listening socket of the port: its rx_queue, in hex; the other ports and states are not counted', () => {
  const text =
    HEADER +
    line(0, '0100007F:13E2', '0A', '00000000:00000000') +
    line(1, '0100007F:1F94', '0A', '000001FF:0000002A') + // port 8084: 42 waiting, backlog 511
    line(2, '00000000:1F94', '0A', '000001FF:00000003') + // the same port on another address
    line(3, '0100007F:1F94', '01', '00000000:00000010'); // an established connection of the port
  assert.deepEqual(listenQueue(text, 8084), { queued: 45, found: true, past: true });
  assert.deepEqual(listenQueue(text, 8085), { queued: 0, found: false, past: true });
});

test('a read that stops inside the listening lines is not final; a line cut in two is read on', () => {
  const full = HEADER + line(0, '0100007F:1F94', '0A', '000001FF:00000007');
  assert.deepEqual(listenQueue(full, 8084), { queued: 7, found: true, past: false });
  assert.deepEqual(listenQueue(full.slice(0, full.length - 20), 8084), { queued: 0, found: false, past: false });
});

test('on Linux, connections the process has not accepted yet are counted, from the real kernel', {
  skip: process.platform !== 'linux',
}, async () => {
  const server = net.createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    assert.equal(new AcceptQueue(port, false).read(), 0);
    // spawnSync blocks this process's event loop: the child's 5 connections stay in the kernel's
    // queue while the child reads it through AcceptQueue.
    const backlog = fileURLToPath(new URL('../../src/switch/backlog.ts', import.meta.url));
    const script =
      `import net from 'node:net'; import { AcceptQueue } from ${JSON.stringify(backlog)};` +
      `const s = Array.from({ length: 5 }, () => net.connect(${port}, '127.0.0.1'));` +
      `await Promise.all(s.map((c) => new Promise((r) => c.once('connect', r))));` +
      `console.log(new AcceptQueue(${port}, false).read()); process.exit(0);`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(r.stdout.trim(), '5', r.stderr);
  } finally {
    server.close();
  }
});

test('an unknown port is not known, not zero', { skip: process.platform !== 'linux' }, () => {
  assert.equal(new AcceptQueue(1, false).read(), undefined);
});
