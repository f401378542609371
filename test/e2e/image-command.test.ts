/**
 * No container engine on the build machines: this runs what the image runs instead. The build
 * (`npm run build`, as in the Dockerfile's build stage), then the Dockerfile's own CMD with its
 * ENV, then its HEALTHCHECK command against that process, then a SIGTERM (what `docker stop` sends).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childEnv as childEnvOf } from '../child-env.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** JSON-array instructions (`CMD [...]`, the HEALTHCHECK's `CMD [...]`) and the ENV pairs of the Dockerfile. */
function dockerfile(): { cmd: string[]; health: string[]; env: Record<string, string> } {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n\s*/g, ' ');
  const lines = text.split('\n').filter((l) => !l.trimStart().startsWith('#'));
  const cmd = lines.filter((l) => l.startsWith('CMD ')).at(-1);
  const health = lines.find((l) => l.startsWith('HEALTHCHECK '));
  const env: Record<string, string> = {};
  for (const l of lines.filter((x) => x.startsWith('ENV '))) {
    for (const m of l.slice(4).matchAll(/([A-Z_]+)=(\S+)/g)) env[m[1] as string] = m[2] as string;
  }
  assert.ok(cmd && health, 'Dockerfile has CMD and HEALTHCHECK');
  return {
    cmd: JSON.parse(cmd.slice(4)) as string[],
    health: JSON.parse(health.slice(health.indexOf(' CMD ') + 5)) as string[],
    env,
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

test("the image's CMD, built as the image builds it, starts, passes its HEALTHCHECK and drains on SIGTERM", {
  timeout: 120_000,
}, async () => {
  const { cmd, health, env } = dockerfile();
  assert.deepEqual(cmd.slice(0, 1), ['node']);
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'pipe' });

  const data = mkdtempSync(join(tmpdir(), 'cti-image-'));
  const statusPort = String(await freePort());
  // No .env of the working tree (the image has none: .dockerignore) and nothing of the shell's.
  const childEnv = childEnvOf({
    ...env,
    // Only what differs in a test: a free port (8088 may be taken here), the outbox in a temp folder, loopback binds.
    OUTBOX_PATH: join(data, 'outbox.sqlite'),
    ESL_HOST: '127.0.0.1',
    ESL_PORT: '0',
    STATUS_HOST: '127.0.0.1',
    STATUS_PORT: statusPort,
    ZAMMAD_CTI_URL: 'http://127.0.0.1:9/api/v1/cti/image-test-token',
  });
  const proc = spawn(cmd[0] as string, cmd.slice(1), { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve));
  try {
    for (let i = 0; i < 200 && !out.includes('status endpoints up'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(out.includes('status endpoints up'), out);

    const healthcheck = spawn(health[0] as string, health.slice(1), { env: childEnv, stdio: 'ignore' });
    const healthy = await new Promise<number | null>((resolve) => healthcheck.once('exit', resolve));
    assert.equal(healthy, 0, 'HEALTHCHECK passes against the running CMD');

    proc.kill('SIGTERM');
    assert.equal(await exited, 0, out);
    assert.ok(out.includes('"message":"stopped"'), out);
    assert.ok(!out.includes('image-test-token'), 'the token is never printed');
    const after = spawn(health[0] as string, health.slice(1), { env: childEnv, stdio: 'ignore' });
    assert.equal(
      await new Promise<number | null>((resolve) => after.once('exit', resolve)),
      1,
      'HEALTHCHECK fails once the process is gone',
    );
  } finally {
    proc.kill('SIGKILL');
    rmSync(data, { recursive: true, force: true });
  }
});
