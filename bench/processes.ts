/**
 * The processes of a run: the subject (the adapter, built as `npm start` runs it, or the baseline
 * listener), the load generators (loadgen.ts), each a child; CPU pinning with taskset.
 */
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DIALPLAN_EVENT_FILTERS } from '../src/call/signals.js';
import type { FromGenerator, Job, JobResult, ToGenerator } from './loadgen.js';
import { machine } from './procstat.js';
import { ROOT, BENCH, sleep, freePort, log } from './util.js';

/**
 * With 2 or more CPUs and taskset: the subject (adapter or baseline) runs alone on the last CPU,
 * this process (Zammad double), the generators and their children on the others. Without it a
 * write that wakes a peer on the same CPU is preempted by it, and the subject's figures would
 * carry the generator's and the Zammad double's work.
 */
export let subjectPrefix: string[] = [];

export function pinProcesses(): string {
  const cpus = machine().cpus;
  if (cpus < 2) return 'no pinning (1 CPU)';
  const others = cpus === 2 ? '0' : `0-${cpus - 2}`;
  const r = spawnSync('taskset', ['-a', '-p', '-c', others, String(process.pid)], { encoding: 'utf8' });
  if (r.status !== 0) return `no pinning (taskset: ${r.error?.message ?? r.stderr.trim()})`;
  subjectPrefix = ['taskset', '-c', String(cpus - 1)];
  return `subject on CPU ${cpus - 1}, Zammad double + generators on CPU ${others}`;
}

export interface Adapter {
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
export function build(root = ROOT): string {
  const outDir = root === ROOT ? join(BENCH, '.build') : join(root, '.bench-build');
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', outDir], {
    cwd: root,
    encoding: 'utf8',
  });
  const main = join(outDir, 'src', 'main.js');
  if (!existsSync(main)) throw new Error(`tsc did not produce ${main}:\n${r.stdout}${r.stderr}`);
  if (r.status !== 0)
    log(
      'tsc reported type errors (the JavaScript is emitted ' +
        `anyway):\n${(r.stdout + r.stderr).split('\n').slice(0, 10).join('\n')}`,
    );
  return main;
}

export function outboxPath(dir: string): string {
  const where = process.env['BENCH_OUTBOX_DIR'];
  if (where === ':memory:') return ':memory:';
  return where ? join(mkdtempSync(join(where, 'cti-bench-')), 'outbox.sqlite') : join(dir, 'outbox.sqlite');
}

export async function startAdapter(opts: {
  main: string | null;
  zammadUrl: string;
  bridge: string;
  logLevel: string;
  cpuProfDir?: string;
  tag: string;
  nodeOptions: string[];
}): Promise<Adapter> {
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
    ...(process.env['BENCH_HEAPSNAPSHOT']
      ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${process.env['BENCH_HEAPSNAPSHOT_DIR'] ?? dir}`]
      : []),
    ...(opts.cpuProfDir
      ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`, `--cpu-prof-name=adapter-${opts.tag}.cpuprofile`]
      : []),
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
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      adapter.logLines++;
      if ((line.includes('"level":"warn"') || line.includes('"level":"error"')) && adapter.problems.length < 50)
        adapter.problems.push(line.slice(0, 400));
    }
  });
  proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    if (adapter.problems.length < 50) adapter.problems.push(chunk.slice(0, 400));
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null)
      throw new Error(`the adapter exited (${proc.exitCode}) at start:\n${adapter.problems.join('\n')}`);
    try {
      const res = await fetch(`http://127.0.0.1:${statusPort}/healthz`);
      if (res.ok) break;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline)
      throw new Error(`the adapter did not come up within 30 s:\n${adapter.problems.join('\n')}`);
    await sleep(100);
  }
  return adapter;
}

export interface GeneratorProc {
  proc: ChildProcess;
  pid: number;
  run(job: Job, onMark: (what: string) => void): Promise<JobResult>;
  release(): void;
  stop(): void;
}

export function forkTs(file: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  return fork(join(BENCH, file), args, {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

export async function startGenerator(n: number, transcript: string): Promise<GeneratorProc> {
  const proc = forkTs('loadgen.ts', [String(n)], { BENCH_TRANSCRIPT: transcript });
  await new Promise<void>((resolve, reject) => {
    proc.once('message', (m: FromGenerator) =>
      m.type === 'ready' ? resolve() : reject(new Error('generator: unexpected first message')),
    );
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

export interface BaselineProc {
  proc: ChildProcess;
  pid: number;
  port: number;
  counters(): Promise<{ connections: number; events: number; frames: number; bytes: number; closed: number }>;
  stop(): Promise<void>;
}

/** baseline.ts as plain JavaScript (it imports nothing but node:net), so that it runs on bare node. */
export async function transpileBaseline(): Promise<string> {
  const ts = (await import('typescript')).default;
  const source = readFileSync(join(BENCH, 'baseline.ts'), 'utf8');
  const out = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  });
  const file = join(BENCH, '.build', 'bench', 'baseline.mjs');
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, out.outputText);
  return file;
}

export let baselineJs: string | undefined;

/** Dialplan mode: the listener sets the adapter's own filters and hands each call back with `transfer`. */
export async function startBaseline(bridge: string, routing: 'bridge' | 'dialplan' = 'bridge'): Promise<BaselineProc> {
  baselineJs ??= await transpileBaseline();
  const env = {
    ...process.env,
    BENCH_BRIDGE: bridge,
    BENCH_ROUTING: routing,
    BENCH_FILTERS: JSON.stringify(DIALPLAN_EVENT_FILTERS),
  };
  const proc = fork(baselineJs, [], { execArgv: [], env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  if (subjectPrefix.length > 0 && proc.pid)
    spawnSync('taskset', ['-a', '-p', '-c', subjectPrefix[2] as string, String(proc.pid)]);
  const ready = await new Promise<{ port: number }>((resolve, reject) => {
    proc.once('message', (m: { type: string; port: number }) =>
      m.type === 'ready' ? resolve(m) : reject(new Error('baseline: unexpected first message')),
    );
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
