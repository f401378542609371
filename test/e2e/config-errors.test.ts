/**
 * A bad configuration stops the program before it does anything (issue 4): one message that
 * names every bad variable, a non-zero exit code, no stack trace — and never the token.
 * The real program, as a child process (adapter-process.ts).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { startAdapter, type AdapterProcess } from './adapter-process.js';

const LIMIT = { timeout: 60_000 };
const TOKEN = `tok-${randomUUID()}`;
const GOOD_URL = `https://zammad.example/api/v1/cti/${TOKEN}`;

/** Runs the program with `env`; it must exit on its own. */
async function run(
  env: Record<string, string>,
): Promise<{ code: number | null; output: string; adapter: AdapterProcess }> {
  const adapter = await startAdapter(env, { expectStart: false });
  const code = await Promise.race([adapter.exited, new Promise<'running'>((r) => setTimeout(r, 20_000, 'running'))]);
  if (code === 'running') {
    await adapter.stop('SIGKILL');
    assert.fail(`still running 20 s after start; output:\n${adapter.output()}`);
  }
  return { code, output: adapter.output(), adapter };
}

function noStackTrace(output: string): void {
  assert.ok(!/^\s+at .+\(.*:\d+:\d+\)$/m.test(output) && !/^\s+at /m.test(output), `a stack trace:\n${output}`);
  assert.ok(!/ZodError|\bTypeError\b|node:internal/.test(output), `an internal error:\n${output}`);
}

describe('configuration errors', () => {
  test('every bad variable named in one message, exit code 2, no stack trace, nothing started', LIMIT, async () => {
    const { code, output } = await run({
      // ZAMMAD_CTI_URL missing
      ESL_PORT: '99999',
      ESL_ALLOW: '10.0.0.0/33,not-an-ip',
      LOG_LEVEL: 'loud',
      ZAMMAD_NEWCALL_TIMEOUT_MS: 'soon',
      DEFAULT_COUNTRY_CODE: '+49',
      ESL_MAX_FRAME_BYTES: '16384',
      ZAMMAD_ALLOW_HTTP: 'maybe',
    });
    assert.equal(code, 2);
    assert.equal(output.split('Invalid configuration:').length - 1, 1, `one message:\n${output}`);
    for (const name of [
      'ZAMMAD_CTI_URL',
      'ESL_PORT',
      'ESL_ALLOW',
      'LOG_LEVEL',
      'ZAMMAD_NEWCALL_TIMEOUT_MS',
      'DEFAULT_COUNTRY_CODE',
      'ESL_MAX_FRAME_BYTES',
      'ZAMMAD_ALLOW_HTTP',
    ]) {
      assert.match(output, new RegExp(`^  - ${name}\\b`, 'm'), `${name} named:\n${output}`);
    }
    assert.match(output, /"10\.0\.0\.0\/33" is not an IP address or CIDR/);
    assert.match(output, /"not-an-ip" is not an IP address or CIDR/);
    assert.match(output, /ESL_MAX_FRAME_BYTES \(got "16384"\): must be at least 65536/);
    assert.ok(!output.includes('listening for FreeSWITCH'), 'nothing started');
    noStackTrace(output);
  });

  test('a bad ZAMMAD_CTI_URL is named, its value (the token) never shown', LIMIT, async () => {
    const cases: [string, RegExp][] = [
      [`http://zammad.example/api/v1/cti/${TOKEN}`, /uses plain http:\/\/ to a host that is not loopback/],
      [`http://127.0.0.1.evil.example/api/v1/cti/${TOKEN}`, /uses plain http:\/\//],
      [`http://localhost.evil.example/api/v1/cti/${TOKEN}`, /uses plain http:\/\//],
      [`ftp://zammad.example/api/v1/cti/${TOKEN}`, /must be an http\(s\) URL/],
      [`https://zammad.example/api/v1/${TOKEN}`, /must end in \/api\/v1\/cti\/<token>/],
      [`zammad.example/api/v1/cti/${TOKEN}`, /is not a URL/],
    ];
    for (const [url, why] of cases) {
      const { code, output } = await run({ ZAMMAD_CTI_URL: url });
      assert.equal(code, 2, output);
      assert.match(output, /^ {2}- ZAMMAD_CTI_URL: /m);
      assert.match(output, why);
      assert.ok(!output.includes(TOKEN), `the token shown:\n${output}`);
      noStackTrace(output);
    }
  });

  test('plain http:// to loopback is allowed without ZAMMAD_ALLOW_HTTP', LIMIT, async () => {
    for (const host of ['127.0.0.1', 'localhost', '[::1]']) {
      const adapter = await startAdapter({ ZAMMAD_CTI_URL: `http://${host}:9/api/v1/cti/${TOKEN}` });
      assert.equal(adapter.proc.exitCode, null);
      assert.equal(await adapter.stop(), 0);
    }
  });

  test('WORKERS, no longer read, is named in one warning with the fix; the adapter starts', LIMIT, async () => {
    const adapter = await startAdapter({ ZAMMAD_CTI_URL: `http://127.0.0.1:9/api/v1/cti/${TOKEN}`, WORKERS: '4' });
    const warnings = adapter.lines.filter((l) => l.level === 'warn' && l.message.includes('WORKERS'));
    assert.equal(warnings.length, 1, adapter.output());
    const [warning] = warnings;
    assert.match(warning?.message ?? '', /^WORKERS is no longer read and is ignored: .*more instances.*Remove WORKERS/);
    assert.equal(await adapter.stop(), 0);
  });

  test(
    'a start-up failure that is not a variable (port taken) is one line and a non-zero exit, no stack trace',
    LIMIT,
    async () => {
      const taken = net.createServer();
      await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
      try {
        const port = (taken.address() as net.AddressInfo).port;
        const { code, output } = await run({ ZAMMAD_CTI_URL: GOOD_URL, ESL_PORT: String(port) });
        assert.equal(code, 1);
        assert.match(output, /"message":"cannot start"/);
        assert.match(output, /EADDRINUSE/);
        noStackTrace(output);
        assert.ok(!output.includes(TOKEN));
      } finally {
        taken.close();
      }
    },
  );
});
