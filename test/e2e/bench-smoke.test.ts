/**
 * The benchmark (bench/run.ts) in its smoke mode: seconds, small counts. It must run end to end
 * against the real adapter process and the baseline, in both routing modes (bridge, and dialplan:
 * the call handed back with `transfer`), print its table, write its figures, and lose nothing:
 * every call of every phase ends cleanly, every event of every call reaches Zammad (adapter) or
 * the listener (baseline). Speed is not asserted here (bench/README.md has the figures); that
 * every headline figure of bench/results/latest.json is there and plausible is (the overload
 * phase's too; its targets are not asserted).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childEnv } from '../child-env.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Phase {
  routing: string;
  setup: { n: number; p50: number; p99: number };
  rate?: number;
  processes: number;
  cyclesPerSec: number;
  cpuMsPerCall: number;
  eventsLost: number;
  outOfOrder: number;
  calls: { started: number; connected: number; completed: number; failed: number };
}
interface Mode {
  throughput: Phase;
  latency: Phase;
  latencyByRate: Record<string, Phase>;
}
interface Hold {
  held: number;
  failed: number;
  eventsLost: number;
  rssMB: number;
  peakRssMB: number;
  processes: number;
}
interface SmokeReport {
  mode: string;
  eventsLost: number;
  callsFailed: number;
  cyclesPerSec: number;
  baselineCyclesPerSec: number;
  adapter: Record<string, Mode>;
  baseline: Mode;
  memory: { adapter: Hold[]; baseline: Hold[] };
  dialplan: Mode & Record<string, number> & { baseline: Mode };
  [key: string]: unknown;
}

/** A figure in milliseconds or per second: a number above zero (NaN is written as null). */
const positive = (v: unknown, what: string) =>
  assert.ok(typeof v === 'number' && Number.isFinite(v) && v > 0, `${what} = ${String(v)}`);

test('npm run bench --smoke: runs end to end, prints the table, loses no event', { timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
  const out = join(dir, 'smoke.json');
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--smoke', '--out', out], {
      cwd: ROOT,
      // Nothing of the shell's (BENCH_SMOKE, BENCH_OUTBOX_DIR, BENCH_HEAPSNAPSHOT… would change the run), no .env.
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0, `bench exited with ${code}\n${stdout}\n${stderr.slice(-4000)}`);

    assert.match(stdout, /\| bridge: call cycles\/s \(sustained\)/);
    assert.match(stdout, /\| bridge: events lost/);
    const r = JSON.parse(readFileSync(out, 'utf8')) as SmokeReport;
    assert.equal(r.mode, 'smoke');
    assert.equal(r.eventsLost, 0);
    assert.equal(r.callsFailed, 0);
    assert.ok(r.cyclesPerSec > 0 && r.baselineCyclesPerSec > 0);

    assert.match(stdout, /\| dialplan \(40 set apps\): setup p99 ms @\d+\/s/);
    assert.match(stdout, /\| dialplan \(40 set apps\): events lost/);
    // Both modes, adapter and baseline: throughput and a latency phase at 500 and at 1000 calls/s.
    // The smoke's rates (50 and 100 a second; a full run's are 500 and 1000).
    const rates = (r['settings'] as { rates: number[] }).rates;
    assert.equal(rates.length, 2);
    const modes: [string, string, Mode][] = [
      ...Object.entries(r.adapter).map(([level, m]): [string, string, Mode] => [`adapter ${level}`, 'bridge', m]),
      ['baseline', 'bridge', r.baseline],
      ['adapter', 'dialplan', r.dialplan],
      ['baseline', 'dialplan', r.dialplan.baseline],
    ];
    assert.ok(
      Object.keys(r.adapter).length >= 1 && r.dialplan && r.dialplan.baseline,
      'bridge and dialplan mode, adapter and baseline',
    );
    const phases: Phase[] = [];
    for (const [who, routing, m] of modes) {
      assert.deepEqual(
        Object.keys(m.latencyByRate).sort(),
        rates.map(String).sort(),
        `${who} ${routing}: a latency phase at each rate`,
      );
      for (const p of [m.throughput, ...Object.values(m.latencyByRate)]) {
        assert.equal(p.routing, routing, `${who}: ${routing} mode`);
        assert.ok(p.processes >= 1, `${who} ${routing}: processes counted`);
        positive(p.cpuMsPerCall, `${who} ${routing} cpuMsPerCall`);
        phases.push(p);
      }
    }
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
      assert.ok(h.held > 0 && h.rssMB > 0 && h.peakRssMB >= h.rssMB && h.processes >= 1);
    }

    // The headline figures (bench/README.md, "Files"), both modes. The …1000 ones are the
    // figures at 1000 calls/s: null here, where that rate did not run.
    for (const k of [
      'setupP50Ms',
      'setupP99Ms',
      'baselineSetupP99Ms',
      'cpuMsPerCall',
      'baselineCpuMsPerCall',
      'ratioToBaseline',
    ])
      positive(r[k], k);
    for (const k of [
      'cyclesPerSec',
      'setupP50Ms',
      'setupP99Ms',
      'cpuMsPerCall',
      'ratioToBaseline',
      'baselineCyclesPerSec',
      'baselineSetupP99Ms',
      'baselineCpuMsPerCall',
      'cpuVsBridge',
      'eventsPerCall',
    ])
      positive(r.dialplan[k], `dialplan.${k}`);
    for (const k of ['setupP50Ms1000', 'setupP99Ms1000', 'setupMaxMs1000', 'baselineSetupP99Ms1000']) {
      assert.ok(k in r && r[k] === null, `${k} is there, null`);
      assert.ok(k in r.dialplan && r.dialplan[k] === null, `dialplan.${k} is there, null`);
    }
    assert.ok(
      (r['setupP99Ms'] as number) >= (r['setupP50Ms'] as number) &&
        r.dialplan['setupP99Ms']! >= r.dialplan['setupP50Ms']!,
    );
    assert.equal(
      r['setupP99Ms'],
      Math.round(r.adapter['info']!.latencyByRate[String(rates[0])]!.setup.p99 * 1000) / 1000,
      'setupP99Ms is at the first rate',
    );
    // The bench divides the figures as it reports them (rounded): the same division here gives the same number.
    const ratio = (cycles: number, baseline: number) => Math.round((cycles / baseline) * 1000) / 1000;
    assert.equal(r['ratioToBaseline'], ratio(r.cyclesPerSec, r.baselineCyclesPerSec));
    assert.equal(
      r.dialplan['ratioToBaseline'],
      ratio(r.dialplan['cyclesPerSec']!, r.dialplan['baselineCyclesPerSec']!),
    );
    // Fewer events reach the adapter than the switch has (its filters), none lost in either mode.
    assert.ok(r.dialplan['eventsPerCall']! < r.dialplan['eventsPerCallOnSwitch']!);
    assert.equal(r.dialplan['eventsLost'], 0);
    assert.equal(r.dialplan['callsFailed'], 0);
    // The overload phase (dialplan mode, twice the capacity just measured; in smoke mode shorter and
    // capped): its figures are there and numbers, and it lost nothing. Its targets are not asserted here.
    const overload = (r.dialplan as unknown as { overload: Record<string, unknown> }).overload;
    for (const k of ['rate', 'calls', 'callsFailed', 'setupP99Ms', 'goodputPerSec', 'fellOpen', 'eventsLost'])
      assert.ok(typeof overload[k] === 'number' && Number.isFinite(overload[k]), `dialplan.overload.${k} is a number`);
    positive(overload['rate'], 'dialplan.overload.rate');
    positive(overload['calls'], 'dialplan.overload.calls');
    assert.equal(overload['eventsLost'], 0);
    assert.match(stdout, /\| overload: setup p99 ms, every call counted/);
    // The adapter's process tree: its own process at least.
    assert.ok(
      (r['adapterProcesses'] as number) >= 1 &&
        r.dialplan['adapterProcesses']! >= 1 &&
        (r['memoryProcesses'] as number) >= 1,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
