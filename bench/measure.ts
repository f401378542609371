/**
 * Measurement: the load phase (sustained call cycles, or a fixed rate: throughput, added latency,
 * CPU per call from /proc) and the hold phase (memory per call held), with Zammad's account of
 * every event (lost, out of order).
 */
import { randomBytes } from 'node:crypto';
import type { ZammadDouble } from '@freeswitch-zammad-cti/sim/zammad';
import type { Job, JobResult, Target } from './loadgen.js';
import { machineCpu, sample, sampleTree, treeCpuMs, treePssMB, type TreeSample } from './procstat.js';
import type { Options } from './options.js';
import type { Adapter, GeneratorProc, BaselineProc } from './processes.js';
import { sleep, round, percentile } from './util.js';

export type Subject = { kind: 'adapter'; adapter: Adapter } | { kind: 'baseline'; baseline: BaselineProc };

export interface CpuShare {
  /** CPU time in the measurement window, as a share of one core: the subject's whole process tree, the generators… */
  subject: number;
  generator: number;
  zammadAndBench: number;
  /**
   * Kernel network work (softirq) on the machine, and busy CPU of processes outside the bench (other jobs on the
   * machine).
   */
  softirq: number;
  foreign: number;
}

export interface LoadFigures {
  routing: 'bridge' | 'dialplan';
  /** Latency phases: new calls a second; throughput phases: undefined (closed loop). */
  rate?: number;
  cyclesPerSec: number;
  /** CPU ms of the subject's process tree per completed call (window). */
  cpuMsPerCall: number;
  /** Processes of the subject counted (its tree at the end of the window). */
  processes: number;
  cpu: CpuShare;
  /**
   * n: calls of the window; missing: those of them that failed before the routing command, counted as the call timeout
   * (20 s).
   */
  setup: {
    n: number;
    missing: number;
    p50: number;
    p99: number;
    max: number;
    rawP50: number;
    rawP99: number;
    zammadP50: number;
    zammadP99: number;
  };
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

export interface Bench {
  opts: Options;
  zammad: ZammadDouble;
  generators: GeneratorProc[];
  eventsPerCall: number;
}

export function target(s: Subject): Target {
  return { host: '127.0.0.1', port: s.kind === 'adapter' ? s.adapter.eslPort : s.baseline.port };
}

/** The subject's root process: the adapter's, or the baseline's. */
export function pidOf(s: Subject): number {
  return s.kind === 'adapter' ? s.adapter.pid : s.baseline.pid;
}

/** Splits a job between the generators and merges what they report. */
export async function runJob(
  b: Bench,
  make: (share: number, i: number) => Job,
  onMark: (what: string) => void,
): Promise<JobResult> {
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
    setupMissing: 0,
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
    merged.setupMissing += r.setupMissing;
    merged.cpuMs += r.cpuMs;
    merged.loopDelayP99Ms = Math.max(merged.loopDelayP99Ms, r.loopDelayP99Ms);
    merged.loopDelayMaxMs = Math.max(merged.loopDelayMaxMs, r.loopDelayMaxMs);
    const o = r.overload;
    if (o && !merged.overload) merged.overload = { ...o, fellOpen: { ...o.fellOpen } };
    else if (o && merged.overload) {
      const m = merged.overload;
      for (const k of ['refused', 'noFirstCommand', 'letGo', 'shed'] as const) m.fellOpen[k] += o.fellOpen[k];
      m.fellOpenMs.push(...o.fellOpenMs);
      m.routed.push(...o.routed);
      m.completedRouted.push(...o.completedRouted);
      m.routedAll.push(...o.routedAll);
      m.failed += o.failed;
      m.routedLate += o.routedLate;
    }
  }
  return merged;
}

export const tagOf = () => randomBytes(4).toString('hex');

/** Waits until Zammad has every event of the phase's calls (or nothing moves any more), then counts. */
export async function zammadAccount(
  b: Bench,
  s: Subject,
  tag: string,
  connected: number,
): Promise<{ lost: number; outOfOrder: number; zammadMs: Map<string, number> }> {
  const expected = 3 * connected;
  const delivered = () => {
    const seen = new Set<string>();
    for (const p of b.zammad.posts)
      if (p.status === 200 && p.callId?.startsWith(tag) && p.event) seen.add(`${p.callId} ${p.event}`);
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

/**
 * `cycle`: sustained, `concurrency` calls in flight; `rate`: `rate` new calls a second (open loop).
 * `routing: 'dialplan'`: the calls are handed back and routed by a dialplan (dialplan-frames.ts).
 */
export async function loadPhase(
  b: Bench,
  s: Subject,
  mode: 'cycle' | 'rate',
  routing: 'bridge' | 'dialplan' = 'bridge',
  rate = b.opts.rates[0] ?? 500,
): Promise<LoadFigures> {
  const { opts } = b;
  const tag = tagOf();
  b.zammad.reset();
  const pid = pidOf(s);
  const genPids = b.generators.map((g) => g.pid);
  let at0:
    | {
        subject: TreeSample;
        gens: number;
        bench: NodeJS.CpuUsage;
        t: number;
        logLines: number;
        machine: ReturnType<typeof machineCpu>;
      }
    | undefined;
  let at1: typeof at0;
  const snap = () => ({
    subject: sampleTree(pid),
    gens: genPids.reduce((n, p) => n + sample(p).cpuMs, 0),
    bench: process.cpuUsage(),
    t: performance.now(),
    logLines: s.kind === 'adapter' ? s.adapter.logLines : 0,
    machine: machineCpu(),
  });
  const baselineBefore = s.kind === 'baseline' ? await s.baseline.counters() : undefined;
  let m0: Promise<Record<string, number>> | undefined;
  let m1: Promise<Record<string, number>> | undefined;
  const common = {
    target: target(s),
    tag,
    warmupMs: opts.warmupMs,
    durationMs: opts.durationMs,
    callTimeoutMs: 20_000,
  };
  const result = await runJob(
    b,
    (share) =>
      mode === 'cycle'
        ? { mode, ...common, concurrency: Math.max(1, Math.round(opts.concurrency * share)), routing }
        : { mode, ...common, rate: rate * share, routing },
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
  const cpuMs = treeCpuMs(at0.subject, at1.subject);
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
  // A call of the window that never got its routing command waited at least the call timeout:
  // counted as that, so that calls the subject could not take raise the percentiles instead of leaving them.
  for (let i = 0; i < result.setupMissing; i++) {
    setupNet.push(common.callTimeoutMs);
    setupRaw.push(common.callTimeoutMs);
  }
  for (const a of [setupNet, setupRaw, zam]) a.sort((x, y) => x - y);
  const figures: LoadFigures = {
    routing,
    ...(mode === 'rate' ? { rate } : {}),
    processes: Math.max(at0.subject.processes, at1.subject.processes),
    cyclesPerSec: result.completedInWindow / (windowMs / 1000),
    cpuMsPerCall: result.completedInWindow > 0 ? cpuMs / result.completedInWindow : NaN,
    cpu: {
      subject: cpuMs / windowMs,
      generator: (at1.gens - at0.gens) / windowMs,
      zammadAndBench: benchCpu / windowMs,
      softirq: (at1.machine.softirqMs - at0.machine.softirqMs) / windowMs,
      foreign: Math.max(
        0,
        (at1.machine.busyMs - at0.machine.busyMs - cpuMs - (at1.gens - at0.gens) - benchCpu) / windowMs,
      ),
    },
    setup: {
      n: setupNet.length,
      missing: result.setupMissing,
      p50: percentile(setupNet, 0.5),
      p99: percentile(setupNet, 0.99),
      max: setupNet[setupNet.length - 1] ?? NaN,
      rawP50: percentile(setupRaw, 0.5),
      rawP99: percentile(setupRaw, 0.99),
      zammadP50: percentile(zam, 0.5),
      zammadP99: percentile(zam, 0.99),
    },
    calls: {
      started: result.started,
      connected: result.connected,
      completed: result.completed,
      failed: result.failed,
      failures: result.failures,
    },
    eventsSent: result.eventsSent,
    bytesSentPerCall: result.started > 0 ? result.bytesSent / result.started : 0,
    eventsLost,
    outOfOrder,
    generatorLoopDelayP99Ms: result.loopDelayP99Ms,
  };
  if (s.kind === 'adapter' && result.completedInWindow > 0)
    figures.logLinesPerCall = (at1.logLines - at0.logLines) / result.completedInWindow;
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
export function skipped(routing: 'bridge' | 'dialplan' = 'bridge'): LoadFigures {
  const none = {
    n: 0,
    missing: 0,
    p50: NaN,
    p99: NaN,
    max: NaN,
    rawP50: NaN,
    rawP99: NaN,
    zammadP50: NaN,
    zammadP99: NaN,
  };
  return {
    routing,
    processes: 0,
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

export interface HoldFigures {
  held: number;
  /**
   * Once every call is held, over the subject's process tree (started fresh for the memory phases):
   * rssMB, the sum of VmRSS then — the headline, the memory the calls use (pages shared between
   * processes counted in each); peakRssMB, the sum of each process's VmHWM (its own peak since it
   * started: they need not coincide, an upper bound); pssMB, shared pages split (smaps_rollup).
   */
  rssMB: number;
  peakRssMB: number;
  pssMB: number;
  processes: number;
  failed: number;
  eventsLost: number;
  secondsToOpen: number;
  /** V8's view at the same moment (adapter only): heap used / total and memory outside the heap, MB. */
  heapUsedMB?: number;
  heapTotalMB?: number;
  externalMB?: number;
}

export async function holdPhase(b: Bench, s: Subject, count: number): Promise<HoldFigures> {
  const tag = tagOf();
  b.zammad.reset();
  const pid = pidOf(s);
  const t0 = performance.now();
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
      for (const p of b.zammad.posts)
        if (p.event === 'answer' && p.status === 200 && p.callId?.startsWith(tag)) answers++;
      if (answers >= count) break;
      await sleep(100);
    }
  }
  await sleep(1000); // let timers and GC settle: what stays is what 'count' open calls cost
  const heldAt: { rss: TreeSample; pssMB: number; t: number } = {
    rss: sampleTree(pid),
    pssMB: treePssMB(pid),
    t: performance.now(),
  };
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
    rssMB: heldAt.rss.rssMB,
    peakRssMB: heldAt.rss.hwmSumMB,
    pssMB: heldAt.pssMB,
    processes: heldAt.rss.processes,
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
