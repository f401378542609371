/**
 * `npm run bench`: throughput, added call-setup latency, CPU per call and memory of the real
 * adapter process, side by side with a bare baseline listener, on this machine.
 *
 *   node --import tsx bench/run.ts [--smoke] [--out FILE] [--cpu-prof] [--tsx] [--log-levels info,warn]
 *                                  [--duration S] [--concurrency N] [--rate N] [--hold 1000,10000]
 *
 * Processes: this one (orchestration + the Zammad double, answering at once on loopback with
 * keep-alive), the adapter (built with tsc and run with node, as `npm start` does), the load
 * generator (loadgen.ts, a child) and the baseline listener (baseline.ts, a child). They share
 * the machine's cores; every figure per call is taken from the adapter's own /proc/<pid>/stat,
 * which counts only its own CPU time, and the other processes' share is printed beside it.
 * How each figure is obtained: bench/README.md.
 */
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ZammadDouble } from '../src/sim/zammad.js';
import { loadTemplates, DEFAULT_TRANSCRIPT } from './frames.js';
import type { FromGenerator, Job, JobResult, Target, ToGenerator } from './loadgen.js';
import { machine, machineCpu, openFilesLimit, sample, type ProcSample } from './procstat.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BENCH = join(ROOT, 'bench');

// ---------------------------------------------------------------------------------------------
// Options

interface Options {
  smoke: boolean;
  out: string;
  cpuProf: boolean;
  tsx: boolean;
  logLevels: string[];
  warmupMs: number;
  durationMs: number;
  concurrency: number;
  rate: number;
  holds: number[];
  generators: number;
  transcript: string;
  baseline: boolean;
  /** throughput, latency, memory (all by default). */
  phases: string[];
  /** CPU pinning: the subject alone on the last CPU, everything else on the others. */
  pin: boolean;
  /** Memory phases: new calls a second while the calls are opened (0: as fast as the subject takes them). */
  openRate: number;
  /** Extra node options for the adapter (experiments, e.g. --max-semi-space-size=4). */
  adapterNodeOptions: string[];
}

function parseOptions(argv: string[]): Options {
  const flag = (name: string) => argv.includes(`--${name}`);
  const value = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const smoke = flag('smoke') || process.env['BENCH_SMOKE'] === '1';
  const num = (name: string, full: number, small: number) => Number(value(name) ?? (smoke ? small : full));
  return {
    smoke,
    out: value('out') ?? join(BENCH, 'results', smoke ? 'smoke.json' : 'latest.json'),
    cpuProf: flag('cpu-prof'),
    tsx: flag('tsx'),
    logLevels: (value('log-levels') ?? (smoke ? 'info' : 'info,warn')).split(',').filter(Boolean),
    warmupMs: num('warmup', 3, 0.3) * 1000,
    durationMs: num('duration', 10, 1.5) * 1000,
    concurrency: num('concurrency', 64, 8),
    rate: num('rate', 500, 50),
    holds: (value('hold') ?? (smoke ? '100,300' : '1000,10000')).split(',').map(Number).filter((n) => n > 0),
    generators: num('generators', 1, 1),
    transcript: value('transcript') ?? DEFAULT_TRANSCRIPT,
    baseline: !flag('no-baseline'),
    phases: (value('phases') ?? 'throughput,latency,memory').split(','),
    pin: flag('pin'),
    openRate: num('open-rate', 500, 200),
    adapterNodeOptions: (value('adapter-node-options') ?? '').split(' ').filter(Boolean),
  };
}

// ---------------------------------------------------------------------------------------------
// Small helpers

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (n: number, d = 2) => (Number.isFinite(n) ? Math.round(n * 10 ** d) / 10 ** d : n);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] as number;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * With 2 or more CPUs and taskset: the subject (adapter or baseline) runs alone on the last CPU,
 * this process (Zammad double), the generators and their children on the others. Without it a
 * write that wakes a peer on the same CPU is preempted by it, and the subject's figures would
 * carry the generator's and the Zammad double's work.
 */
let subjectPrefix: string[] = [];

function pinProcesses(): string {
  const cpus = machine().cpus;
  if (cpus < 2) return 'no pinning (1 CPU)';
  const others = cpus === 2 ? '0' : `0-${cpus - 2}`;
  const r = spawnSync('taskset', ['-a', '-p', '-c', others, String(process.pid)], { encoding: 'utf8' });
  if (r.status !== 0) return `no pinning (taskset: ${r.error?.message ?? r.stderr.trim()})`;
  subjectPrefix = ['taskset', '-c', String(cpus - 1)];
  return `subject on CPU ${cpus - 1}, Zammad double + generators on CPU ${others}`;
}

function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

// ---------------------------------------------------------------------------------------------
// The adapter process

interface Adapter {
  proc: ChildProcess;
  pid: number;
  eslPort: number;
  statusPort: number;
  logLines: number;
  problems: string[];
  metrics(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

/**
 * Compiles a checkout's src/ with tsc (what `npm run build` does) into a directory of the bench's
 * own: bench/.build for this checkout, <root>/.bench-build for another (--adapter-root, e.g. the
 * last commit unpacked with `git archive`, its node_modules linked to this one's).
 */
function build(root = ROOT): string {
  const outDir = root === ROOT ? join(BENCH, '.build') : join(root, '.bench-build');
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', outDir], { cwd: root, encoding: 'utf8' });
  const main = join(outDir, 'src', 'main.js');
  if (!existsSync(main)) throw new Error(`tsc did not produce ${main}:\n${r.stdout}${r.stderr}`);
  if (r.status !== 0) log(`tsc reported type errors (the JavaScript is emitted anyway):\n${(r.stdout + r.stderr).split('\n').slice(0, 10).join('\n')}`);
  return main;
}

function outboxPath(dir: string): string {
  const where = process.env['BENCH_OUTBOX_DIR'];
  if (where === ':memory:') return ':memory:';
  return where ? join(mkdtempSync(join(where, 'cti-bench-')), 'outbox.sqlite') : join(dir, 'outbox.sqlite');
}

async function startAdapter(opts: { main: string | null; zammadUrl: string; bridge: string; logLevel: string; cpuProfDir?: string; tag: string; nodeOptions: string[] }): Promise<Adapter> {
  const eslPort = await freePort();
  const statusPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'cti-bench-'));
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '',
    HOME: process.env['HOME'] ?? '',
    ZAMMAD_CTI_URL: opts.zammadUrl,
    ESL_PORT: String(eslPort),
    STATUS_PORT: String(statusPort),
    LOG_FORMAT: 'json',
    LOG_LEVEL: opts.logLevel,
    // BENCH_OUTBOX_DIR: another place for the outbox (e.g. /dev/shm), or ':memory:' to measure what the disk costs.
    OUTBOX_PATH: outboxPath(dir),
    DEFAULT_BRIDGE: opts.bridge,
    SHUTDOWN_DRAIN_MS: '5000',
  };
  const args = [
    ...opts.nodeOptions,
    ...(process.env['BENCH_HEAPSNAPSHOT'] ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${process.env['BENCH_HEAPSNAPSHOT_DIR'] ?? dir}`] : []),
    ...(opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`, `--cpu-prof-name=adapter-${opts.tag}.cpuprofile`] : []),
    ...(opts.main ? [opts.main] : ['--import', 'tsx', join(ROOT, 'src', 'main.ts')]),
  ];
  // cwd: an empty directory, so that no .env of the checkout changes the configuration.
  const [cmd, ...pre] = subjectPrefix.length > 0 ? [...subjectPrefix, process.execPath] : [process.execPath];
  const proc = spawn(cmd as string, [...pre, ...args], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const adapter: Adapter = {
    proc,
    pid: proc.pid ?? 0,
    eslPort,
    statusPort,
    logLines: 0,
    problems: [],
    async metrics() {
      const text = await (await fetch(`http://127.0.0.1:${statusPort}/metrics`)).text();
      const out: Record<string, number> = {};
      for (const line of text.split('\n')) {
        if (!line.startsWith('cti_') || line.startsWith('cti_process') || line.includes('_bucket{')) continue;
        const sp = line.lastIndexOf(' ');
        out[line.slice(0, sp)] = Number(line.slice(sp + 1));
      }
      return out;
    },
    async stop() {
      if (proc.exitCode !== null) return;
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  // The log is read (a pipe, as under systemd or docker) and counted; warnings and errors are kept.
  let buf = '';
  proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      adapter.logLines++;
      if ((line.includes('"level":"warn"') || line.includes('"level":"error"')) && adapter.problems.length < 50) adapter.problems.push(line.slice(0, 400));
    }
  });
  proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    if (adapter.problems.length < 50) adapter.problems.push(chunk.slice(0, 400));
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`the adapter exited (${proc.exitCode}) at start:\n${adapter.problems.join('\n')}`);
    try {
      const res = await fetch(`http://127.0.0.1:${statusPort}/healthz`);
      if (res.ok) break;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`the adapter did not come up within 30 s:\n${adapter.problems.join('\n')}`);
    await sleep(100);
  }
  return adapter;
}

// ---------------------------------------------------------------------------------------------
// Generators and the baseline (child processes)

interface GeneratorProc {
  proc: ChildProcess;
  pid: number;
  run(job: Job, onMark: (what: string) => void): Promise<JobResult>;
  release(): void;
  stop(): void;
}

function forkTs(file: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  return fork(join(BENCH, file), args, {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

async function startGenerator(n: number, transcript: string): Promise<GeneratorProc> {
  const proc = forkTs('loadgen.ts', [String(n)], { BENCH_TRANSCRIPT: transcript });
  await new Promise<void>((resolve, reject) => {
    proc.once('message', (m: FromGenerator) => (m.type === 'ready' ? resolve() : reject(new Error('generator: unexpected first message'))));
    proc.once('exit', (code) => reject(new Error(`generator exited (${code})`)));
  });
  let ids = 0;
  return {
    proc,
    pid: proc.pid ?? 0,
    run(job, onMark) {
      const id = ++ids;
      return new Promise<JobResult>((resolve, reject) => {
        const onMessage = (m: FromGenerator) => {
          if (m.type === 'mark' && m.id === id) onMark(m.what);
          if (m.type === 'result' && m.id === id) {
            proc.off('message', onMessage);
            resolve(m.result);
          }
          if (m.type === 'error' && m.id === id) {
            proc.off('message', onMessage);
            reject(new Error(m.error));
          }
        };
        proc.on('message', onMessage);
        proc.send({ type: 'run', id, job } satisfies ToGenerator);
      });
    },
    release: () => proc.send({ type: 'release' } satisfies ToGenerator),
    stop: () => {
      if (proc.connected) proc.send({ type: 'exit' } satisfies ToGenerator);
    },
  };
}

interface BaselineProc {
  proc: ChildProcess;
  pid: number;
  port: number;
  counters(): Promise<{ connections: number; events: number; frames: number; bytes: number; closed: number }>;
  stop(): Promise<void>;
}

/** baseline.ts as plain JavaScript (it imports nothing but node:net), so that it runs on bare node. */
async function transpileBaseline(): Promise<string> {
  const ts = (await import('typescript')).default;
  const source = readFileSync(join(BENCH, 'baseline.ts'), 'utf8');
  const out = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
  const file = join(BENCH, '.build', 'bench', 'baseline.mjs');
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, out.outputText);
  return file;
}

let baselineJs: string | undefined;

async function startBaseline(bridge: string): Promise<BaselineProc> {
  baselineJs ??= await transpileBaseline();
  const proc = fork(baselineJs, [], { execArgv: [], env: { ...process.env, BENCH_BRIDGE: bridge }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  if (subjectPrefix.length > 0 && proc.pid) spawnSync('taskset', ['-a', '-p', '-c', subjectPrefix[2] as string, String(proc.pid)]);
  const ready = await new Promise<{ port: number }>((resolve, reject) => {
    proc.once('message', (m: { type: string; port: number }) => (m.type === 'ready' ? resolve(m) : reject(new Error('baseline: unexpected first message'))));
    proc.once('exit', (code) => reject(new Error(`baseline exited (${code})`)));
  });
  return {
    proc,
    pid: proc.pid ?? 0,
    port: ready.port,
    counters: () =>
      new Promise((resolve) => {
        const on = (m: { type: string; counters: Awaited<ReturnType<BaselineProc['counters']>> }) => {
          if (m.type !== 'counters') return;
          proc.off('message', on);
          resolve(m.counters);
        };
        proc.on('message', on);
        proc.send({ type: 'counters' });
      }),
    async stop() {
      if (proc.exitCode !== null) return;
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.send({ type: 'exit' });
      await exited;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Phases

type Subject = { kind: 'adapter'; adapter: Adapter } | { kind: 'baseline'; baseline: BaselineProc };

interface CpuShare {
  /** CPU time of each process in the measurement window, as a share of one core. */
  subject: number;
  generator: number;
  zammadAndBench: number;
  /** Kernel network work (softirq) on the machine, and busy CPU of processes outside the bench (other jobs on the machine). */
  softirq: number;
  foreign: number;
}

interface LoadFigures {
  cyclesPerSec: number;
  /** CPU ms of the subject process per completed call (window). */
  cpuMsPerCall: number;
  cpu: CpuShare;
  setup: { n: number; p50: number; p99: number; max: number; rawP50: number; rawP99: number; zammadP50: number; zammadP99: number };
  calls: { started: number; connected: number; completed: number; failed: number; failures: Record<string, number> };
  eventsSent: number;
  bytesSentPerCall: number;
  eventsLost: number;
  outOfOrder: number;
  generatorLoopDelayP99Ms: number;
  logLinesPerCall?: number;
  /** The adapter's own event-loop delay (prom-client, 10 ms resolution) and GC time in the window. */
  adapterLoopLagP99Ms?: number;
  adapterLoopLagMaxMs?: number;
  adapterGcMsPerSec?: Record<string, number>;
}

interface Bench {
  opts: Options;
  zammad: ZammadDouble;
  generators: GeneratorProc[];
  eventsPerCall: number;
}

function target(s: Subject): Target {
  return { host: '127.0.0.1', port: s.kind === 'adapter' ? s.adapter.eslPort : s.baseline.port };
}

function pidOf(s: Subject): number {
  return s.kind === 'adapter' ? s.adapter.pid : s.baseline.pid;
}

/** Splits a job between the generators and merges what they report. */
async function runJob(b: Bench, make: (share: number, i: number) => Job, onMark: (what: string) => void): Promise<JobResult> {
  const n = b.generators.length;
  const marks = new Map<string, number>();
  const results = await Promise.all(
    b.generators.map((g, i) =>
      g.run(make(1 / n, i), (what) => {
        const seen = (marks.get(what) ?? 0) + 1;
        marks.set(what, seen);
        if (seen === n) onMark(what);
      }),
    ),
  );
  const merged: JobResult = {
    started: 0,
    connected: 0,
    completed: 0,
    completedInWindow: 0,
    windowMs: results[0]?.windowMs ?? 0,
    failed: 0,
    failures: {},
    eventsSent: 0,
    bytesSent: 0,
    apiCommands: 0,
    setup: [],
    cpuMs: 0,
    loopDelayP99Ms: 0,
    loopDelayMaxMs: 0,
  };
  for (const r of results) {
    merged.started += r.started;
    merged.connected += r.connected;
    merged.completed += r.completed;
    merged.completedInWindow += r.completedInWindow;
    merged.failed += r.failed;
    for (const [k, v] of Object.entries(r.failures)) merged.failures[k] = (merged.failures[k] ?? 0) + v;
    merged.eventsSent += r.eventsSent;
    merged.bytesSent += r.bytesSent;
    merged.apiCommands += r.apiCommands;
    merged.setup.push(...r.setup);
    merged.cpuMs += r.cpuMs;
    merged.loopDelayP99Ms = Math.max(merged.loopDelayP99Ms, r.loopDelayP99Ms);
    merged.loopDelayMaxMs = Math.max(merged.loopDelayMaxMs, r.loopDelayMaxMs);
  }
  return merged;
}

const tagOf = () => randomBytes(4).toString('hex');

/** Waits until Zammad has every event of the phase's calls (or nothing moves any more), then counts. */
async function zammadAccount(b: Bench, s: Subject, tag: string, connected: number): Promise<{ lost: number; outOfOrder: number; zammadMs: Map<string, number> }> {
  const expected = 3 * connected;
  const delivered = () => {
    const seen = new Set<string>();
    for (const p of b.zammad.posts) if (p.status === 200 && p.callId?.startsWith(tag) && p.event) seen.add(`${p.callId} ${p.event}`);
    return seen.size;
  };
  if (s.kind === 'adapter') {
    let last = -1;
    let still = 0;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const n = delivered();
      if (n >= expected || Date.now() > deadline) break;
      const depth = (await s.adapter.metrics())['cti_outbox_events'] ?? 0;
      still = n === last && depth === 0 ? still + 1 : 0;
      if (still >= 10) break; // 1 s without progress and an empty outbox: what is missing is lost
      last = n;
      await sleep(100);
    }
  }
  const byCall = new Map<string, string[]>();
  const zammadMs = new Map<string, number>();
  for (const p of b.zammad.posts) {
    if (p.status !== 200 || !p.callId?.startsWith(tag) || !p.event) continue;
    const list = byCall.get(p.callId) ?? [];
    list.push(p.event);
    byCall.set(p.callId, list);
    if (p.event === 'newCall' && p.repliedAt !== undefined) zammadMs.set(p.callId, p.repliedAt - p.at);
  }
  let outOfOrder = 0;
  for (const events of byCall.values()) if (events.join(',') !== 'newCall,answer,hangup') outOfOrder++;
  const lost = s.kind === 'adapter' ? Math.max(0, expected - delivered()) : 0;
  return { lost, outOfOrder: s.kind === 'adapter' ? outOfOrder : 0, zammadMs };
}

async function loadPhase(b: Bench, s: Subject, mode: 'cycle' | 'rate'): Promise<LoadFigures> {
  const { opts } = b;
  const tag = tagOf();
  b.zammad.reset();
  const pid = pidOf(s);
  const genPids = b.generators.map((g) => g.pid);
  let at0: { subject: ProcSample; gens: number; bench: NodeJS.CpuUsage; t: number; logLines: number; machine: ReturnType<typeof machineCpu> } | undefined;
  let at1: typeof at0;
  const snap = () => ({
    subject: sample(pid),
    gens: genPids.reduce((n, p) => n + sample(p).cpuMs, 0),
    bench: process.cpuUsage(),
    t: performance.now(),
    logLines: s.kind === 'adapter' ? s.adapter.logLines : 0,
    machine: machineCpu(),
  });
  const baselineBefore = s.kind === 'baseline' ? await s.baseline.counters() : undefined;
  let m0: Promise<Record<string, number>> | undefined;
  let m1: Promise<Record<string, number>> | undefined;
  const common = { target: target(s), tag, warmupMs: opts.warmupMs, durationMs: opts.durationMs, callTimeoutMs: 20_000 };
  const result = await runJob(
    b,
    (share) =>
      mode === 'cycle'
        ? { mode, ...common, concurrency: Math.max(1, Math.round(opts.concurrency * share)) }
        : { mode, ...common, rate: opts.rate * share },
    (what) => {
      if (what === 'window-start') {
        at0 = snap();
        if (s.kind === 'adapter') m0 = s.adapter.metrics(); // also resets prom-client's event-loop histogram
      }
      if (what === 'window-end') {
        at1 = snap();
        if (s.kind === 'adapter') m1 = s.adapter.metrics();
      }
    },
  );
  if (!at0 || !at1) throw new Error('the generator did not mark its window');
  const { lost, outOfOrder, zammadMs } = await zammadAccount(b, s, tag, result.connected);
  let eventsLost = lost;
  if (s.kind === 'baseline' && baselineBefore) {
    const after = await s.baseline.counters();
    eventsLost = Math.max(0, result.eventsSent - (after.events - baselineBefore.events));
  }
  const windowMs = at1.t - at0.t;
  const cpuMs = at1.subject.cpuMs - at0.subject.cpuMs;
  const benchCpu = (at1.bench.user + at1.bench.system - at0.bench.user - at0.bench.system) / 1000;
  const setupNet: number[] = [];
  const setupRaw: number[] = [];
  const zam: number[] = [];
  for (const [uuid, ms] of result.setup) {
    const z = zammadMs.get(uuid) ?? 0;
    setupRaw.push(ms);
    zam.push(z);
    setupNet.push(Math.max(0, ms - z));
  }
  for (const a of [setupNet, setupRaw, zam]) a.sort((x, y) => x - y);
  const figures: LoadFigures = {
    cyclesPerSec: result.completedInWindow / (windowMs / 1000),
    cpuMsPerCall: result.completedInWindow > 0 ? cpuMs / result.completedInWindow : NaN,
    cpu: {
      subject: cpuMs / windowMs,
      generator: (at1.gens - at0.gens) / windowMs,
      zammadAndBench: benchCpu / windowMs,
      softirq: (at1.machine.softirqMs - at0.machine.softirqMs) / windowMs,
      foreign: Math.max(0, (at1.machine.busyMs - at0.machine.busyMs - cpuMs - (at1.gens - at0.gens) - benchCpu) / windowMs),
    },
    setup: {
      n: setupNet.length,
      p50: percentile(setupNet, 0.5),
      p99: percentile(setupNet, 0.99),
      max: setupNet[setupNet.length - 1] ?? NaN,
      rawP50: percentile(setupRaw, 0.5),
      rawP99: percentile(setupRaw, 0.99),
      zammadP50: percentile(zam, 0.5),
      zammadP99: percentile(zam, 0.99),
    },
    calls: { started: result.started, connected: result.connected, completed: result.completed, failed: result.failed, failures: result.failures },
    eventsSent: result.eventsSent,
    bytesSentPerCall: result.started > 0 ? result.bytesSent / result.started : 0,
    eventsLost,
    outOfOrder,
    generatorLoopDelayP99Ms: result.loopDelayP99Ms,
  };
  if (s.kind === 'adapter' && result.completedInWindow > 0) figures.logLinesPerCall = (at1.logLines - at0.logLines) / result.completedInWindow;
  if (m0 && m1) {
    const [a, z] = await Promise.all([m0, m1]);
    figures.adapterLoopLagP99Ms = (z['cti_nodejs_eventloop_lag_p99_seconds'] ?? NaN) * 1000;
    figures.adapterLoopLagMaxMs = (z['cti_nodejs_eventloop_lag_max_seconds'] ?? NaN) * 1000;
    const gc: Record<string, number> = {};
    for (const [k, v] of Object.entries(z)) {
      const kind = /^cti_nodejs_gc_duration_seconds_sum\{kind="(\w+)"\}$/.exec(k)?.[1];
      if (kind) gc[kind] = round(((v - (a[k] ?? 0)) * 1000) / (windowMs / 1000), 1);
    }
    figures.adapterGcMsPerSec = gc;
  }
  return figures;
}

/** A phase left out with --phases. */
function skipped(): LoadFigures {
  const none = { n: 0, p50: NaN, p99: NaN, max: NaN, rawP50: NaN, rawP99: NaN, zammadP50: NaN, zammadP99: NaN };
  return {
    cyclesPerSec: NaN,
    cpuMsPerCall: NaN,
    cpu: { subject: NaN, generator: NaN, zammadAndBench: NaN, softirq: NaN, foreign: NaN },
    setup: none,
    calls: { started: 0, connected: 0, completed: 0, failed: 0, failures: {} },
    eventsSent: 0,
    bytesSentPerCall: 0,
    eventsLost: 0,
    outOfOrder: 0,
    generatorLoopDelayP99Ms: NaN,
  };
}

interface HoldFigures {
  held: number;
  /** VmHWM of the subject once every call is held (the process started fresh for the memory phases). */
  peakRssMB: number;
  rssMB: number;
  failed: number;
  eventsLost: number;
  secondsToOpen: number;
  /** V8's view at the same moment (adapter only): heap used / total and memory outside the heap, MB. */
  heapUsedMB?: number;
  heapTotalMB?: number;
  externalMB?: number;
}

async function holdPhase(b: Bench, s: Subject, count: number): Promise<HoldFigures> {
  const tag = tagOf();
  b.zammad.reset();
  const pid = pidOf(s);
  const t0 = performance.now();
  let heldAt: { rss: ProcSample; t: number } | undefined;
  let onHeld!: () => void;
  const held = new Promise<void>((r) => (onHeld = r));
  const running = runJob(
    b,
    (share, i) => ({
      mode: 'hold',
      target: target(s),
      tag,
      count: i === 0 ? count - Math.floor(count * share) * (b.generators.length - 1) : Math.floor(count * share),
      openConcurrency: Math.max(1, Math.round(256 * share)),
      callTimeoutMs: 60_000,
      ...(b.opts.openRate > 0 ? { openRate: b.opts.openRate * share } : {}),
    }),
    (what) => {
      if (what === 'held') onHeld();
    },
  );
  await Promise.race([held, running]);
  // Every call answered on the switch; the adapter has posted each answer once Zammad has them all.
  if (s.kind === 'adapter') {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      let answers = 0;
      for (const p of b.zammad.posts) if (p.event === 'answer' && p.status === 200 && p.callId?.startsWith(tag)) answers++;
      if (answers >= count) break;
      await sleep(100);
    }
  }
  await sleep(1000); // let timers and GC settle: what stays is what 'count' open calls cost
  heldAt = { rss: sample(pid), t: performance.now() };
  const v8 = s.kind === 'adapter' ? await s.adapter.metrics() : {};
  if (process.env['BENCH_HEAPSNAPSHOT'] && s.kind === 'adapter') {
    s.adapter.proc.kill('SIGUSR2'); // --heapsnapshot-signal: written to the adapter's cwd
    await sleep(Number(process.env['BENCH_HEAPSNAPSHOT']));
  }
  for (const g of b.generators) g.release();
  const result = await running;
  const { lost } = await zammadAccount(b, s, tag, result.connected);
  return {
    held: count - result.failed,
    peakRssMB: heldAt.rss.hwmMB,
    rssMB: heldAt.rss.rssMB,
    failed: result.failed,
    eventsLost: lost,
    secondsToOpen: (heldAt.t - t0) / 1000 - 1,
    ...(s.kind === 'adapter'
      ? {
          heapUsedMB: round((v8['cti_nodejs_heap_size_used_bytes'] ?? NaN) / 2 ** 20, 1),
          heapTotalMB: round((v8['cti_nodejs_heap_size_total_bytes'] ?? NaN) / 2 ** 20, 1),
          externalMB: round((v8['cti_nodejs_external_memory_bytes'] ?? NaN) / 2 ** 20, 1),
        }
      : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Report

interface Report {
  when: string;
  machine: ReturnType<typeof machine>;
  mode: 'full' | 'smoke';
  settings: Record<string, unknown>;
  cyclesPerSec: number;
  baselineCyclesPerSec: number;
  setupP50Ms: number;
  setupP99Ms: number;
  setupMaxMs: number;
  baselineSetupP50Ms: number;
  baselineSetupP99Ms: number;
  cpuMsPerCall: number;
  baselineCpuMsPerCall: number;
  rss1kMB: number;
  rss10kMB: number;
  baselineRss1kMB: number;
  baselineRss10kMB: number;
  eventsLost: number;
  /** Calls that did not end cleanly (timed out, closed early): must be 0 as well. */
  callsFailed: number;
  ratios: Record<string, number>;
  targets: Record<string, { target: string; met: boolean }>;
  adapter: Record<string, { throughput: LoadFigures; latency: LoadFigures }>;
  baseline: { throughput: LoadFigures; latency: LoadFigures } | null;
  memory: { adapter: HoldFigures[]; baseline: HoldFigures[] };
}

function table(r: Report, levels: string[]): string {
  const main = levels[0] as string;
  const rows: string[][] = [];
  const a = (lvl: string) => r.adapter[lvl] as { throughput: LoadFigures; latency: LoadFigures };
  const bl = r.baseline;
  const fmt = (n: number | undefined, d = 2) => (n === undefined || !Number.isFinite(n) ? '—' : String(round(n, d)));
  const head = ['figure', ...levels.map((l) => `adapter LOG_LEVEL=${l}`), 'baseline', `adapter/baseline (${main})`, 'target'];
  rows.push(head);
  const line = (name: string, pick: (f: { throughput: LoadFigures; latency: LoadFigures }) => number, ratio: boolean, target: string, d = 2) => {
    const av = levels.map((l) => fmt(pick(a(l)), d));
    const bv = bl ? pick(bl) : NaN;
    rows.push([name, ...av, fmt(bv, d), ratio && bl ? fmt(pick(a(main)) / bv, 2) : '—', target]);
  };
  line('call cycles/s (sustained)', (f) => f.throughput.cyclesPerSec, true, '≥ 1000; ≥ 1/3 baseline', 0);
  line(`setup latency p50 ms @${r.settings['rate']}/s`, (f) => f.latency.setup.p50, true, '', 3);
  line(`setup latency p99 ms @${r.settings['rate']}/s`, (f) => f.latency.setup.p99, true, '≤ 2', 3);
  line(`setup latency max ms @${r.settings['rate']}/s`, (f) => f.latency.setup.max, true, '', 3);
  line('CPU ms per call (subject only)', (f) => f.throughput.cpuMsPerCall, true, '', 3);
  line(`CPU ms per call @${r.settings['rate']}/s`, (f) => f.latency.cpuMsPerCall, true, '', 3);
  const mem = (list: HoldFigures[], i: number) => list[i]?.peakRssMB;
  const holds = r.settings['holds'] as number[];
  holds.forEach((h, i) => {
    const av = mem(r.memory.adapter, i);
    const bv = mem(r.memory.baseline, i);
    rows.push([`peak RSS MB, ${h} calls held`, fmt(av, 0), ...levels.slice(1).map(() => '—'), fmt(bv, 0), av !== undefined && bv !== undefined ? fmt(av / bv, 2) : '—', h === 10_000 ? '≤ 300' : '']);
  });
  const lost = [...levels.map((l) => a(l).throughput.eventsLost + a(l).latency.eventsLost)];
  rows.push(['events lost', ...lost.map(String), bl ? String(bl.throughput.eventsLost + bl.latency.eventsLost) : '—', '—', '0']);
  rows.push(['CPU share: subject / generator / zammad+bench (cores, throughput)', ...levels.map((l) => cpuShare(a(l).throughput.cpu)), bl ? cpuShare(bl.throughput.cpu) : '—', '—', '2 cores in all']);
  const widths = head.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  const out = rows.map((row) => '| ' + row.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ') + ' |');
  out.splice(1, 0, '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
  return out.join('\n');
}

/** One log line about who used the CPUs in a window; warns when something outside the bench did. */
function cpuLine(f: LoadFigures): string {
  const c = f.cpu;
  const text = `cores: subject ${round(c.subject, 2)}, generator ${round(c.generator, 2)}, zammad+bench ${round(c.zammadAndBench, 2)}, softirq ${round(c.softirq, 2)}, other processes ${round(c.foreign, 2)}`;
  return c.foreign > 0.15 ? `${text} — WARNING: other work on the machine during this window; figures are disturbed` : text;
}

function cpuShare(c: CpuShare): string {
  return `${round(c.subject, 2)} / ${round(c.generator, 2)} / ${round(c.zammadAndBench, 2)}`;
}

// ---------------------------------------------------------------------------------------------
// Main

export async function main(argv: string[]): Promise<Report> {
  const opts = parseOptions(argv);
  const limit = openFilesLimit();
  const maxHold = Math.max(0, Math.floor((limit - 500) / 1));
  if (opts.holds.some((h) => h > maxHold)) {
    log(`open-files limit is ${limit}: holds above ${maxHold} calls are skipped (raise it with ulimit -n)`);
    opts.holds = opts.holds.filter((h) => h <= maxHold);
  }
  const pinning = opts.pin ? pinProcesses() : 'not pinned (the OS schedules the processes; --pin to give the subject a CPU of its own)';
  log(`CPU: ${pinning}`);
  const templates = loadTemplates(opts.transcript);
  log(`call template: ${templates.source}, ${templates.eventsPerCall} events, ${templates.bytesPerCall} bytes from the switch per call; bridge ${templates.bridge}`);
  // --no-build: run what is already in bench/.build (experiments on the compiled program).
  // --adapter-root DIR: measure another checkout of the adapter (before/after).
  const adapterRoot = argv.includes('--adapter-root') ? argv[argv.indexOf('--adapter-root') + 1] : undefined;
  const mainJs = adapterRoot ? build(adapterRoot) : opts.tsx ? null : argv.includes('--no-build') ? join(BENCH, '.build', 'src', 'main.js') : build();
  const profDir = join(BENCH, 'results');
  if (opts.cpuProf) mkdirSync(profDir, { recursive: true });

  const token = `bench-${randomBytes(8).toString('hex')}`;
  const zammad = new ZammadDouble({ token, now: () => performance.timeOrigin + performance.now() });
  await zammad.start();
  const generators = await Promise.all(Array.from({ length: opts.generators }, (_, i) => startGenerator(i, opts.transcript)));
  const b: Bench = { opts, zammad, generators, eventsPerCall: templates.eventsPerCall };
  const children: { stop(): unknown }[] = [...generators];
  const report: Partial<Report> & { adapter: Report['adapter']; memory: Report['memory'] } = { adapter: {}, memory: { adapter: [], baseline: [] } };
  try {
    for (const level of opts.logLevels) {
      log(`adapter, LOG_LEVEL=${level}: starting`);
      const adapter = await startAdapter({ main: mainJs, zammadUrl: zammad.url, bridge: templates.bridge, logLevel: level, ...(opts.cpuProf ? { cpuProfDir: profDir } : {}), tag: level, nodeOptions: opts.adapterNodeOptions });
      children.push(adapter);
      const s: Subject = { kind: 'adapter', adapter };
      log(`adapter, LOG_LEVEL=${level}: throughput, ${opts.concurrency} calls in flight, ${opts.durationMs / 1000} s`);
      const throughput = opts.phases.includes('throughput') ? await loadPhase(b, s, 'cycle') : skipped();
      log(`  ${round(throughput.cyclesPerSec, 0)} cycles/s, ${round(throughput.cpuMsPerCall, 3)} CPU ms/call, lost ${throughput.eventsLost}; ${cpuLine(throughput)}`);
      log(`adapter, LOG_LEVEL=${level}: latency at ${opts.rate} calls/s, ${opts.durationMs / 1000} s`);
      const latency = opts.phases.includes('latency') ? await loadPhase(b, s, 'rate') : skipped();
      log(`  setup p50 ${round(latency.setup.p50, 3)} ms, p99 ${round(latency.setup.p99, 3)} ms, max ${round(latency.setup.max, 3)} ms, lost ${latency.eventsLost}; ${cpuLine(latency)}, ${round(latency.cpuMsPerCall, 3)} CPU ms/call, loop lag p99 ${round(latency.adapterLoopLagP99Ms ?? NaN, 1)} max ${round(latency.adapterLoopLagMaxMs ?? NaN, 1)} ms, GC ms/s ${JSON.stringify(latency.adapterGcMsPerSec)}`);
      if (adapter.problems.length > 0) log(`  adapter warnings/errors (first ${Math.min(5, adapter.problems.length)}):\n    ${adapter.problems.slice(0, 5).join('\n    ')}`);
      await adapter.stop();
      report.adapter[level] = { throughput, latency };
    }

    if (opts.baseline) {
      log('baseline: starting');
      const baseline = await startBaseline(templates.bridge);
      children.push(baseline);
      const s: Subject = { kind: 'baseline', baseline };
      const throughput = opts.phases.includes('throughput') ? await loadPhase(b, s, 'cycle') : skipped();
      log(`  baseline ${round(throughput.cyclesPerSec, 0)} cycles/s, ${round(throughput.cpuMsPerCall, 3)} CPU ms/call`);
      const latency = opts.phases.includes('latency') ? await loadPhase(b, s, 'rate') : skipped();
      log(`  baseline setup p50 ${round(latency.setup.p50, 3)} ms, p99 ${round(latency.setup.p99, 3)} ms`);
      await baseline.stop();
      report.baseline = { throughput, latency };
    }

    if (opts.holds.length > 0 && opts.phases.includes('memory')) {
      const level = opts.logLevels[0] ?? 'info';
      log(`memory: fresh adapter (LOG_LEVEL=${level}), holding ${opts.holds.join(' then ')} calls, opened at ${opts.openRate > 0 ? `${opts.openRate} calls/s` : 'full speed'}`);
      const adapter = await startAdapter({ main: mainJs, zammadUrl: zammad.url, bridge: templates.bridge, logLevel: level, tag: 'memory', nodeOptions: opts.adapterNodeOptions });
      children.push(adapter);
      for (const count of opts.holds) {
        const f = await holdPhase(b, { kind: 'adapter', adapter }, count);
        log(`  adapter, ${count} held: VmHWM ${round(f.peakRssMB, 0)} MB, VmRSS ${round(f.rssMB, 0)} MB (V8 heap ${f.heapUsedMB}/${f.heapTotalMB} MB, external ${f.externalMB} MB; opened in ${round(f.secondsToOpen, 1)} s), lost ${f.eventsLost}, failed ${f.failed}`);
        report.memory.adapter.push(f);
      }
      await adapter.stop();
      if (opts.baseline) {
        const baseline = await startBaseline(templates.bridge);
        children.push(baseline);
        for (const count of opts.holds) {
          const f = await holdPhase(b, { kind: 'baseline', baseline }, count);
          log(`  baseline, ${count} held: VmHWM ${round(f.peakRssMB, 0)} MB`);
          report.memory.baseline.push(f);
        }
        await baseline.stop();
      }
    }
  } finally {
    for (const c of children) await c.stop();
    await zammad.stop();
  }

  const main = report.adapter[opts.logLevels[0] ?? 'info'] as { throughput: LoadFigures; latency: LoadFigures };
  const bl = report.baseline ?? null;
  const holdFig = (list: HoldFigures[], n: number) => list[opts.holds.indexOf(n)]?.peakRssMB ?? NaN;
  const lost =
    Object.values(report.adapter).reduce((n, f) => n + f.throughput.eventsLost + f.latency.eventsLost + f.throughput.outOfOrder + f.latency.outOfOrder, 0) +
    report.memory.adapter.reduce((n, f) => n + f.eventsLost, 0) +
    (bl ? bl.throughput.eventsLost + bl.latency.eventsLost : 0);
  const failed =
    Object.values(report.adapter).reduce((n, f) => n + f.throughput.calls.failed + f.latency.calls.failed, 0) +
    report.memory.adapter.reduce((n, f) => n + f.failed, 0) +
    report.memory.baseline.reduce((n, f) => n + f.failed, 0) +
    (bl ? bl.throughput.calls.failed + bl.latency.calls.failed : 0);
  const full: Report = {
    when: new Date().toISOString(),
    machine: machine(),
    mode: opts.smoke ? 'smoke' : 'full',
    settings: {
      transcript: templates.source,
      eventsPerCall: templates.eventsPerCall,
      switchBytesPerCall: templates.bytesPerCall,
      warmupMs: opts.warmupMs,
      durationMs: opts.durationMs,
      concurrency: opts.concurrency,
      rate: opts.rate,
      holds: opts.holds,
      logLevels: opts.logLevels,
      generators: opts.generators,
      pinning,
      openRate: opts.openRate,
      adapterNodeOptions: opts.adapterNodeOptions,
      adapterRunAs: opts.tsx ? 'node --import tsx src/main.ts' : `node ${mainJs} (tsc -p tsconfig.build.json)`,
    },
    cyclesPerSec: round(main.throughput.cyclesPerSec, 1),
    baselineCyclesPerSec: round(bl?.throughput.cyclesPerSec ?? NaN, 1),
    setupP50Ms: round(main.latency.setup.p50, 3),
    setupP99Ms: round(main.latency.setup.p99, 3),
    setupMaxMs: round(main.latency.setup.max, 3),
    baselineSetupP50Ms: round(bl?.latency.setup.p50 ?? NaN, 3),
    baselineSetupP99Ms: round(bl?.latency.setup.p99 ?? NaN, 3),
    cpuMsPerCall: round(main.throughput.cpuMsPerCall, 3),
    baselineCpuMsPerCall: round(bl?.throughput.cpuMsPerCall ?? NaN, 3),
    rss1kMB: round(holdFig(report.memory.adapter, 1000), 1),
    rss10kMB: round(holdFig(report.memory.adapter, 10_000), 1),
    baselineRss1kMB: round(holdFig(report.memory.baseline, 1000), 1),
    baselineRss10kMB: round(holdFig(report.memory.baseline, 10_000), 1),
    eventsLost: lost,
    callsFailed: failed,
    ratios: bl
      ? {
          cyclesPerSec: round(main.throughput.cyclesPerSec / bl.throughput.cyclesPerSec, 3),
          setupP50Ms: round(main.latency.setup.p50 / bl.latency.setup.p50, 2),
          setupP99Ms: round(main.latency.setup.p99 / bl.latency.setup.p99, 2),
          cpuMsPerCall: round(main.throughput.cpuMsPerCall / bl.throughput.cpuMsPerCall, 2),
          rss1kMB: round(holdFig(report.memory.adapter, 1000) / holdFig(report.memory.baseline, 1000), 2),
          rss10kMB: round(holdFig(report.memory.adapter, 10_000) / holdFig(report.memory.baseline, 10_000), 2),
        }
      : {},
    targets: {},
    adapter: report.adapter,
    baseline: bl,
    memory: report.memory,
  };
  full.targets = {
    cyclesPerSec: { target: '≥ 1000', met: full.cyclesPerSec >= 1000 },
    setupP99Ms: { target: `≤ 2 at ${opts.rate}/s`, met: full.setupP99Ms <= 2 },
    rss10kMB: { target: '≤ 300', met: full.rss10kMB <= 300 },
    throughputVsBaseline: { target: '≥ 1/3', met: (full.ratios['cyclesPerSec'] ?? 0) >= 1 / 3 },
    eventsLost: { target: '0', met: full.eventsLost === 0 },
    callsFailed: { target: '0', met: full.callsFailed === 0 },
  };

  process.stdout.write(`\n${table(full, opts.logLevels)}\n\n`);
  process.stdout.write(
    `targets: ${Object.entries(full.targets)
      .map(([k, t]) => `${k} ${t.target}: ${t.met ? 'met' : 'NOT met'}`)
      .join('; ')}\n`,
  );
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, JSON.stringify(full, null, 2) + '\n');
  process.stdout.write(`written: ${opts.out}\n`);
  return full;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(
    (r) => process.exit(r.eventsLost === 0 && r.callsFailed === 0 ? 0 : 1),
    (err: unknown) => {
      process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(2);
    },
  );
}
