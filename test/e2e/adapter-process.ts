/**
 * Runs the real adapter program (src/main.ts) as a child process, as in production, and
 * reads its JSON log lines. Tests talk to it only over its sockets.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childEnv as controlledEnv } from '../child-env.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface LogLine {
  level: string;
  message: string;
  [key: string]: unknown;
}

export interface AdapterProcess {
  eslPort: number;
  statusPort: number;
  proc: ChildProcess;
  lines: LogLine[];
  /** Everything the process wrote, stdout and stderr, raw. */
  output(): string;
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

const tempDirs: string[] = [];
// The test process removes the outbox folders it made (the adapters are children: gone by then).
process.once('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

export function tempOutbox(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cti-e2e-'));
  tempDirs.push(dir);
  return join(dir, 'outbox.sqlite');
}

/**
 * Starts src/main.ts with the given environment (nothing inherited but PATH/HOME, no .env read: ../child-env.ts), waits
 * until it listens.
 */
export async function startAdapter(
  env: Record<string, string>,
  opts: {
    expectStart?: boolean /** 'dist': run the built dist/src/main.js (npm run build first), as users do */;
    program?: 'src' | 'dist';
  } = {},
): Promise<AdapterProcess> {
  const childEnv: Record<string, string> = {
    ...controlledEnv(),
    ESL_PORT: '0',
    STATUS_PORT: '0',
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'debug',
    // The suites written for bridge mode keep it for calls without zammad_bridge; the dialplan-mode
    // suites pass DEFAULT_BRIDGE: '' (the product's default).
    DEFAULT_BRIDGE: 'user/${destination_number}@${domain_name}',
    OUTBOX_PATH: env['OUTBOX_PATH'] ?? tempOutbox(),
    ...env,
  };
  const args = opts.program === 'dist' ? ['dist/src/main.js'] : ['--import', 'tsx', 'src/main.ts'];
  const proc = spawn(process.execPath, args, { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: LogLine[] = [];
  let raw = '';
  const watchers = new Set<() => void>();
  let buf = '';
  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    raw += chunk;
    buf += chunk;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        lines.push(JSON.parse(line) as LogLine);
      } catch {
        lines.push({ level: 'raw', message: line });
      }
    }
    for (const w of [...watchers]) w();
  });
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    raw += chunk;
    for (const w of [...watchers]) w();
  });
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => {
      for (const w of [...watchers]) w();
      resolve(code);
    }),
  );
  let exitCode: number | null | undefined;
  void exited.then((c) => (exitCode = c));

  const waitForLog = (pred: (l: LogLine) => boolean, timeoutMs = 10_000) =>
    new Promise<LogLine>((resolve, reject) => {
      const check = () => {
        const hit = lines.find(pred);
        if (hit) {
          cleanup();
          resolve(hit);
        } else if (exitCode !== undefined) {
          cleanup();
          reject(new Error(`adapter exited (${exitCode}) before the expected log line; output:\n${raw.slice(-4000)}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for a log line; output:\n${raw.slice(-4000)}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        watchers.delete(check);
      };
      watchers.add(check);
      check();
    });

  const handle: AdapterProcess = {
    eslPort: 0,
    statusPort: 0,
    proc,
    lines,
    output: () => raw,
    waitForLog,
    exited,
    async stop(signal = 'SIGTERM') {
      if (exitCode !== undefined) return exitCode;
      proc.kill(signal);
      return exited;
    },
  };
  if (opts.expectStart === false) return handle;
  try {
    const listening = await waitForLog((l) => l.message === 'listening for FreeSWITCH', 20_000);
    handle.eslPort = Number(listening['port']);
    const status = await waitForLog((l) => l.message === 'status endpoints up');
    handle.statusPort = Number(status['port'] ?? 0);
  } catch (err) {
    proc.kill('SIGKILL'); // a child left running would hold the test run open
    throw err;
  }
  return handle;
}
