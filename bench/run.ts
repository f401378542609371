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
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ZammadDouble } from '../src/sim/zammad.js';
import { loadTemplates } from './frames.js';
import { loadDialplanTemplates } from './dialplan-frames.js';
import { machine, openFilesLimit } from './procstat.js';
import { type Subject, type LoadFigures, type Bench, loadPhase, skipped, type HoldFigures, holdPhase } from './measure.js';
import { parseOptions } from './options.js';
import { pinProcesses, build, startAdapter, startGenerator, startBaseline } from './processes.js';
import { type Report, table, cpuLine } from './report.js';
import { BENCH, round, log } from './util.js';

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
  const report: Partial<Report> & { adapter: Report['adapter']; memory: Report['memory'] } = { adapter: {}, memory: { adapter: [], baseline: [] }, dialplan: null };
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

    if (opts.phases.includes('dialplan')) {
      const level = opts.logLevels[0] ?? 'info';
      const dp = loadDialplanTemplates();
      log(`adapter, dialplan mode (DEFAULT_BRIDGE empty), LOG_LEVEL=${level}: ${opts.concurrency} calls in flight, each handed back and routed by a dialplan of ${dp.setApps} set apps (${dp.eventsPerCall} events, ${dp.bytesPerCall} bytes on the switch per call, before the adapter's filters); ${dp.source}`);
      const adapter = await startAdapter({ main: mainJs, zammadUrl: zammad.url, bridge: '', logLevel: level, ...(opts.cpuProf ? { cpuProfDir: profDir } : {}), tag: 'dialplan', nodeOptions: opts.adapterNodeOptions });
      children.push(adapter);
      const throughput = await loadPhase(b, { kind: 'adapter', adapter }, 'cycle', 'dialplan');
      log(`  ${round(throughput.cyclesPerSec, 0)} cycles/s, ${round(throughput.cpuMsPerCall, 3)} CPU ms/call, ${round(throughput.eventsSent / Math.max(1, throughput.calls.started), 1)} events/call reached the adapter, lost ${throughput.eventsLost}, failed ${throughput.calls.failed}; ${cpuLine(throughput)}`);
      if (adapter.problems.length > 0) log(`  adapter warnings/errors (first ${Math.min(5, adapter.problems.length)}):\n    ${adapter.problems.slice(0, 5).join('\n    ')}`);
      await adapter.stop();
      report.dialplan = { setApps: dp.setApps, throughput };
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
    (report.dialplan ? report.dialplan.throughput.eventsLost + report.dialplan.throughput.outOfOrder : 0) +
    (bl ? bl.throughput.eventsLost + bl.latency.eventsLost : 0);
  const failed =
    Object.values(report.adapter).reduce((n, f) => n + f.throughput.calls.failed + f.latency.calls.failed, 0) +
    report.memory.adapter.reduce((n, f) => n + f.failed, 0) +
    (report.dialplan?.throughput.calls.failed ?? 0) +
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
    dialplan: report.dialplan ?? null,
  };
  full.targets = {
    cyclesPerSec: { target: '≥ 1000', met: full.cyclesPerSec >= 1000 },
    setupP99Ms: { target: `≤ 2 at ${opts.rate}/s`, met: full.setupP99Ms <= 2 },
    rss10kMB: { target: '≤ 300', met: full.rss10kMB <= 300 },
    throughputVsBaseline: { target: '≥ 1/3', met: (full.ratios['cyclesPerSec'] ?? 0) >= 1 / 3 },
    ...(full.dialplan
      ? {
          dialplanCyclesPerSec: { target: '≥ 1000', met: full.dialplan.throughput.cyclesPerSec >= 1000 },
          dialplanCpuVsBridge: { target: '≤ 1.5 × bridge mode', met: full.dialplan.throughput.cpuMsPerCall <= 1.5 * main.throughput.cpuMsPerCall },
        }
      : {}),
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
