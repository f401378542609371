/** The report: the JSON written to --out and the table printed. */
import { machine } from './procstat.js';
import type { CpuShare, LoadFigures, HoldFigures } from './measure.js';
import { round } from './util.js';

export interface Report {
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
  /** Dialplan mode: each call handed back and routed by a dialplan of `setApps` set apps (dialplan-frames.ts). */
  dialplan: { setApps: number; throughput: LoadFigures } | null;
}

export function table(r: Report, levels: string[]): string {
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
  if (r.dialplan) {
    const d = r.dialplan.throughput;
    const bridge = a(main).throughput;
    rows.push([`dialplan mode, ${r.dialplan.setApps} set apps: call cycles/s`, fmt(d.cyclesPerSec, 0), ...levels.slice(1).map(() => '—'), '—', `${fmt(d.cyclesPerSec / bridge.cyclesPerSec, 2)} of bridge mode`, '≥ 1000']);
    rows.push([`dialplan mode, ${r.dialplan.setApps} set apps: CPU ms per call`, fmt(d.cpuMsPerCall, 3), ...levels.slice(1).map(() => '—'), '—', `${fmt(d.cpuMsPerCall / bridge.cpuMsPerCall, 2)} × bridge mode`, '≤ 1.5 × bridge mode']);
    rows.push([`dialplan mode: events reaching the adapter per call`, fmt(d.eventsSent / Math.max(1, d.calls.started), 1), ...levels.slice(1).map(() => '—'), '—', '—', '']);
  }
  const lost = [...levels.map((l) => a(l).throughput.eventsLost + a(l).latency.eventsLost + (l === main && r.dialplan ? r.dialplan.throughput.eventsLost : 0))];
  rows.push(['events lost', ...lost.map(String), bl ? String(bl.throughput.eventsLost + bl.latency.eventsLost) : '—', '—', '0']);
  rows.push(['CPU share: subject / generator / zammad+bench (cores, throughput)', ...levels.map((l) => cpuShare(a(l).throughput.cpu)), bl ? cpuShare(bl.throughput.cpu) : '—', '—', '2 cores in all']);
  const widths = head.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  const out = rows.map((row) => '| ' + row.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ') + ' |');
  out.splice(1, 0, '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
  return out.join('\n');
}

/** One log line about who used the CPUs in a window; warns when something outside the bench did. */
export function cpuLine(f: LoadFigures): string {
  const c = f.cpu;
  const text = `cores: subject ${round(c.subject, 2)}, generator ${round(c.generator, 2)}, zammad+bench ${round(c.zammadAndBench, 2)}, softirq ${round(c.softirq, 2)}, other processes ${round(c.foreign, 2)}`;
  return c.foreign > 0.15 ? `${text} — WARNING: other work on the machine during this window; figures are disturbed` : text;
}

export function cpuShare(c: CpuShare): string {
  return `${round(c.subject, 2)} / ${round(c.generator, 2)} / ${round(c.zammadAndBench, 2)}`;
}
