/**
 * `npm run bench`: throughput, added call-setup latency, CPU per call and memory of the real
 * adapter process, side by side with a bare baseline listener, on this machine.
 *
 *   node --import tsx bench/run.ts [--smoke] [--out FILE] [--cpu-prof] [--tsx] [--log-levels info,warn]
 *                                  [--modes bridge,dialplan] [--phases throughput,latency,memory]
 *                                  [--duration S] [--concurrency N] [--rates 500,1000] [--hold 1000,10000]
 *
 * Both routing modes: bridge (the adapter bridges) and dialplan (it hands the call back with
 * `transfer`, dialplan-frames.ts), each beside a bare baseline listener doing the same on the wire.
 * Processes: this one (orchestration + the Zammad double, answering at once on loopback with
 * keep-alive), the adapter (built with tsc and run with node, as `npm start` does), the load
 * generator (loadgen.ts, a child) and the baseline listener (baseline.ts, a child). They share
 * the machine's cores; every figure per call is taken from /proc/<pid>/stat of the adapter's
 * process, which counts only their own CPU time, and the other processes' share is printed beside it.
 * How each figure is obtained: bench/README.md.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ZammadDouble } from '@freeswitch-zammad-cti/sim/zammad';
import { loadTemplates } from './frames.js';
import { loadDialplanTemplates } from './dialplan-frames.js';
import { machine, openFilesLimit } from './procstat.js';
import { type Subject, type LoadFigures, type Bench, loadPhase, skipped, holdPhase } from './measure.js';
import { parseOptions } from './options.js';
import { type OverloadFigures, overloadPhase } from './overload.js';
import { type Adapter, pinProcesses, build, startAdapter, startGenerator, startBaseline } from './processes.js';
import { table, cpuLine } from './report.js';
import { type Measured, type ModeFigures, type Report, summarise } from './summary.js';
import { BENCH, repoPath, round, log } from './util.js';

export async function main(argv: string[]): Promise<Report> {
  const opts = parseOptions(argv);
  const limit = openFilesLimit();
  const maxHold = Math.max(0, Math.floor((limit - 500) / 1));
  if (opts.holds.some((h) => h > maxHold)) {
    log(`open-files limit is ${limit}: holds above ${maxHold} calls are skipped (raise it with ulimit -n)`);
    opts.holds = opts.holds.filter((h) => h <= maxHold);
  }
  const pinning = opts.pin
    ? pinProcesses()
    : 'not pinned (the OS schedules the processes; --pin to give the subject a CPU of its own)';
  log(`CPU: ${pinning}`);
  const templates = loadTemplates(opts.transcript);
  log(
    `call template: ${templates.source}, ${templates.eventsPerCall} events, ` +
      `${templates.bytesPerCall} bytes from the switch per call; bridge ${templates.bridge}`,
  );
  // --no-build: run what is already in bench/.build (experiments on the compiled program).
  // --adapter-root DIR: measure another checkout of the adapter (before/after).
  const adapterRoot = argv.includes('--adapter-root') ? argv[argv.indexOf('--adapter-root') + 1] : undefined;
  const mainJs = adapterRoot
    ? build(adapterRoot)
    : opts.tsx
      ? null
      : argv.includes('--no-build')
        ? join(BENCH, '.build', 'src', 'main.js')
        : build();
  const profDir = join(BENCH, 'results');
  if (opts.cpuProf) mkdirSync(profDir, { recursive: true });

  const token = `bench-${randomBytes(8).toString('hex')}`;
  const zammad = new ZammadDouble({ token, now: () => performance.timeOrigin + performance.now() });
  await zammad.start();
  const generators = await Promise.all(
    Array.from({ length: opts.generators }, (_, i) => startGenerator(i, opts.transcript)),
  );
  const b: Bench = { opts, zammad, generators, eventsPerCall: templates.eventsPerCall };
  const children: { stop(): unknown }[] = [...generators];
  const measured: Measured = { adapter: {}, baseline: null, dialplan: null, memory: { adapter: [], baseline: [] } };
  const adapterOpts = (bridge: string, logLevel: string, tag: string, profile: boolean) => ({
    main: mainJs,
    zammadUrl: zammad.url,
    bridge,
    logLevel,
    tag,
    nodeOptions: opts.adapterNodeOptions,
    ...(profile && opts.cpuProf ? { cpuProfDir: profDir } : {}),
  });

  /** Throughput, then one latency phase per rate, of one subject in one routing mode. */
  const measureMode = async (s: Subject, routing: 'bridge' | 'dialplan', who: string): Promise<ModeFigures> => {
    let throughput = skipped(routing);
    if (opts.phases.includes('throughput')) {
      log(`${who}: throughput, ${opts.concurrency} calls in flight, ${opts.durationMs / 1000} s`);
      throughput = await loadPhase(b, s, 'cycle', routing);
      const perCall =
        routing === 'dialplan'
          ? `, ${round(throughput.eventsSent / Math.max(1, throughput.calls.started), 1)} events/call ` +
            'reached the subject'
          : '';
      log(
        `  ${round(throughput.cyclesPerSec, 0)} cycles/s, ${round(throughput.cpuMsPerCall, 3)} CPU ms/call ` +
          `(${throughput.processes} process${throughput.processes === 1 ? '' : 'es'})${perCall}, ` +
          `lost ${throughput.eventsLost}, failed ${throughput.calls.failed}; ${cpuLine(throughput)}`,
      );
    }
    const latencyByRate: Record<string, LoadFigures> = {};
    if (opts.phases.includes('latency')) {
      for (const rate of opts.rates) {
        log(`${who}: latency at ${rate} calls/s, ${opts.durationMs / 1000} s`);
        const f = await loadPhase(b, s, 'rate', routing, rate);
        const lag =
          s.kind === 'adapter'
            ? `, loop lag p99 ${round(f.adapterLoopLagP99Ms ?? NaN, 1)} max ` +
              `${round(f.adapterLoopLagMaxMs ?? NaN, 1)} ms, GC ms/s ${JSON.stringify(f.adapterGcMsPerSec)}`
            : '';
        log(
          `  setup p50 ${round(f.setup.p50, 3)} ms, p99 ${round(f.setup.p99, 3)} ms, ` +
            `max ${round(f.setup.max, 3)} ms (n ${f.setup.n}` +
            (f.setup.missing > 0
              ? `, of which ${f.setup.missing} failed before the routing command, counted as the call timeout`
              : '') +
            `), lost ${f.eventsLost}, failed ${f.calls.failed}; ` +
            `${cpuLine(f)}, ${round(f.cpuMsPerCall, 3)} CPU ms/call${lag}`,
        );
        latencyByRate[String(rate)] = f;
      }
    }
    return { throughput, latency: latencyByRate[String(opts.rates[0])] ?? skipped(routing), latencyByRate };
  };
  const problems = (adapter: Adapter) => {
    if (adapter.problems.length > 0)
      log(
        `  adapter warnings/errors (first ${Math.min(5, adapter.problems.length)}):\n    ` +
          `${adapter.problems.slice(0, 5).join('\n    ')}`,
      );
  };
  const loads = opts.phases.includes('throughput') || opts.phases.includes('latency');

  try {
    if (loads && opts.modes.includes('bridge')) {
      for (const level of opts.logLevels) {
        log(`adapter, bridge mode, LOG_LEVEL=${level}: starting`);
        const adapter = await startAdapter(adapterOpts(templates.bridge, level, level, true));
        children.push(adapter);
        measured.adapter[level] = await measureMode(
          { kind: 'adapter', adapter },
          'bridge',
          `adapter, bridge mode, LOG_LEVEL=${level}`,
        );
        problems(adapter);
        await adapter.stop();
      }
    }

    if (loads && opts.modes.includes('dialplan')) {
      const level = opts.logLevels[0] ?? 'info';
      const dp = loadDialplanTemplates();
      log(
        `adapter, dialplan mode (DEFAULT_BRIDGE empty), LOG_LEVEL=${level}: ` +
          `each call handed back and routed by a dialplan of ${dp.setApps} set apps (${dp.eventsPerCall} events, ` +
          `${dp.bytesPerCall} bytes on the switch per call, before the adapter's filters); ${dp.source}`,
      );
      const adapter = await startAdapter(adapterOpts('', level, 'dialplan', true));
      children.push(adapter);
      const figures = await measureMode(
        { kind: 'adapter', adapter },
        'dialplan',
        `adapter, dialplan mode, LOG_LEVEL=${level}`,
      );
      let overload: OverloadFigures | null = null;
      const capacity = figures.throughput.cyclesPerSec;
      if (opts.phases.includes('overload') && (opts.overloadRate > 0 || Number.isFinite(capacity))) {
        const rate = Math.min(opts.overloadRate > 0 ? opts.overloadRate : 2 * capacity, opts.overloadRateCap);
        log(
          `adapter, dialplan mode: overload, ${round(rate, 0)} calls/s (capacity ${round(capacity, 0)}), ` +
            `${opts.overloadDurationMs / 1000} s, bound ${opts.overloadBoundMs} ms`,
        );
        overload = await overloadPhase(
          b,
          { kind: 'adapter', adapter },
          capacity,
          rate,
          opts.overloadDurationMs,
          opts.overloadBoundMs,
        );
        const o = overload;
        log(
          `  ${o.calls} calls: ${o.routed} routed (${o.routedLate} past the bound), ${o.fellOpen} fell open ` +
            `${JSON.stringify(o.fellOpenBy)}, ${o.callsFailed} failed; ` +
            `setup p50 ${o.setupP50Ms} p99 ${o.setupP99Ms} ms; ` +
            `goodput ${o.goodputPerSec}/s (${o.goodputVsCapacity} of capacity); lost ${o.eventsLost}; ` +
            `${o.subjectCores} cores`,
        );
      }
      problems(adapter);
      await adapter.stop();
      measured.dialplan = {
        setApps: dp.setApps,
        eventsPerCallOnSwitch: dp.eventsPerCall,
        adapter: figures,
        baseline: null,
        overload,
      };
    }

    if (loads && opts.baseline) {
      for (const routing of opts.modes) {
        log(`baseline, ${routing} mode: starting`);
        const baseline = await startBaseline(templates.bridge, routing);
        children.push(baseline);
        const figures = await measureMode({ kind: 'baseline', baseline }, routing, `baseline, ${routing} mode`);
        await baseline.stop();
        if (routing === 'bridge') measured.baseline = figures;
        else if (measured.dialplan) measured.dialplan.baseline = figures;
      }
    }

    if (opts.holds.length > 0 && opts.phases.includes('memory')) {
      const level = opts.logLevels[0] ?? 'info';
      log(
        `memory (bridge mode): fresh adapter (LOG_LEVEL=${level}), holding ${opts.holds.join(' then ')} calls, ` +
          `opened at ${opts.openRate > 0 ? `${opts.openRate} calls/s` : 'full speed'}`,
      );
      const adapter = await startAdapter(adapterOpts(templates.bridge, level, 'memory', false));
      children.push(adapter);
      for (const count of opts.holds) {
        const f = await holdPhase(b, { kind: 'adapter', adapter }, count);
        log(
          `  adapter, ${count} held, ${f.processes} process${f.processes === 1 ? '' : 'es'}: ` +
            `VmRSS ${round(f.rssMB, 0)} MB (sum of the processes' VmHWM ${round(f.peakRssMB, 0)} MB, ` +
            `PSS ${round(f.pssMB, 0)} MB; V8 heap ${f.heapUsedMB}/${f.heapTotalMB} MB, ` +
            `external ${f.externalMB} MB; opened in ${round(f.secondsToOpen, 1)} s), lost ${f.eventsLost}, ` +
            `failed ${f.failed}`,
        );
        measured.memory.adapter.push(f);
      }
      await adapter.stop();
      if (opts.baseline) {
        const baseline = await startBaseline(templates.bridge);
        children.push(baseline);
        for (const count of opts.holds) {
          const f = await holdPhase(b, { kind: 'baseline', baseline }, count);
          log(`  baseline, ${count} held: VmRSS ${round(f.rssMB, 0)} MB (VmHWM ${round(f.peakRssMB, 0)} MB)`);
          measured.memory.baseline.push(f);
        }
        await baseline.stop();
      }
    }
  } finally {
    for (const c of children) await c.stop();
    await zammad.stop();
  }

  const full = summarise(
    measured,
    {
      when: new Date().toISOString(),
      machine: machine(),
      mode: opts.smoke ? 'smoke' : 'full',
      settings: {
        transcript: repoPath(templates.source),
        eventsPerCall: templates.eventsPerCall,
        switchBytesPerCall: templates.bytesPerCall,
        warmupMs: opts.warmupMs,
        durationMs: opts.durationMs,
        concurrency: opts.concurrency,
        rate: opts.rates[0],
        rates: opts.rates,
        modes: opts.modes,
        phases: opts.phases,
        holds: opts.holds,
        logLevels: opts.logLevels,
        generators: opts.generators,
        pinning,
        openRate: opts.openRate,
        adapterNodeOptions: opts.adapterNodeOptions,
        adapterRunAs:
          opts.tsx || mainJs === null
            ? 'node --import tsx src/main.ts'
            : `node ${repoPath(mainJs)} (tsc -p tsconfig.build.json)`,
      },
    },
    opts.logLevels,
    opts.rates,
    opts.holds,
  );

  process.stdout.write(
    `\n${table(
      full,
      opts.logLevels.filter((l) => full.adapter[l]),
    )}\n\n`,
  );
  process.stdout.write(
    `targets: ${Object.entries(full.targets)
      .map(([k, t]) => `${k} ${t.target}: ${t.met ? 'met' : 'NOT met'}`)
      .join('; ')}\n`,
  );
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, `${JSON.stringify(full, null, 2)}\n`);
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
