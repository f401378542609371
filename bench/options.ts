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
  rate: number;
  holds: number[];
  generators: number;
  transcript: string;
  baseline: boolean;
  /** throughput, latency, dialplan, memory (all by default). */
  phases: string[];
  /** CPU pinning: the subject alone on the last CPU, everything else on the others. */
  pin: boolean;
  /** Memory phases: new calls a second while the calls are opened (0: as fast as the subject takes them). */
  openRate: number;
  /** Extra node options for the adapter (experiments, e.g. --max-semi-space-size=4). */
  adapterNodeOptions: string[];
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
    rate: num('rate', 500, 50),
    holds: (value('hold') ?? (smoke ? '100,300' : '1000,10000')).split(',').map(Number).filter((n) => n > 0),
    generators: num('generators', 1, 1),
    transcript: value('transcript') ?? DEFAULT_TRANSCRIPT,
    baseline: !flag('no-baseline'),
    phases: (value('phases') ?? 'throughput,latency,dialplan,memory').split(','),
    pin: flag('pin'),
    openRate: num('open-rate', 500, 200),
    adapterNodeOptions: (value('adapter-node-options') ?? '').split(' ').filter(Boolean),
  };
}
