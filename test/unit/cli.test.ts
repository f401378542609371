/** The admin CLI: check's verdicts (pure), check and simulate against the Zammad double, and the entry's wiring. */
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { checkVerdict, runCheck } from '../../src/cli/check.js';
import { runSimulate } from '../../src/cli/simulate.js';
import type { HttpOutcome } from '../../src/zammad/client.js';
import { ZammadDouble } from '@freeswitch-zammad-cti/sim/zammad';
import { childEnv } from '../child-env.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const TOKEN = 'tok-SECRET-4f1c9a';
const WRONG = 'wrong-TOKEN-77e2b0';

function collector(): { out: (line: string) => void; lines: string[]; text: () => string } {
  const lines: string[] = [];
  return { out: (line) => void lines.push(line), lines, text: () => lines.join('\n') };
}

const response = (status: number, body: string, location?: string): HttpOutcome => ({
  kind: 'response',
  status,
  body,
  ...(location !== undefined ? { location } : {}),
});
const failure = (code: string, error: string): HttpOutcome => ({ kind: 'failure', code, error });

// ---------------------------------------------------------------------------------------------

describe('checkVerdict', () => {
  it('422 "Invalid direction!": everything fine', () => {
    const v = checkVerdict(response(422, '{"error":"Invalid direction!"}'));
    assert.equal(v.ok, true);
    const text = v.lines.join('\n');
    assert.match(text, /✓ endpoint reachable/);
    assert.match(text, /✓ integration enabled/);
    assert.match(text, /✓ token valid/);
    assert.doesNotMatch(text, /✗/);
  });

  it('401: wrong token, integration is on', () => {
    const v = checkVerdict(response(401, '{"error":"Invalid token, please contact your admin!"}'));
    assert.equal(v.ok, false);
    const text = v.lines.join('\n');
    assert.match(text, /✓ endpoint reachable/);
    assert.match(text, /✓ integration enabled/);
    assert.match(text, /✗ token valid: the token in ZAMMAD_CTI_URL is wrong/);
    assert.match(text, /copy the endpoint again/);
  });

  it("401 that is not Zammad's: a proxy with a login", () => {
    const v = checkVerdict(response(401, '<html><title>401 Authorization Required</title></html>'));
    assert.equal(v.ok, false);
    assert.match(v.lines.join('\n'), /proxy/);
  });

  it('422 disabled: integration off, token not tested', () => {
    const v = checkVerdict(response(422, '{"error":"Feature is disabled, please contact your administrator!"}'));
    assert.equal(v.ok, false);
    const text = v.lines.join('\n');
    assert.match(text, /✗ integration enabled: .*switched off/);
    assert.match(text, /· token valid: not tested/);
    assert.match(text, /switch it on/);
  });

  it('422 not configured', () => {
    const v = checkVerdict(response(422, '{"error":"Feature not configured, please contact your admin!"}'));
    assert.equal(v.ok, false);
    const text = v.lines.join('\n');
    assert.match(text, /✗ integration enabled: .*never been configured/);
    assert.match(text, /Save/);
  });

  it('404: wrong URL', () => {
    const v = checkVerdict(response(404, '{"error":"No route matches [POST] /api/v1/ctx"}'));
    assert.equal(v.ok, false);
    const text = v.lines.join('\n');
    assert.match(text, /✗ endpoint reachable: .*404/);
    assert.match(text, /\/api\/v1\/cti\/<token>/);
  });

  it('302: redirect, target shown with the token hidden', () => {
    const v = checkVerdict(response(302, '', `https://zammad.example/api/v1/cti/${TOKEN}`));
    assert.equal(v.ok, false);
    const text = v.lines.join('\n');
    assert.match(
      text,
      /✗ endpoint reachable: the server redirects \(302 to https:\/\/zammad\.example\/api\/v1\/cti\/\*\*\*\)/,
    );
    assert.match(text, /https:\/\//);
    assert.ok(!text.includes(TOKEN));
  });

  it('500 HTML page: server fault, not JSON', () => {
    const v = checkVerdict(
      response(500, '<!DOCTYPE html>\n<html><title>500: Something went wrong</title><body>…</body></html>'),
    );
    assert.equal(v.ok, false);
    const text = v.lines.join('\n');
    assert.match(text, /✗ endpoint reachable: the server answered 500 \(an HTML page: "500: Something went wrong"\)/);
    assert.match(text, /production\.log/);
  });

  it('200 to a request Zammad always refuses: not Zammad', () => {
    const v = checkVerdict(response(200, '{}'));
    assert.equal(v.ok, false);
    assert.match(v.lines.join('\n'), /does not look like Zammad/);
  });

  it('ECONNREFUSED', () => {
    const v = checkVerdict(failure('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:3000'));
    assert.equal(v.ok, false);
    const text = v.lines.join('\n');
    assert.match(text, /✗ endpoint reachable: connection refused/);
    assert.match(text, /· token valid: not tested/);
    assert.match(text, /· integration enabled: not tested/);
  });

  it('ENOTFOUND: DNS', () => {
    const v = checkVerdict(failure('ENOTFOUND', 'getaddrinfo ENOTFOUND zammad.invalid'));
    assert.equal(v.ok, false);
    assert.match(v.lines.join('\n'), /✗ endpoint reachable: DNS: .*cannot be resolved.*zammad\.invalid/);
  });

  it("TIMEOUT (and undici's connect timeout)", () => {
    for (const code of ['TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']) {
      const v = checkVerdict(failure(code, 'no answer within 10000 ms'));
      assert.equal(v.ok, false);
      assert.match(v.lines.join('\n'), /✗ endpoint reachable: timeout/, code);
      assert.match(v.lines.join('\n'), /ZAMMAD_REQUEST_TIMEOUT_MS/, code);
    }
  });

  it('certificate errors: private CA → NODE_EXTRA_CA_CERTS; expired; wrong host name', () => {
    for (const [code, msg] of [
      ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'],
      ['SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain'],
      ['DEPTH_ZERO_SELF_SIGNED_CERT', 'self-signed certificate'],
    ] as const) {
      const v = checkVerdict(failure(code, msg));
      assert.equal(v.ok, false);
      assert.match(v.lines.join('\n'), /✗ endpoint reachable: TLS certificate not accepted/, code);
      assert.match(v.lines.join('\n'), /NODE_EXTRA_CA_CERTS/, code);
    }
    assert.match(
      checkVerdict(failure('CERT_HAS_EXPIRED', 'certificate has expired')).lines.join('\n'),
      /expired: renew/,
    );
    assert.match(
      checkVerdict(
        failure('ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames"),
      ).lines.join('\n'),
      /not issued for the host name/,
    );
  });
});

// ---------------------------------------------------------------------------------------------

describe('runCheck against the Zammad double', () => {
  let z: ZammadDouble;
  before(async () => {
    z = new ZammadDouble({ token: TOKEN });
    await z.start();
  });
  after(async () => {
    await z.stop();
  });
  beforeEach(() => {
    z.reset();
    z.update({ token: TOKEN, enabled: true, configured: true });
  });

  it('good token: exit 0, one request without direction, nothing stored', async () => {
    const c = collector();
    const code = await runCheck({ ZAMMAD_CTI_URL: z.url }, c.out);
    assert.equal(code, 0, c.text());
    assert.match(c.text(), /✓ configuration valid/);
    assert.match(c.text(), /✓ token valid/);
    assert.match(c.text(), /Result: OK/);
    assert.equal(z.posts.length, 1);
    assert.equal(z.posts[0]?.params['direction'], undefined);
    assert.equal(z.posts[0]?.accept, 'application/json');
    assert.deepEqual(z.log(), []);
    assert.ok(!c.text().includes(TOKEN), 'token printed');
  });

  it('wrong token: exit 1, says so, never prints the token', async () => {
    const c = collector();
    const code = await runCheck({ ZAMMAD_CTI_URL: `${z.baseUrl}/api/v1/cti/${WRONG}` }, c.out);
    assert.equal(code, 1);
    assert.match(c.text(), /✗ token valid: the token in ZAMMAD_CTI_URL is wrong/);
    assert.match(c.text(), /Result: FAILED/);
    assert.ok(!c.text().includes(WRONG), c.text());
    assert.ok(!c.text().includes(TOKEN));
    assert.deepEqual(z.log(), []);
  });

  it('integration disabled: exit 1', async () => {
    z.update({ enabled: false });
    const c = collector();
    assert.equal(await runCheck({ ZAMMAD_CTI_URL: z.url }, c.out), 1);
    assert.match(c.text(), /✗ integration enabled/);
  });

  it('integration not configured: exit 1', async () => {
    z.update({ configured: false });
    const c = collector();
    assert.equal(await runCheck({ ZAMMAD_CTI_URL: z.url }, c.out), 1);
    assert.match(c.text(), /never been configured/);
  });

  it('token echoed in a 404 reply is hidden', async () => {
    const c = collector();
    // Zammad's route reads '.x' after the token as a format; two dots match no route, and the
    // 404 body repeats the path, token included.
    const token = 'tok.SECRET.404';
    const code = await runCheck({ ZAMMAD_CTI_URL: `${z.baseUrl}/api/v1/cti/${token}` }, c.out);
    assert.equal(code, 1);
    assert.match(c.text(), /404/);
    assert.ok(!c.text().includes(token), c.text());
  });

  it('bad configuration: exit 2 with the ConfigError message', async () => {
    const c = collector();
    assert.equal(await runCheck({}, c.out), 2);
    assert.match(c.text(), /Invalid configuration:\n {2}- ZAMMAD_CTI_URL: is required/);
    const d = collector();
    assert.equal(await runCheck({ ZAMMAD_CTI_URL: `http://zammad.example/api/v1/cti/${TOKEN}` }, d.out), 2);
    assert.match(d.text(), /plain http/);
    assert.ok(!d.text().includes(TOKEN));
  });

  it('no answer in time: exit 1, timeout', async () => {
    z.setFault({ kind: 'hang' }, { times: 1 });
    const c = collector();
    assert.equal(await runCheck({ ZAMMAD_CTI_URL: z.url, ZAMMAD_REQUEST_TIMEOUT_MS: '200' }, c.out), 1);
    assert.match(c.text(), /✗ endpoint reachable: timeout/);
  });

  it('nothing listening: exit 1, connection refused', async () => {
    const gone = new ZammadDouble({ token: TOKEN });
    await gone.start();
    const url = gone.url;
    await gone.stop();
    const c = collector();
    assert.equal(await runCheck({ ZAMMAD_CTI_URL: url }, c.out), 1);
    assert.match(c.text(), /connection refused/);
  });

  it(
    'endpoints per tenant: every endpoint checked and named, ' + 'one bad token fails the run, no token shown',
    async () => {
      const other = new ZammadDouble({ token: 'globex-SECRET-9a8b7c' });
      await other.start();
      try {
        const dir = mkdtempSync(join(tmpdir(), 'cti-check-'));
        const file = join(dir, 'endpoints.json');
        writeFileSync(
          file,
          JSON.stringify({
            endpoints: [
              { name: 'acme', url: z.url, domains: ['acme.example.com'] },
              { name: 'globex', url: `${other.baseUrl}/api/v1/cti/${WRONG}` },
            ],
          }),
        );
        const c = collector();
        assert.equal(await runCheck({ ZAMMAD_ENDPOINTS_FILE: file }, c.out), 1);
        const text = c.text();
        assert.match(
          text,
          new RegExp(
            '✓ configuration valid \\(endpoint "acme" \\(domains acme\\.example\\.com\\) ' +
              'http://127\\.0\\.0\\.1:\\d+/api/v1/cti/\\*\\*\\*',
          ),
        );
        assert.match(text, /endpoint "globex" \(by zammad_endpoint only\)[^\n]*\n(.*\n)*✗ token valid/);
        assert.equal(text.match(/✓ token valid/g)?.length, 1, "acme's token is fine");
        assert.match(text, /Result: FAILED$/);
        for (const secret of [TOKEN, WRONG, 'globex-SECRET-9a8b7c']) assert.ok(!text.includes(secret));
        writeFileSync(file, '{"endpoints": [{"name": "acme"}]}');
        const bad = collector();
        assert.equal(await runCheck({ ZAMMAD_ENDPOINTS_FILE: file }, bad.out), 2);
        assert.match(bad.text(), /endpoints\[0\] "acme": url: is required/);
        rmSync(dir, { recursive: true, force: true });
      } finally {
        await other.stop();
      }
    },
  );
});

// ---------------------------------------------------------------------------------------------

describe('runSimulate against the Zammad double', () => {
  let z: ZammadDouble;
  const env = (): NodeJS.ProcessEnv => ({
    ZAMMAD_CTI_URL: z.url,
    DEFAULT_COUNTRY_CODE: '49',
    EXTENSION_MAX_DIGITS: '6',
  });
  before(async () => {
    z = new ZammadDouble({
      token: TOKEN,
      blockedNumbers: ['493055571699'],
      outboundRoutes: [{ dest: '49171*', callerId: '4930777000000' }],
    });
    await z.start();
  });
  after(async () => {
    await z.stop();
  });
  beforeEach(() => z.reset());

  it('answered inbound call: newCall, answer, hangup in order; done, answered by the user', async () => {
    const c = collector();
    const code = await runSimulate(
      [
        '--from',
        '030 55571600',
        '--to',
        '+49 171 1234567890',
        '--user',
        'Alice',
        '--user',
        'Bob',
        '--answered-by',
        'Alice',
        '--answering-number',
        '2003',
        '--call-id',
        'sim-answered',
      ],
      env(),
      c.out,
    );
    assert.equal(code, 0, c.text());
    assert.deepEqual(z.acceptedEvents('sim-answered'), ['newCall', 'answer', 'hangup']);
    assert.deepEqual(
      z.posts.map((p) => p.event),
      ['newCall', 'answer', 'hangup'],
    );
    for (const p of z.posts) {
      assert.equal(p.params['direction'], 'in');
      assert.equal(p.accept, 'application/json');
      assert.match(p.contentType, /^application\/x-www-form-urlencoded/);
    }
    const [nc, an, hu] = z.posts;
    assert.deepEqual(nc?.params['user'], ['Alice', 'Bob']);
    assert.match(nc?.raw ?? '', /user%5B%5D=Alice&user%5B%5D=Bob/);
    assert.equal(an?.params['user'], 'Alice');
    assert.match(an?.raw ?? '', /(^|&)user=Alice(&|$)/);
    assert.equal(an?.params['answeringNumber'], '2003');
    assert.equal(hu?.params['cause'], 'normalClearing');

    const entry = z.entry('sim-answered');
    assert.ok(entry);
    assert.equal(entry.state, 'hangup');
    assert.equal(entry.done, true);
    assert.equal(entry.answeredBy, 'Alice');
    assert.equal(entry.users, 'Alice, Bob');
    assert.equal(entry.from, '493055571600');
    assert.equal(entry.to, '491711234567890');
    assert.equal(entry.hangups, 1);

    assert.match(c.text(), /→ newCall .*user\[\]=Alice user\[\]=Bob/);
    assert.match(c.text(), /→ answer .*user=Alice/);
    assert.match(c.text(), /action: none/);
    assert.match(c.text(), /--from 030 55571600 → 493055571600/);
    assert.match(c.text(), /answered by Alice, done/);
    assert.match(c.text(), /Result: OK/);
    assert.ok(!c.text().includes(TOKEN));
  });

  it('answer without --answered-by: the only --user', async () => {
    const c = collector();
    assert.equal(
      await runSimulate(['--user', 'Carol', '--call-id', 'sim-only-user', '--talk-ms', '20'], env(), c.out),
      0,
      c.text(),
    );
    assert.equal(z.entry('sim-only-user')?.answeredBy, 'Carol');
  });

  it('blocked caller: the reject is shown, hangup busy, missed call', async () => {
    const c = collector();
    const code = await runSimulate(
      ['--from', '+49 30 55571699', '--outcome', 'rejected', '--call-id', 'sim-blocked'],
      env(),
      c.out,
    );
    assert.equal(code, 0, c.text());
    assert.match(c.text(), /action: reject \(reason busy\)/);
    assert.match(c.text(), /"action":"reject"/);
    assert.deepEqual(z.acceptedEvents('sim-blocked'), ['newCall', 'hangup']);
    assert.equal(z.posts[1]?.params['cause'], 'busy');
    const entry = z.entry('sim-blocked');
    assert.equal(entry?.done, false);
    assert.equal(entry?.cause, 'busy');
  });

  it('blocked caller with outcome answered: follows the reject like the adapter', async () => {
    const c = collector();
    assert.equal(
      await runSimulate(['--from', '493055571699', '--call-id', 'sim-blocked-2'], env(), c.out),
      0,
      c.text(),
    );
    assert.match(c.text(), /action: reject/);
    assert.deepEqual(z.acceptedEvents('sim-blocked-2'), ['newCall', 'hangup']);
  });

  it('--outcome rejected for a caller Zammad does not block: exit 1, the call is still closed', async () => {
    const c = collector();
    assert.equal(
      await runSimulate(
        ['--from', '493055571600', '--outcome', 'rejected', '--call-id', 'sim-not-blocked'],
        env(),
        c.out,
      ),
      1,
    );
    assert.match(c.text(), /expected Zammad to reject 493055571600/);
    assert.deepEqual(z.acceptedEvents('sim-not-blocked'), ['newCall', 'hangup']);
  });

  it('outbound with a route: the dial caller id is shown', async () => {
    const c = collector();
    const code = await runSimulate(
      ['--direction', 'out', '--from', '2003', '--to', '0171 1234567890', '--user', 'Alice', '--call-id', 'sim-out'],
      env(),
      c.out,
    );
    assert.equal(code, 0, c.text());
    assert.match(c.text(), /action: dial \(caller id 4930777000000\)/);
    assert.match(c.text(), /effective_caller_id_number=4930777000000/);
    assert.deepEqual(z.acceptedEvents('sim-out'), ['newCall', 'answer', 'hangup']);
    for (const p of z.posts) assert.equal(p.params['direction'], 'out');
    assert.equal(z.posts[1]?.params['user'], undefined, 'no user on an outbound answer');
    const entry = z.entry('sim-out');
    assert.equal(entry?.from, '4930777000000');
    assert.equal(entry?.to, '491711234567890');
    assert.equal(entry?.done, true);
  });

  it('unanswered inbound (noAnswer): newCall, hangup noAnswer, missed', async () => {
    const c = collector();
    assert.equal(await runSimulate(['--outcome', 'noAnswer', '--call-id', 'sim-missed'], env(), c.out), 0, c.text());
    assert.deepEqual(z.acceptedEvents('sim-missed'), ['newCall', 'hangup']);
    assert.equal(z.entry('sim-missed')?.done, false);
    assert.equal(z.entry('sim-missed')?.cause, 'noAnswer');
    assert.match(c.text(), /missed call/);
  });

  it('anonymous caller', async () => {
    const c = collector();
    assert.equal(
      await runSimulate(['--from', 'anonymous', '--outcome', 'cancel', '--call-id', 'sim-anon'], env(), c.out),
      0,
      c.text(),
    );
    assert.equal(z.entry('sim-anon')?.from, 'anonymous');
  });

  it('wrong token: exit 1, nothing after newCall, token not printed', async () => {
    const c = collector();
    const code = await runSimulate(
      ['--call-id', 'sim-wrong'],
      { ZAMMAD_CTI_URL: `${z.baseUrl}/api/v1/cti/${WRONG}` },
      c.out,
    );
    assert.equal(code, 1);
    assert.deepEqual(
      z.posts.map((p) => p.event),
      ['newCall'],
    );
    assert.equal(z.posts[0]?.status, 401);
    assert.deepEqual(z.log(), []);
    assert.match(c.text(), /wrong token/);
    assert.match(c.text(), /Nothing more sent/);
    assert.ok(!c.text().includes(WRONG), c.text());
  });

  it('a call id Zammad already has: exit 1, nothing after newCall', async () => {
    assert.equal(await runSimulate(['--call-id', 'sim-twice'], env(), collector().out), 0);
    const c = collector();
    assert.equal(await runSimulate(['--call-id', 'sim-twice'], env(), c.out), 1);
    assert.match(c.text(), /already has a call sim-twice/);
    assert.deepEqual(
      z.postsFor('sim-twice').map((p) => p.event),
      ['newCall', 'answer', 'hangup', 'newCall'],
    );
    assert.equal(z.entry('sim-twice')?.hangups, 1);
  });

  it('a failing answer: the hangup is still sent, exit 1', async () => {
    z.setFault({ kind: 'status', status: 503 }, { events: ['answer'], times: 1 });
    const c = collector();
    assert.equal(await runSimulate(['--call-id', 'sim-answer-fails'], env(), c.out), 1);
    assert.deepEqual(
      z.postsFor('sim-answer-fails').map((p) => p.event),
      ['newCall', 'answer', 'hangup'],
    );
    assert.match(c.text(), /answer not accepted/);
  });

  it('usage errors: exit 2, nothing sent', async () => {
    for (const argv of [
      ['--outcome', 'exploded'],
      ['--direction', 'sideways'],
      ['--to', 'abc'],
      ['--to', 'anonymous'],
      ['--bogus'],
      ['positional'],
      ['--talk-ms', '-5'],
      ['--direction', 'out', '--outcome', 'rejected'],
      ['--direction', 'out', '--answered-by', 'Alice'],
      ['--call-id', 'x'.repeat(251)],
    ]) {
      const c = collector();
      assert.equal(await runSimulate(argv, env(), c.out), 2, argv.join(' '));
      assert.match(c.text(), /^error: /m, argv.join(' '));
    }
    assert.equal(z.posts.length, 0);
  });

  it('bad configuration: exit 2; --help works without configuration', async () => {
    const c = collector();
    assert.equal(await runSimulate([], {}, c.out), 2);
    assert.match(c.text(), /Invalid configuration/);
    const h = collector();
    assert.equal(await runSimulate(['--help'], {}, h.out), 0);
    assert.match(h.text(), /--outcome/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('the entry (src/cli/index.ts) as a process', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const entry = fileURLToPath(new URL('../../src/cli/index.ts', import.meta.url));

  function run(
    args: string[],
    extraEnv: Record<string, string> = {},
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    // No .env of the developer's, nothing of the shell's (../child-env.ts).
    const env = childEnv(extraEnv);
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', entry, ...args],
        { cwd: root, env, timeout: 30_000 },
        (err, stdout, stderr) => {
          const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
          resolve({ code, stdout, stderr });
        },
      );
    });
  }

  it('help: exit 0; unknown command: exit 2', async () => {
    const help = await run(['--help']);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /Commands:/);
    const unknown = await run(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
  });

  it('demo is not a command of the product (the simulators are not shipped: npm run demo)', async () => {
    const help = await run(['--help']);
    assert.doesNotMatch(help.stdout, /demo/);
    const demo = await run(['demo']);
    assert.equal(demo.code, 2);
    assert.match(demo.stderr, /unknown command "demo"/);
  });

  it('check with a bad configuration: exit 2 and the ConfigError message', async () => {
    const r = await run(['check']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stdout, /Invalid configuration/);
    assert.doesNotMatch(r.stdout, /dotenv/);
  });

  it('check against the double: exit 0, token never printed', async () => {
    const z = new ZammadDouble({ token: TOKEN });
    await z.start();
    try {
      const r = await run(['check'], { ZAMMAD_CTI_URL: z.url });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /Result: OK/);
      assert.ok(!(r.stdout + r.stderr).includes(TOKEN));
      assert.deepEqual(z.log(), []);
    } finally {
      await z.stop();
    }
  });
});
