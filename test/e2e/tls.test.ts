/**
 * TLS to Zammad (issue 4): certificates are verified by default; a private CA is added with
 * Node's standard NODE_EXTRA_CA_CERTS (README, "Security"). A CA and server certificates are made
 * at test time with openssl; an https front (node:tls) passes the decrypted bytes on to the
 * Zammad double, so that what reaches "Zammad" is exactly what got through TLS.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import { randomUUID } from 'node:crypto';
import { placeCall, type CallScript } from '@freeswitch-zammad-cti/sim/switch';
import { ZammadDouble } from '@freeswitch-zammad-cti/sim/zammad';
import { startAdapter, tempOutbox, type AdapterProcess } from './adapter-process.js';
import { metric, waitUntil } from './raw-switch.js';

const LIMIT = { timeout: 60_000 };
const TOKEN = `tok-${randomUUID()}`;
const dir = mkdtempSync(join(tmpdir(), 'cti-tls-'));
const file = (name: string) => join(dir, name);

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA, and a server certificate it signed for `names` (subjectAltName), e.g. DNS:localhost,IP:127.0.0.1. */
function makeCertificates(): void {
  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=cti test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  for (const [name, san] of [
    ['zammad', 'DNS:localhost,IP:127.0.0.1'],
    ['other', 'DNS:other.example'],
  ] as const) {
    openssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${name}`,
    );
    writeFileSync(
      file(`${name}.ext`),
      `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n`,
    );
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
    );
  }
}

/** An https front for the double: TLS with `cert`, the plain bytes passed on to the double's port. */
async function httpsFront(
  cert: string,
  upstreamPort: number,
): Promise<{ port: number; refusals: () => number; close: () => void }> {
  let refusals = 0;
  const sockets = new Set<net.Socket>();
  const server = tls.createServer(
    { key: readFileSync(file(`${cert}.key`)), cert: readFileSync(file(`${cert}.pem`)) },
    (clear) => {
      const up = net.connect({ host: '127.0.0.1', port: upstreamPort });
      for (const s of [clear, up]) {
        sockets.add(s);
        s.on('error', () => {
          clear.destroy();
          up.destroy();
        });
        s.on('close', () => sockets.delete(s));
      }
      clear.pipe(up).pipe(clear);
    },
  );
  server.on('tlsClientError', () => refusals++); // the adapter refusing our certificate (its TLS alert)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    refusals: () => refusals,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

function inbound(): CallScript {
  return {
    channel: {
      uuid: randomUUID(),
      callerNumber: '03055571600',
      destination: '491711234567890',
      sip: true,
      variables: { zammad_users: 'Alice', zammad_bridge: 'sofia/gateway/carrier/2000' },
    },
    targets: { '2000': { kind: 'answer', ringMs: 20, talkMs: 60 } },
  };
}

const FAST = {
  ZAMMAD_NEWCALL_TIMEOUT_MS: '800',
  ZAMMAD_REQUEST_TIMEOUT_MS: '2000',
  RETRY_BASE_MS: '50',
  RETRY_MAX_MS: '300',
  SHUTDOWN_DRAIN_MS: '500',
};

describe('TLS to Zammad', () => {
  let zammad: ZammadDouble;
  let good: Awaited<ReturnType<typeof httpsFront>>;
  let wrongName: Awaited<ReturnType<typeof httpsFront>>;
  const running: AdapterProcess[] = [];
  const start = async (env: Record<string, string>) => {
    const a = await startAdapter({ ...FAST, ...env });
    running.push(a);
    return a;
  };

  before(async () => {
    makeCertificates();
    zammad = new ZammadDouble({ token: TOKEN });
    await zammad.start();
    const upstream = Number(new URL(zammad.baseUrl).port);
    good = await httpsFront('zammad', upstream);
    wrongName = await httpsFront('other', upstream);
  });
  after(async () => {
    for (const a of running) await a.stop('SIGKILL');
    good?.close();
    wrongName?.close();
    await zammad?.stop();
  });

  const url = (port: number, host = 'localhost') => `https://${host}:${port}/api/v1/cti/${TOKEN}`;

  test(
    'a certificate from a CA Node does not know is refused: events stay queued, one clear line; ' +
      'with NODE_EXTRA_CA_CERTS they are delivered',
    LIMIT,
    async () => {
      const outbox = tempOutbox();
      const refusing = await start({ ZAMMAD_CTI_URL: url(good.port), OUTBOX_PATH: outbox });
      const call = await placeCall({ host: '127.0.0.1', port: refusing.eslPort }, inbound());
      await call.closed;
      assert.equal(call.bridges.length, 1, 'the call goes on');
      await waitUntil(
        async () => (await metric(refusing.statusPort, 'cti_outbox_events{endpoint="default"}')) === 3,
        'newCall, answer, hangup queued',
      );
      const line = await refusing.waitForLog((l) => l['callId'] === call.uuid && /retried/.test(l.message));
      assert.match(String(line['reason']), /TLS certificate was refused.*NODE_EXTRA_CA_CERTS/);
      assert.ok(good.refusals() >= 1, 'the adapter tried, and refused the certificate');
      assert.equal(zammad.postsFor(call.uuid).length, 0, 'not a byte of a request (nor the token) went through');
      assert.equal((await fetch(`http://127.0.0.1:${refusing.statusPort}/readyz`)).status, 503);
      assert.equal(await refusing.stop(), 0);

      // The same outbox, now with the CA: what waited is delivered, and new calls go through.
      const trusting = await start({
        ZAMMAD_CTI_URL: url(good.port),
        OUTBOX_PATH: outbox,
        NODE_EXTRA_CA_CERTS: file('ca.pem'),
      });
      await zammad.waitFor((z) => z.entry(call.uuid)?.state === 'hangup', 10_000);
      assert.deepEqual(zammad.acceptedEvents(call.uuid), ['newCall', 'answer', 'hangup']);
      const next = await placeCall({ host: '127.0.0.1', port: trusting.eslPort }, inbound());
      await next.closed;
      await zammad.waitFor((z) => z.entry(next.uuid)?.state === 'hangup', 10_000);
      assert.deepEqual(zammad.acceptedEvents(next.uuid), ['newCall', 'answer', 'hangup']);
    },
  );

  test('a trusted certificate for another host name is refused', LIMIT, async () => {
    const a = await start({ ZAMMAD_CTI_URL: url(wrongName.port), NODE_EXTRA_CA_CERTS: file('ca.pem') });
    const call = await placeCall({ host: '127.0.0.1', port: a.eslPort }, inbound());
    await call.closed;
    const line = await a.waitForLog((l) => l['callId'] === call.uuid && /retried/.test(l.message));
    assert.match(String(line['reason']), /ERR_TLS_CERT_ALTNAME_INVALID: Zammad's TLS certificate was refused/);
    assert.equal(zammad.postsFor(call.uuid).length, 0);
  });

  test('NODE_TLS_REJECT_UNAUTHORIZED=0 in the environment does not turn verification off', LIMIT, async () => {
    const a = await start({ ZAMMAD_CTI_URL: url(good.port), NODE_TLS_REJECT_UNAUTHORIZED: '0' });
    const call = await placeCall({ host: '127.0.0.1', port: a.eslPort }, inbound());
    await call.closed;
    await a.waitForLog((l) => l['callId'] === call.uuid && /TLS certificate was refused/.test(String(l['reason'])));
    assert.equal(zammad.postsFor(call.uuid).length, 0);
  });

  test(
    'plain http:// is refused at start for a host that is not loopback, unless ZAMMAD_ALLOW_HTTP=true',
    LIMIT,
    async () => {
      const refused = await startAdapter(
        { ZAMMAD_CTI_URL: `http://zammad.example/api/v1/cti/${TOKEN}` },
        { expectStart: false },
      );
      running.push(refused);
      const code = await Promise.race([
        refused.exited,
        new Promise<string>((r) => setTimeout(r, 15_000, 'still running')),
      ]);
      assert.ok(typeof code === 'number' && code !== 0, `exits non-zero, got ${code}`);
      assert.match(refused.output(), /ZAMMAD_CTI_URL: uses plain http:\/\/ to a host that is not loopback/);
      assert.ok(!refused.output().includes(TOKEN), 'the token is not in the message');
      const allowed = await start({
        ZAMMAD_CTI_URL: `http://zammad.example/api/v1/cti/${TOKEN}`,
        ZAMMAD_ALLOW_HTTP: 'true',
      });
      assert.equal(allowed.proc.exitCode, null);
    },
  );
});
