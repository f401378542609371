/** The table printed at the end of a run: every figure per routing mode, beside the baseline and the target. */
import type { CpuShare, LoadFigures } from './measure.js';
import { type ModeFigures, type Report, overloadTargets } from './summary.js';
import { round } from './util.js';

export function table(r: Report, levels: string[]): string {
  const main = levels[0] ?? 'info';
  const rates = (r.settings['rates'] as number[] | undefined) ?? [];
  const fmt = (n: number | undefined, d = 2) => (n === undefined || !Number.isFinite(n) ? '—' : String(round(n, d)));
  const head = [
    'figure',
    ...(levels.length > 0 ? levels : [main]).map((l) => `adapter LOG_LEVEL=${l}`),
    'bare ESL baseline',
    `adapter/baseline (${main})`,
    'target',
  ];
  const rows: string[][] = [head];
  const others = Math.max(0, levels.length - 1);
  /** A row of one mode: `subjects` the adapter per level (dialplan mode: the first only), then the baseline. */
  const modeRows = (
    label: string,
    subjects: (ModeFigures | undefined)[],
    bl: ModeFigures | null | undefined,
    targets: { cycles: string; p99: string },
  ) => {
    const line = (name: string, pick: (f: ModeFigures) => number | undefined, d: number, target = '', ratio = true) => {
      const av = subjects.map((f) => (f ? fmt(pick(f), d) : '—'));
      while (av.length < 1 + others) av.push('—');
      const a0 = subjects[0] ? pick(subjects[0]) : undefined;
      const bv = bl ? pick(bl) : undefined;
      rows.push([
        `${label}: ${name}`,
        ...av,
        fmt(bv, d),
        ratio && a0 !== undefined && bv !== undefined ? fmt(a0 / bv, 2) : '—',
        target,
      ]);
    };
    const lat = (f: ModeFigures, rate: number): LoadFigures | undefined => f.latencyByRate[String(rate)];
    line('call cycles/s (sustained)', (f) => f.throughput.cyclesPerSec, 0, targets.cycles);
    for (const rate of rates) {
      line(`setup p50 ms @${rate}/s`, (f) => lat(f, rate)?.setup.p50, 3);
      line(
        `setup p99 ms @${rate}/s`,
        (f) => lat(f, rate)?.setup.p99,
        3,
        rate === 500 || rate === 1000 ? targets.p99 : '',
      );
      line(`setup max ms @${rate}/s`, (f) => lat(f, rate)?.setup.max, 3);
    }
    line('CPU ms per call (sustained, all adapter processes)', (f) => f.throughput.cpuMsPerCall, 3);
    for (const rate of rates) line(`CPU ms per call @${rate}/s`, (f) => lat(f, rate)?.cpuMsPerCall, 3);
    line('processes counted (CPU)', (f) => f.throughput.processes, 0, '', false);
    line('events lost + out of order, calls failed', () => undefined, 0, '0, 0', false);
    const acc = (f: ModeFigures | null | undefined) => {
      if (!f) return '—';
      const list = [f.throughput, ...Object.values(f.latencyByRate)];
      return (
        `${list.reduce((n, x) => n + x.eventsLost + x.outOfOrder, 0)}, ` +
        `${list.reduce((n, x) => n + x.calls.failed, 0)}`
      );
    };
    const last = rows[rows.length - 1] as string[];
    subjects.forEach((f, i) => {
      last[1 + i] = acc(f);
    });
    last[2 + others] = acc(bl);
  };
  const bridge = levels.map((l) => r.adapter[l]);
  if (bridge.some(Boolean) || r.baseline)
    modeRows('bridge', bridge, r.baseline, { cycles: '≥ 1000; ≥ 1/3 baseline', p99: '≤ 2' });
  if (r.dialplan) {
    const d = r.dialplan;
    modeRows(`dialplan (${d.setApps} set apps)`, [d], d.baseline, { cycles: '≥ 1000; ≥ 1/3 baseline', p99: '≤ 2' });
    rows.push([
      `dialplan: CPU per call × bridge mode`,
      fmt(d.cpuVsBridge, 2),
      ...Array<string>(others).fill('—'),
      '—',
      '—',
      '≤ 1.5',
    ]);
    rows.push([
      `dialplan: events reaching the adapter per call (of ${d.eventsPerCallOnSwitch} on the switch)`,
      fmt(d.eventsPerCall, 1),
      ...Array<string>(others).fill('—'),
      '—',
      '—',
      '',
    ]);
  }
  const o = r.dialplan?.overload;
  if (o) {
    const pad = Array<string>(others).fill('—');
    const met = new Map(overloadTargets(o).map(([k, v, t, ok]) => [k, `${t}: ${ok(v) ? 'met' : 'NOT met'}`]));
    const row = (name: string, value: string, target = '') =>
      rows.push([`overload: ${name}`, value, ...pad, '—', '—', target]);
    row(
      `${fmt(o.rate, 0)} calls/s (2 × ${fmt(o.capacityPerSec, 0)}) for ${fmt(o.durationS, 1)} s, dialplan mode: calls`,
      String(o.calls),
    );
    row(`calls failed (waited past the ${o.boundMs} ms bound)`, String(o.callsFailed), met.get('overloadCallsFailed'));
    row('setup p99 ms, every call counted', fmt(o.setupP99Ms, 1), met.get('overloadSetupP99Ms'));
    row(
      'goodput (calls routed, ended, reported)/s; × capacity',
      `${fmt(o.goodputPerSec, 0)}; ${fmt(o.goodputVsCapacity, 2)}`,
      met.get('overloadGoodput'),
    );
    const by = o.fellOpenBy;
    row(
      'fell open (refused / no first command / let go / shed)',
      `${o.fellOpen} (${[by.refused, by.noFirstCommand, by.letGo, by.shed].join(' / ')})`,
    );
    row('events lost', String(o.eventsLost), met.get('overloadEventsLost'));
  }
  const holds = (r.settings['holds'] as number[] | undefined) ?? [];
  holds.forEach((h, i) => {
    const a = r.memory.adapter[i];
    const bv = r.memory.baseline[i];
    if (!a && !bv) return;
    const n = a ? ` (${a.processes} process${a.processes === 1 ? '' : 'es'})` : '';
    const pad = Array<string>(others).fill('—');
    rows.push([
      `memory: RSS MB, ${h} calls held, sum of VmRSS${n} (headline)`,
      fmt(a?.rssMB, 0),
      ...pad,
      fmt(bv?.rssMB, 0),
      a && bv ? fmt(a.rssMB / bv.rssMB, 2) : '—',
      h === 10_000 ? '≤ 300' : '',
    ]);
    rows.push([
      `memory: ${h} calls held, sum of each process's VmHWM / PSS`,
      a ? `${fmt(a.peakRssMB, 0)} / ${fmt(a.pssMB, 0)}` : '—',
      ...pad,
      bv ? `${fmt(bv.peakRssMB, 0)} / ${fmt(bv.pssMB, 0)}` : '—',
      '—',
      '',
    ]);
  });
  rows.push([
    'CPU share: subject / generator / zammad+bench (cores, bridge throughput)',
    ...levels.map((l) => (r.adapter[l] ? cpuShare(r.adapter[l].throughput.cpu) : '—')),
    r.baseline ? cpuShare(r.baseline.throughput.cpu) : '—',
    '—',
    '2 cores in all',
  ]);
  const widths = head.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  const out = rows.map((row) => `| ${row.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`);
  out.splice(1, 0, `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  return out.join('\n');
}

/** One log line about who used the CPUs in a window; warns when something outside the bench did. */
export function cpuLine(f: LoadFigures): string {
  const c = f.cpu;
  const text =
    `cores: subject ${round(c.subject, 2)}, generator ${round(c.generator, 2)}, ` +
    `zammad+bench ${round(c.zammadAndBench, 2)}, softirq ${round(c.softirq, 2)}, ` +
    `other processes ${round(c.foreign, 2)}`;
  return c.foreign > 0.15
    ? `${text} — WARNING: other work on the machine during this window; figures are disturbed`
    : text;
}

export function cpuShare(c: CpuShare): string {
  return `${round(c.subject, 2)} / ${round(c.generator, 2)} / ${round(c.zammadAndBench, 2)}`;
}
