/**
 * The outbox's disk fails under the real adapter program: a small tmpfs fills up mid-run (the
 * test fills it), a read-only outbox at start, a corrupt one. Calls go on and reach Zammad from
 * memory, no caller waits for the disk, /readyz and the metrics name the disk, nothing is lost or
 * sent twice once space is freed; a stop while full names every event it could not store, exits
 * non-zero, and `replay` delivers them; the next start does not give a call a wrong cause.
 * The tmpfs tests need root (mount); without it they are skipped with that reason.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { placeCall, type CallScript, type SwitchCall, type TargetBehaviour } from '@freeswitch-zammad-cti/sim/switch';
import { ZammadDouble } from '@freeswitch-zammad-cti/sim/zammad';
import { childEnv } from '../child-env.js';
import { startAdapter, tempOutbox, type AdapterProcess } from './adapter-process.js';
import { waitUntil } from './raw-switch.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ROOT_ONLY =
  process.getuid?.() === 0 ? false : 'needs root to mount a small tmpfs (run the suite as root to include it)';
const FAST = { ZAMMAD_REQUEST_TIMEOUT_MS: '500', RETRY_BASE_MS: '40', RETRY_MAX_MS: '200' };
/** Long, so that a caller held for the disk would show: a decision must come far sooner. */
const NEWCALL_TIMEOUT_MS = 4000;
const TOKEN = `tok-${randomUUID()}`;

let seq = 0;
function inbound(target: TargetBehaviour, extra: Partial<CallScript> = {}, callerNumber?: string): CallScript {
  const ext = String(6000 + seq++);
  return {
    channel: {
      uuid: randomUUID(),
      callerNumber: callerNumber ?? `030777${ext}`,
      destination: '491711234567890',
      context: 'public',
      variables: { zammad_users: `Agent ${ext}`, zammad_bridge: `user/${ext}@d` },
    },
    targets: { [ext]: target },
    originateTimeoutMs: 60_000,
    ...extra,
  };
}
const ANSWERED: TargetBehaviour = { kind: 'answer', ringMs: 20, talkMs: 60 };
const BUSY: TargetBehaviour = { kind: 'busy', ringMs: 10 };
const TALKING: TargetBehaviour = { kind: 'answer', ringMs: 10 };

async function get(adapter: AdapterProcess, path: string): Promise<{ code: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${adapter.statusPort}${path}`);
  return { code: res.status, text: await res.text() };
}
const metric = async (adapter: AdapterProcess, re: RegExp) =>
  Number(re.exec((await get(adapter, '/metrics')).text)?.[1] ?? NaN);

/** A tmpfs of its own, unmounted by `close`. */
class SmallDisk {
  readonly dir = mkdtempSync(join(tmpdir(), 'cti-disk-'));
  readonly outbox = join(this.dir, 'outbox.sqlite');
  private readonly filler = join(this.dir, 'filler');
  constructor(size: string) {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', this.dir]);
  }
  /** Empties the outbox's WAL (so that its next commit needs new room), then fills the disk. */
  async fill(): Promise<void> {
    // The adapter may be inside a commit: ask again until the WAL is empty.
    const db = new Database(this.outbox);
    try {
      for (let i = 0; ; i++) {
        const [r] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number }[];
        if (r?.busy === 0 && r.log === 0) break;
        if (i > 100) throw new Error('the outbox WAL could not be emptied');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    } finally {
      db.close();
    }
    const fd = openSync(this.filler, 'a');
    const chunk = Buffer.alloc(4096, 1);
    try {
      for (;;) writeSync(fd, chunk);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    } finally {
      closeSync(fd);
    }
  }
  free(): void {
    rmSync(this.filler, { force: true });
  }
  close(): void {
    try {
      execFileSync('umount', ['-l', this.dir]);
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

function runCli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli/index.ts', ...args],
      { cwd: ROOT, env: { ...childEnv(), ...env }, timeout: 30_000 },
      (err, stdout) => {
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout });
      },
    );
  });
}

const decidedWithinMs = (call: SwitchCall): number => {
  const start = call.framesSent.find((f) => f.kind === 'connect-reply')?.at ?? 0;
  const decided = call.commands.find(
    (c) => c.headers['execute-app-name'] === 'bridge' || c.headers['call-command'] === 'hangup',
  );
  return (decided?.at ?? Infinity) - start;
};

describe('the outbox disk fills up while calls flow', { skip: ROOT_ONLY }, () => {
  let zammad: ZammadDouble;
  let disk: SmallDisk;
  before(async () => {
    zammad = new ZammadDouble({ token: TOKEN, blockedNumbers: ['4930999999999'] });
    await zammad.start();
    disk = new SmallDisk('4m');
  });
  after(async () => {
    await zammad?.stop();
    disk?.close();
  });

  test(
    'calls go on from memory without waiting, /readyz and the ' +
      'metrics name the disk, nothing lost or twice once space is freed',
    async () => {
      const adapter = await startAdapter({
        ZAMMAD_CTI_URL: zammad.url,
        OUTBOX_PATH: disk.outbox,
        ZAMMAD_NEWCALL_TIMEOUT_MS: String(NEWCALL_TIMEOUT_MS),
        ...FAST,
      });
      const to = { host: '127.0.0.1', port: adapter.eslPort };
      try {
        const before = await Promise.all([1, 2].map(() => placeCall(to, inbound(ANSWERED))));
        await zammad.waitFor((z) => before.every((c) => z.entry(c.uuid)?.state === 'hangup'), 10_000);

        await disk.fill();
        const during: SwitchCall[] = [];
        // The first commits after the fill fail; keep calls coming until the adapter says so.
        while (!adapter.lines.some((l) => /cannot write the outbox to disk/.test(l.message))) {
          during.push(await placeCall(to, inbound(during.length % 2 ? BUSY : ANSWERED)));
          await new Promise((r) => setTimeout(r, 50));
          if (during.length > 40) throw new Error(`the disk never refused a commit:\n${adapter.output().slice(-3000)}`);
        }
        const more = await Promise.all(
          Array.from({ length: 10 }, (_, i) => placeCall(to, inbound(i % 2 ? BUSY : ANSWERED))),
        );
        const blocked = await placeCall(to, inbound(ANSWERED, {}, '+49 30 999999999'));
        during.push(...more);
        await Promise.all([...more, blocked].map((c) => c.closed));
        for (const c of more)
          assert.ok(
            decidedWithinMs(c) < NEWCALL_TIMEOUT_MS / 2,
            `decided after ${decidedWithinMs(c)} ms: a caller waited for the disk`,
          );
        assert.ok(
          blocked.commands.some((c) => c.headers['hangup-cause'] === 'USER_BUSY'),
          "Zammad's verdict (reject) is honoured",
        );

        const ready = await get(adapter, '/readyz');
        assert.equal(ready.code, 503);
        const checks = (JSON.parse(ready.text) as { checks: Record<string, { ok: boolean; detail?: string }> }).checks;
        assert.equal(checks['outbox']?.ok, false);
        assert.ok(checks['outbox']?.detail?.includes(disk.outbox), checks['outbox']?.detail);
        assert.equal(checks['zammad']?.ok, true, 'the disk is not blamed on Zammad');
        assert.ok((await metric(adapter, /^cti_outbox_write_failures_total (\d+)$/m)) >= 1);
        assert.equal(
          adapter.lines.filter((l) => /cannot write the outbox to disk/.test(l.message)).length,
          1,
          'one line per fault',
        );

        const all = [...before, ...during, blocked];
        await zammad.waitFor((z) => all.every((c) => z.entry(c.uuid)?.state === 'hangup'), 10_000);

        disk.free();
        await adapter.waitForLog((l) => l.message === 'the outbox writes to disk again', 15_000);
        await waitUntil(async () => (await get(adapter, '/readyz')).code === 200, 'ready again');
        await waitUntil(
          async () => (await metric(adapter, /^cti_outbox_events\{endpoint="default"\} (\d+)$/m)) === 0,
          'the outbox is empty',
        );
        await new Promise((r) => setTimeout(r, 300)); // a stray repeat would show up here
        for (const c of all) {
          const accepted = zammad.acceptedEvents(c.uuid);
          assert.equal(accepted.filter((e) => e === 'newCall').length, 1, c.uuid);
          assert.equal(zammad.entry(c.uuid)?.hangups, 1, `${c.uuid}: one hangup`);
          assert.ok(
            zammad.postsFor(c.uuid).every((p) => p.status !== 500),
            `${c.uuid}: nothing out of order`,
          );
        }
        const db = new Database(disk.outbox, { readonly: true });
        assert.equal(
          db.prepare<[], { n: number }>('SELECT count(*) AS n FROM outbox').get()?.n,
          0,
          'nothing delivered is written afterwards',
        );
        db.close();
      } finally {
        disk.free();
        await adapter.stop();
      }
    },
  );

  test(
    'SIGTERM while full and Zammad down: every unsaved event named, exit ' +
      'code 1, replay delivers them; the restart gives no wrong cause',
    async () => {
      const outbox = disk.outbox;
      const env = {
        ZAMMAD_CTI_URL: zammad.url,
        OUTBOX_PATH: outbox,
        ZAMMAD_NEWCALL_TIMEOUT_MS: '300',
        SHUTDOWN_DRAIN_MS: '800',
        ...FAST,
      };
      const first = await startAdapter(env);
      const to = { host: '127.0.0.1', port: first.eslPort };
      let second: AdapterProcess | undefined;
      const talking: SwitchCall[] = [];
      let logDir: string | undefined;
      try {
        await disk.fill();
        // Answered while Zammad answers: newCall and answer reach it from memory; the journal's answer does not
        // reach the disk.
        while (!first.lines.some((l) => /cannot write the outbox to disk/.test(l.message))) {
          talking.push(await placeCall(to, inbound(TALKING)));
          await zammad.waitFor((z) => z.entry(talking.at(-1)?.uuid ?? '')?.state === 'answer', 5000);
          if (talking.length > 20) throw new Error(`the disk never refused a commit:\n${first.output().slice(-3000)}`);
        }
        await zammad.waitFor((z) => talking.every((c) => z.entry(c.uuid)?.state === 'answer'), 10_000);
        await zammad.refuseConnections();
        const lost = await Promise.all([1, 2, 3].map(() => placeCall(to, inbound(BUSY))));
        await Promise.all(lost.map((c) => c.closed));

        const code = await first.stop('SIGTERM');
        assert.equal(code, 1, 'a stop that lost events is not a clean stop');
        const named = first.lines.filter((l) => l.message === 'event neither delivered nor stored');
        for (const c of lost) {
          assert.deepEqual(
            named.filter((l) => l['callId'] === c.uuid).map((l) => l['event']),
            ['newCall', 'hangup'],
            c.uuid,
          );
          for (const l of named.filter((n) => n['callId'] === c.uuid)) assert.equal(l['endpoint'], 'default');
        }
        const file = readdirSync(disk.dir).find((f) => f.startsWith('outbox.sqlite.unsaved-'));
        // The file is written when the disk lets it; the log always names every event.
        logDir = mkdtempSync(join(tmpdir(), 'cti-disk-log-'));
        const logFile = join(logDir, 'adapter.log');
        writeFileSync(logFile, first.output());
        if (file) assert.equal(readFileSync(join(disk.dir, file), 'utf8').trim().split('\n').length, named.length);

        disk.free();
        await zammad.acceptConnections();
        const replayed = await runCli(['replay', file ? join(disk.dir, file) : logFile], {
          ZAMMAD_CTI_URL: zammad.url,
        });
        assert.equal(replayed.code, 0, replayed.stdout);
        for (const c of lost) {
          assert.deepEqual(zammad.acceptedEvents(c.uuid), ['newCall', 'hangup'], c.uuid);
          assert.equal(zammad.entry(c.uuid)?.cause, 'busy');
        }

        // The restart closes the calls still talking (no inbound socket): answered, so normalClearing, not noAnswer.
        second = await startAdapter(env);
        await zammad.waitFor((z) => talking.every((c) => z.entry(c.uuid)?.state === 'hangup'), 10_000);
        for (const c of talking) {
          assert.equal(zammad.entry(c.uuid)?.cause, 'normalClearing', `${c.uuid}: answered before the stop`);
          assert.equal(zammad.entry(c.uuid)?.hangups, 1);
        }
        assert.equal(existsSync(`${outbox}.journal-incomplete`), false, 'the marker is taken');
      } finally {
        for (const c of talking) c.hangup();
        disk.free();
        await zammad.acceptConnections();
        first.proc.kill('SIGKILL');
        await second?.stop();
        if (logDir) rmSync(logDir, { recursive: true, force: true });
      }
    },
  );
});

describe('an outbox the adapter cannot use at start', () => {
  test('a corrupt file: refused with exit code 2, left untouched, the message says how to move it aside', async () => {
    const outbox = tempOutbox();
    writeFileSync(outbox, 'this is not an SQLite database\n'.repeat(200));
    const before = readFileSync(outbox);
    const adapter = await startAdapter(
      { ZAMMAD_CTI_URL: 'http://127.0.0.1:9/api/v1/cti/tok-x', OUTBOX_PATH: outbox },
      { expectStart: false },
    );
    assert.equal(await adapter.exited, 2);
    assert.match(adapter.output(), new RegExp(`OUTBOX_PATH=${outbox}.*not a usable SQLite database`));
    assert.ok(adapter.output().includes(`mv ${outbox} ${outbox}.broken`));
    assert.deepEqual(readFileSync(outbox), before, 'untouched');
  });

  test('an outbox it cannot write (a read-only disk): refused with exit code 2 and the fix', {
    skip: ROOT_ONLY,
  }, async () => {
    const disk = new SmallDisk('1m');
    try {
      const first = await startAdapter({
        ZAMMAD_CTI_URL: 'http://127.0.0.1:9/api/v1/cti/tok-x',
        OUTBOX_PATH: disk.outbox,
      });
      await first.stop();
      execFileSync('mount', ['-o', 'remount,ro', disk.dir]);
      const adapter = await startAdapter(
        { ZAMMAD_CTI_URL: 'http://127.0.0.1:9/api/v1/cti/tok-x', OUTBOX_PATH: disk.outbox },
        { expectStart: false },
      );
      assert.equal(await adapter.exited, 2);
      assert.match(adapter.output(), new RegExp(`cannot write the outbox OUTBOX_PATH=${disk.outbox}.*writable`));
    } finally {
      disk.close();
    }
  });
});
