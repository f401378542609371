/**
 * `npm run bench:shed`: what a call shed under overload costs the adapter, beside a call it takes
 * (bench/README.md, overload). A shed call is accepted, asked for its channel data (`connect`),
 * judged (src/call/flow.ts sheddable) and handed back with `transfer` + `exit` in one write
 * (src/switch/shed.ts); the figure is CPU µs per call of the process doing it, measured with
 * process.cpuUsage() over the calls after the first 1,000 (warm-up).
 *
 *   node --import tsx bench/shed.ts [--calls 20000] [--concurrency 100]
 *   SHED_PROF=1 …: each subject writes a V8 CPU profile to /tmp/shedprof (bench/profile-summary.ts reads it)
 *
 * Two subjects, each in a child process of its own, one after the other: `shed` (the product's
 * functions) and `bare` (the least any Node program spends on the same exchange: accept, write
 * `connect`, on the reply write the hand-back, close: no parsing at all). This process plays
 * FreeSWITCH: the channel data of the dialplan capture (bench/dialplan-frames.ts), then `+OK`,
 * `+OK bye`, the disconnect notice and the close, as mod_event_socket does after transfer + exit
 * (docs/reference/freeswitch.md).
 */
import net from 'node:net';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadDialplanTemplates } from './dialplan-frames.js';
import { render } from './frames.js';
import { log, round } from './util.js';

const WARMUP = 1000;

/** What FreeSWITCH sends after `sendmsg` (transfer) and `exit`, before it closes. */
const GOODBYE = Buffer.from(
  'Content-Type: command/reply\nReply-Text: +OK\n\n' +
    'Content-Type: command/reply\nReply-Text: +OK bye\n\n' +
    'Content-Type: text/disconnect-notice\nContent-Disposition: disconnect\nContent-Length: 67\n\n' +
    'Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n',
);

interface Figures {
  /** Calls measured (after the warm-up), calls accepted in all, and of these judged sheddable. */
  calls: number;
  accepted: number;
  shed: number;
  userMs: number;
  systemMs: number;
  cpuUsPerCall: number;
}

function option(argv: string[], name: string, fallback: number): number {
  const i = argv.indexOf(name);
  const value = i >= 0 ? Number(argv[i + 1]) : fallback;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name}: a positive number, please`);
  return value;
}

async function measure(subject: 'shed' | 'bare', calls: number, concurrency: number): Promise<Figures> {
  const templates = loadDialplanTemplates(40);
  const child = fork(fileURLToPath(new URL('./shed-subject.ts', import.meta.url)), [subject, String(WARMUP)], {
    execArgv: ['--import', 'tsx', ...(process.env['SHED_PROF'] ? ['--cpu-prof', '--cpu-prof-dir=/tmp/shedprof'] : [])],
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m) => resolve((m as { port: number }).port));
      child.once('exit', (code) => reject(new Error(`the ${subject} subject exited (${code})`)));
    });
    let started = 0;
    let done = 0;
    await new Promise<void>((resolve, reject) => {
      const one = () => {
        if (started >= calls) return;
        started++;
        const uuid = Buffer.from(`00000000-0000-4000-8000-${String(started).padStart(12, '0')}`, 'latin1');
        const socket = net.connect(port, '127.0.0.1');
        socket.setNoDelay(true);
        let text = '';
        let connected = false;
        socket.on('data', (d: Buffer) => {
          text += d.toString('latin1');
          if (!connected && text.includes('connect\n\n')) {
            connected = true;
            text = text.slice(text.indexOf('connect\n\n') + 9);
            socket.write(render(templates.connect, uuid));
          }
          if (connected && text.includes('exit\n\n')) socket.end(GOODBYE);
        });
        socket.on('error', reject);
        socket.on('close', () => {
          done++;
          if (done === calls) resolve();
          else one();
        });
      };
      for (let i = 0; i < concurrency; i++) one();
    });
    child.send('report');
    const figures = await new Promise<Figures>((resolve) => child.once('message', (m) => resolve(m as Figures)));
    await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(undefined)));
    return figures;
  } finally {
    child.kill();
  }
}

export async function main(argv: string[]): Promise<void> {
  const calls = option(argv, '--calls', 20_000) + WARMUP;
  const concurrency = option(argv, '--concurrency', 100);
  const shed = await measure('shed', calls, concurrency);
  if (shed.shed !== shed.accepted) throw new Error(`${shed.accepted - shed.shed} calls were not judged sheddable`);
  const bare = await measure('bare', calls, concurrency);
  for (const [name, f] of [
    ['shed (the adapter: connect, judge, transfer + exit)', shed],
    ['bare (accept, connect, hand-back, close; no parsing)', bare],
  ] as const) {
    const us = (ms: number) => round((ms * 1000) / f.calls, 1);
    const split = `user ${us(f.userMs)}, system ${us(f.systemMs)}`;
    log(`${name}: ${round(f.cpuUsPerCall, 1)} CPU µs a call (${split}; ${f.calls} calls)`);
  }
}

await main(process.argv.slice(2));
