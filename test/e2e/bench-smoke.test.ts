/**
 * The benchmark (bench/run.ts) in its smoke mode: seconds, small counts. It must run end to end
 * against the real adapter process and the baseline, print its table, write its figures, and
 * lose nothing: every call ends cleanly, every event of every call reaches Zammad (adapter) or
 * the listener (baseline). Speed is not asserted here (bench/README.md has the figures).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TRANSCRIPT_DIR } from '../../bench/frames.js';
import { childEnv } from '../child-env.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Phase {
  cyclesPerSec: number;
  eventsLost: number;
  outOfOrder: number;
  calls: { started: number; connected: number; completed: number; failed: number };
  setup: { n: number; p50: number };
}
interface Hold {
  held: number;
  failed: number;
  eventsLost: number;
  peakRssMB: number;
}
interface SmokeReport {
  mode: string;
  eventsLost: number;
  callsFailed: number;
  cyclesPerSec: number;
  baselineCyclesPerSec: number;
  adapter: Record<string, { throughput: Phase; latency: Phase }>;
  baseline: { throughput: Phase; latency: Phase };
  memory: { adapter: Hold[]; baseline: Hold[] };
}

test('npm run bench --smoke: runs end to end, prints the table, loses no event', { skip: existsSync(TRANSCRIPT_DIR) ? false : 'transcripts not available', timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
  const out = join(dir, 'smoke.json');
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--smoke', '--out', out], {
      cwd: ROOT,
      // Nothing of the shell's (BENCH_SMOKE, BENCH_OUTBOX_DIR, BENCH_HEAPSNAPSHOT… would change the run), no .env:
      // the transcripts this test found, by name.
      env: childEnv({ ESL_TRANSCRIPTS: TRANSCRIPT_DIR }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0, `bench exited with ${code}\n${stdout}\n${stderr.slice(-4000)}`);

    assert.match(stdout, /\| call cycles\/s \(sustained\)/);
    assert.match(stdout, /\| events lost/);
    const r = JSON.parse(readFileSync(out, 'utf8')) as SmokeReport;
    assert.equal(r.mode, 'smoke');
    assert.equal(r.eventsLost, 0);
    assert.equal(r.callsFailed, 0);
    assert.ok(r.cyclesPerSec > 0 && r.baselineCyclesPerSec > 0);

    const phases = [...Object.values(r.adapter).flatMap((a) => [a.throughput, a.latency]), r.baseline.throughput, r.baseline.latency];
    for (const p of phases) {
      assert.ok(p.calls.completed > 0, 'each phase completes calls');
      assert.equal(p.calls.completed, p.calls.started, 'every call started ends cleanly');
      assert.equal(p.calls.failed, 0);
      assert.equal(p.eventsLost, 0);
      assert.equal(p.outOfOrder, 0);
      assert.ok(p.setup.n > 0 && p.setup.p50 > 0, 'setup latency measured');
    }
    for (const h of [...r.memory.adapter, ...r.memory.baseline]) {
      assert.equal(h.failed, 0);
      assert.equal(h.eventsLost, 0);
      assert.ok(h.held > 0 && h.peakRssMB > 0);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
