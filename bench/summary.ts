/**
 * The JSON of a run (bench/results/latest.json): the headline figures of both routing modes,
 * their ratios to the bare baseline and the targets, from what the phases measured.
 * Key names: bench/README.md, "Files".
 */
import type { HoldFigures, LoadFigures } from './measure.js';
import type { OverloadFigures } from './overload.js';
import type { machine } from './procstat.js';
import { round } from './util.js';

/** One subject in one routing mode: sustained throughput and the latency phase at each rate. */
export interface ModeFigures {
  throughput: LoadFigures;
  /** At the first of the rates (500/s): the key of before there were several rates. */
  latency: LoadFigures;
  /** Every latency phase, by its rate ("500", "1000"). */
  latencyByRate: Record<string, LoadFigures>;
}

/** What the phases of a run measured. */
export interface Measured {
  /** Bridge mode, one adapter per log level. */
  adapter: Record<string, ModeFigures>;
  /** Bridge mode. */
  baseline: ModeFigures | null;
  dialplan: {
    setApps: number;
    eventsPerCallOnSwitch: number;
    adapter: ModeFigures;
    baseline: ModeFigures | null;
    /** The overload phase, on the same adapter (null: not run). */
    overload: OverloadFigures | null;
  } | null;
  memory: { adapter: HoldFigures[]; baseline: HoldFigures[] };
}

/** The headline figures of one mode, the same keys for bridge mode (top level) and dialplan mode (`dialplan.*`). */
export interface Headline {
  cyclesPerSec: number;
  baselineCyclesPerSec: number;
  ratioToBaseline: number;
  // Setup figures at the first rate (500/s) and at 1000/s.
  setupP50Ms: number;
  setupP99Ms: number;
  setupMaxMs: number;
  setupP50Ms1000: number;
  setupP99Ms1000: number;
  setupMaxMs1000: number;
  baselineSetupP50Ms: number;
  baselineSetupP99Ms: number;
  baselineSetupP99Ms1000: number;
  cpuMsPerCall: number;
  baselineCpuMsPerCall: number;
  /** Processes of the adapter counted in CPU per call (its process tree). */
  adapterProcesses: number;
  eventsLost: number;
  /** Calls that did not end cleanly (timed out, closed early): must be 0 as well. */
  callsFailed: number;
  baseline: ModeFigures | null;
}

/** Dialplan mode in the JSON: its headline figures beside the phases' detail (`throughput`, `latency…`, `baseline`). */
export interface DialplanReport extends ModeFigures, Headline {
  setApps: number;
  /** CPU per call against bridge mode's (same log level, same run). */
  cpuVsBridge: number;
  /** Events that pass the adapter's filters, per call; the switch has `eventsPerCallOnSwitch`. */
  eventsPerCall: number;
  eventsPerCallOnSwitch: number;
  // eventsLost, callsFailed: every dialplan-mode phase, adapter and baseline (the overload phase:
  // its events lost only; its calls failed are its own figure).
  baseline: ModeFigures | null;
  overload: OverloadFigures | null;
}

export interface Report extends Headline {
  when: string;
  machine: ReturnType<typeof machine>;
  mode: 'full' | 'smoke';
  settings: Record<string, unknown>;
  // Headline: bridge mode, the first log level.
  /** Sum of VmRSS over the adapter's processes once the calls are held (the headline memory figure). */
  rss1kMB: number;
  rss10kMB: number;
  /** Sum of each adapter process's own VmHWM at the same moment (peaks need not coincide: an upper bound). */
  rss1kPeakSumMB: number;
  rss10kPeakSumMB: number;
  memoryProcesses: number;
  baselineRss1kMB: number;
  baselineRss10kMB: number;
  ratios: Record<string, number>;
  targets: Record<string, { target: string; met: boolean }>;
  adapter: Record<string, ModeFigures>;
  baseline: ModeFigures | null;
  memory: { adapter: HoldFigures[]; baseline: HoldFigures[] };
  dialplan: DialplanReport | null;
}

const at = (m: ModeFigures | null | undefined, rate: number): LoadFigures | undefined => m?.latencyByRate[String(rate)];
const p = (f: LoadFigures | undefined, k: 'p50' | 'p99' | 'max') => round(f?.setup[k] ?? NaN, 3);

/** Events lost (or out of Zammad's order) and calls failed in a mode's phases. */
export function account(list: (ModeFigures | null | undefined)[]): { lost: number; failed: number } {
  let lost = 0;
  let failed = 0;
  for (const m of list) {
    if (!m) continue;
    for (const f of [m.throughput, ...Object.values(m.latencyByRate)]) {
      lost += f.eventsLost + f.outOfOrder;
      failed += f.calls.failed;
    }
  }
  return { lost, failed };
}

export function summarise(
  m: Measured,
  head: Pick<Report, 'when' | 'machine' | 'mode' | 'settings'>,
  levels: string[],
  rates: number[],
  holds: number[],
): Report {
  const first = rates[0] ?? 500;
  const main = m.adapter[levels[0] ?? 'info'];
  const bl = m.baseline;
  const hold = (list: HoldFigures[], n: number, k: 'rssMB' | 'peakRssMB') =>
    round(list[holds.indexOf(n)]?.[k] ?? NaN, 1);
  const dp = m.dialplan;
  // Every ratio is one of the figures as reported, so a reader who divides them gets it exactly.
  const cycles = (f: ModeFigures | null | undefined) => round(f?.throughput.cyclesPerSec ?? NaN, 1);
  const dialplan: DialplanReport | null = dp
    ? {
        setApps: dp.setApps,
        cyclesPerSec: cycles(dp.adapter),
        setupP50Ms: p(at(dp.adapter, first), 'p50'),
        setupP99Ms: p(at(dp.adapter, first), 'p99'),
        setupMaxMs: p(at(dp.adapter, first), 'max'),
        setupP50Ms1000: p(at(dp.adapter, 1000), 'p50'),
        setupP99Ms1000: p(at(dp.adapter, 1000), 'p99'),
        setupMaxMs1000: p(at(dp.adapter, 1000), 'max'),
        cpuMsPerCall: round(dp.adapter.throughput.cpuMsPerCall, 3),
        ratioToBaseline: round(cycles(dp.adapter) / cycles(dp.baseline), 3),
        cpuVsBridge: round(dp.adapter.throughput.cpuMsPerCall / (main?.throughput.cpuMsPerCall ?? NaN), 2),
        baselineCyclesPerSec: cycles(dp.baseline),
        baselineSetupP50Ms: p(at(dp.baseline, first), 'p50'),
        baselineSetupP99Ms: p(at(dp.baseline, first), 'p99'),
        baselineSetupP99Ms1000: p(at(dp.baseline, 1000), 'p99'),
        baselineCpuMsPerCall: round(dp.baseline?.throughput.cpuMsPerCall ?? NaN, 3),
        eventsPerCall: round(dp.adapter.throughput.eventsSent / Math.max(1, dp.adapter.throughput.calls.started), 1),
        eventsPerCallOnSwitch: dp.eventsPerCallOnSwitch,
        adapterProcesses: Math.max(
          dp.adapter.throughput.processes,
          ...Object.values(dp.adapter.latencyByRate).map((f) => f.processes),
        ),
        ...((a) => ({ eventsLost: a.lost + (dp.overload?.eventsLost ?? 0), callsFailed: a.failed }))(
          account([dp.adapter, dp.baseline]),
        ),
        throughput: dp.adapter.throughput,
        latency: dp.adapter.latency,
        latencyByRate: dp.adapter.latencyByRate,
        baseline: dp.baseline,
        overload: dp.overload,
      }
    : null;
  const all = account([...Object.values(m.adapter), bl, dp?.adapter, dp?.baseline]);
  const lost = all.lost + m.memory.adapter.reduce((n, f) => n + f.eventsLost, 0) + (dp?.overload?.eventsLost ?? 0);
  const failed = all.failed + [...m.memory.adapter, ...m.memory.baseline].reduce((n, f) => n + f.failed, 0);
  const r: Report = {
    ...head,
    cyclesPerSec: cycles(main),
    baselineCyclesPerSec: cycles(bl),
    ratioToBaseline: round(cycles(main) / cycles(bl), 3),
    setupP50Ms: p(at(main, first), 'p50'),
    setupP99Ms: p(at(main, first), 'p99'),
    setupMaxMs: p(at(main, first), 'max'),
    setupP50Ms1000: p(at(main, 1000), 'p50'),
    setupP99Ms1000: p(at(main, 1000), 'p99'),
    setupMaxMs1000: p(at(main, 1000), 'max'),
    baselineSetupP50Ms: p(at(bl, first), 'p50'),
    baselineSetupP99Ms: p(at(bl, first), 'p99'),
    baselineSetupP99Ms1000: p(at(bl, 1000), 'p99'),
    cpuMsPerCall: round(main?.throughput.cpuMsPerCall ?? NaN, 3),
    baselineCpuMsPerCall: round(bl?.throughput.cpuMsPerCall ?? NaN, 3),
    adapterProcesses: main
      ? Math.max(main.throughput.processes, ...Object.values(main.latencyByRate).map((f) => f.processes))
      : NaN,
    rss1kMB: hold(m.memory.adapter, 1000, 'rssMB'),
    rss10kMB: hold(m.memory.adapter, 10_000, 'rssMB'),
    rss1kPeakSumMB: hold(m.memory.adapter, 1000, 'peakRssMB'),
    rss10kPeakSumMB: hold(m.memory.adapter, 10_000, 'peakRssMB'),
    memoryProcesses: m.memory.adapter[0]?.processes ?? NaN,
    baselineRss1kMB: hold(m.memory.baseline, 1000, 'rssMB'),
    baselineRss10kMB: hold(m.memory.baseline, 10_000, 'rssMB'),
    eventsLost: lost,
    callsFailed: failed,
    ratios: {},
    targets: {},
    adapter: m.adapter,
    baseline: bl,
    memory: m.memory,
    dialplan,
  };
  r.ratios = bl
    ? {
        cyclesPerSec: r.ratioToBaseline,
        setupP50Ms: round(r.setupP50Ms / r.baselineSetupP50Ms, 2),
        setupP99Ms: round(r.setupP99Ms / r.baselineSetupP99Ms, 2),
        setupP99Ms1000: round(r.setupP99Ms1000 / r.baselineSetupP99Ms1000, 2),
        cpuMsPerCall: round(r.cpuMsPerCall / r.baselineCpuMsPerCall, 2),
        rss1kMB: round(r.rss1kMB / r.baselineRss1kMB, 2),
        rss10kMB: round(r.rss10kMB / r.baselineRss10kMB, 2),
      }
    : {};
  // A target is listed only where its figure was measured in this run.
  const targets: [string, number, string, (n: number) => boolean][] = [
    ['cyclesPerSec', r.cyclesPerSec, '≥ 1000', (n) => n >= 1000],
    ['throughputVsBaseline', r.ratioToBaseline, '≥ 1/3', (n) => n >= 1 / 3],
    ['setupP99Ms', r.setupP99Ms, `≤ 2 at ${first}/s`, (n) => n <= 2],
    ['setupP99Ms1000', r.setupP99Ms1000, '≤ 5 at 1000/s', (n) => n <= 5],
    ['dialplanCyclesPerSec', dialplan?.cyclesPerSec ?? NaN, '≥ 1000', (n) => n >= 1000],
    ['dialplanThroughputVsBaseline', dialplan?.ratioToBaseline ?? NaN, '≥ 1/3', (n) => n >= 1 / 3],
    ['dialplanSetupP99Ms', dialplan?.setupP99Ms ?? NaN, `≤ 2 at ${first}/s`, (n) => n <= 2],
    ['dialplanSetupP99Ms1000', dialplan?.setupP99Ms1000 ?? NaN, '≤ 5 at 1000/s', (n) => n <= 5],
    ['dialplanCpuVsBridge', dialplan?.cpuVsBridge ?? NaN, '≤ 1.5 × bridge mode', (n) => n <= 1.5],
    ['rss10kMB', r.rss10kMB, '≤ 300', (n) => n <= 300],
    ...overloadTargets(dialplan?.overload ?? null),
    ['eventsLost', lost, '0', (n) => n === 0],
    ['callsFailed', failed, '0', (n) => n === 0],
  ];
  for (const [key, value, target, met] of targets)
    if (Number.isFinite(value)) r.targets[key] = { target, met: met(value) };
  return r;
}

/** The overload phase's targets (issue 21): no call waits past the bound, a short tail, no collapse, nothing lost. */
export function overloadTargets(o: OverloadFigures | null): [string, number, string, (n: number) => boolean][] {
  if (!o) return [];
  return [
    ['overloadCallsFailed', o.callsFailed, '0', (n) => n === 0],
    ['overloadSetupP99Ms', o.setupP99Ms, '≤ 250, every call counted', (n) => n <= 250],
    ['overloadGoodput', o.goodputVsCapacity, '≥ 0.9 × capacity', (n) => n >= 0.9],
    ['overloadEventsLost', o.eventsLost, '0', (n) => n === 0],
  ];
}
