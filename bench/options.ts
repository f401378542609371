/** `npm run bench`'s command line: what to run, how long, how hard (bench/README.md). */
import { join } from 'node:path';
import { DEFAULT_TRANSCRIPT } from './frames.js';
import { BENCH } from './util.js';

export interface Options {
  smoke: boolean;
  out: string;
  cpuProf: boolean;
  tsx: boolean;
  logLevels: string[];
  warmupMs: number;
  durationMs: number;
  concurrency: number;
  /** Latency phases: new calls a second, one phase each (open loop). The first is `setupP99Ms`. */
  rates: number[];
  /** Routing modes measured: `bridge` (the adapter bridges) and `dialplan` (it hands the call back). */
  modes: ('bridge' | 'dialplan')[];
  holds: number[];
  generators: number;
  transcript: string;
  baseline: boolean;
  /**
   * throughput, latency, overload, memory (all by default); throughput and latency run in every mode
   * of `modes`, overload in dialplan mode.
   */
  phases: string[];
  /** CPU pinning: the subject alone on the last CPU, everything else on the others. */
  pin: boolean;
  /** Memory phases: new calls a second while the calls are opened (0: as fast as the subject takes them). */
  openRate: number;
  /** Extra node options for the adapter (experiments, e.g. --max-semi-space-size=4). */
  adapterNodeOptions: string[];
  /**
   * The overload phase (dialplan mode): new calls a second (0: twice the sustained cycles/s the run
   * measured), how long, and the bound a call may wait for its first and its routing command.
   */
  overloadRate: number;
  overloadDurationMs: number;
  overloadBoundMs: number;
  /** Smoke: at most this many new calls a second in the overload phase. */
  overloadRateCap: number;
}

export function parseOptions(argv: string[]): Options {
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
    // --rate N (one rate) is still understood. Smoke: rates a cold adapter on a busy CI machine
    // keeps up with (at 500/s calls would queue for longer than the 20 s a call may take).
    rates: (value('rates') ?? value('rate') ?? (smoke ? '50,100' : '500,1000'))
      .split(',')
      .map(Number)
      .filter((n) => n > 0),
    modes: parseModes(value('modes') ?? 'bridge,dialplan'),
    holds: (value('hold') ?? (smoke ? '100,300' : '1000,10000'))
      .split(',')
      .map(Number)
      .filter((n) => n > 0),
    generators: num('generators', 1, 1),
    transcript: value('transcript') ?? DEFAULT_TRANSCRIPT,
    baseline: !flag('no-baseline'),
    phases: parsePhases(value('phases') ?? 'throughput,latency,overload,memory'),
    pin: flag('pin'),
    openRate: num('open-rate', 500, 200),
    adapterNodeOptions: (value('adapter-node-options') ?? '').split(' ').filter(Boolean),
    overloadRate: num('overload-rate', 0, 0),
    overloadDurationMs: num('overload-duration', 10, 2) * 1000,
    // The adapter's bound on a call's routing: ZAMMAD_NEWCALL_TIMEOUT_MS (default 2 s) + 1 s after it
    // is accepted (docs/operations.md, "Under overload"); here from the connect, the backlog included.
    overloadBoundMs: num('overload-bound-ms', 3000, 3000),
    overloadRateCap: smoke ? 200 : Infinity,
  };
}

const PHASES = ['throughput', 'latency', 'overload', 'memory'];

function parsePhases(text: string): string[] {
  const phases = text.split(',').filter(Boolean);
  // Before both modes had latency phases, `dialplan` was a phase of its own (dialplan-mode throughput).
  if (phases.includes('dialplan'))
    throw new Error(
      '--phases: dialplan is a mode now: --modes dialplan (or bridge,dialplan) with --phases throughput,latency',
    );
  const unknown = phases.filter((p) => !PHASES.includes(p));
  if (unknown.length > 0) throw new Error(`--phases: unknown ${unknown.join(', ')} (known: ${PHASES.join(', ')})`);
  return phases;
}

function parseModes(text: string): ('bridge' | 'dialplan')[] {
  const modes = text.split(',').filter(Boolean);
  const unknown = modes.filter((m) => m !== 'bridge' && m !== 'dialplan');
  if (unknown.length > 0 || modes.length === 0) throw new Error(`--modes: bridge, dialplan or both (got ${text})`);
  return modes as ('bridge' | 'dialplan')[];
}
