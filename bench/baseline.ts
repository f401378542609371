/**
 * The baseline: the least any ESL adapter on Node has to do for a call, with nothing else.
 *
 * A bare net server that does only the switch side of the protocol, the same round trips the
 * adapter makes: `connect`, `myevents json`, `linger`, then `bridge` at once (no Zammad, no
 * outbox, no logging, no state machine, no ESL library); it reads every frame (header block +
 * Content-Length body), counts the events, hangs up when the bridge returns and says `exit`
 * after CHANNEL_HANGUP_COMPLETE. The figures of the adapter are divided by this one's.
 *
 * Dialplan mode (BENCH_ROUTING=dialplan): the same, with the adapter's `filter` commands
 * (BENCH_FILTERS, JSON [header, value][]) sent with `linger`, and `transfer` instead of `bridge`
 * once they are answered; the routed call's events are read until CHANNEL_HANGUP_COMPLETE.
 *
 * Runs as a child process with plain node (run.ts transpiles it, so that no TypeScript loader
 * sits in its memory or CPU figures): prints nothing, reports its port and counters over IPC.
 */
import net from 'node:net';

const HEADER_END = Buffer.from('\n\n');
const EMPTY = Buffer.alloc(0);
const CONTENT_LENGTH = 'Content-Length: ';
const EXECUTE_COMPLETE = Buffer.from('"Event-Name":"CHANNEL_EXECUTE_COMPLETE"');
const APP_BRIDGE = Buffer.from('"Application":"bridge"');
const HANGUP_COMPLETE = Buffer.from('"Event-Name":"CHANNEL_HANGUP_COMPLETE"');
const BRIDGE =
  'sendmsg\ncall-command: execute\nexecute-app-name: bridge\nexecute-app-arg: ' +
  (process.env['BENCH_BRIDGE'] ?? 'user/1000') +
  '\n\n';
const HANGUP = 'sendmsg\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING\n\n';
const DIALPLAN = process.env['BENCH_ROUTING'] === 'dialplan';
const FILTERS = DIALPLAN ? (JSON.parse(process.env['BENCH_FILTERS'] ?? '[]') as [string, string][]) : [];
const TRANSFER =
  'sendmsg\ncall-command: execute\nexecute-app-name: transfer\nexecute-app-arg: ' +
  '${destination_number} XML ${context}\n\n';
/** `linger` and the filters, in one write; the call goes on once all of them are answered. */
const SUBSCRIBE = ['linger\n\n', ...FILTERS.map(([h, v]) => `filter ${h} ${v}\n\n`)].join('');
const ROUTE_AFTER = 2 + 1 + FILTERS.length;

export const counters = { connections: 0, events: 0, frames: 0, bytes: 0, closed: 0 };

function handle(socket: net.Socket): void {
  counters.connections++;
  socket.setNoDelay(true);
  let buf: Buffer = EMPTY;
  let replies = 0;
  socket.on('error', () => {});
  socket.on('close', () => counters.closed++);
  socket.on('data', (chunk: Buffer) => {
    counters.bytes += chunk.length;
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    for (;;) {
      const end = buf.indexOf(HEADER_END);
      if (end < 0) return;
      const head = buf.toString('latin1', 0, end);
      const cl = head.indexOf(CONTENT_LENGTH);
      const len = cl < 0 ? 0 : parseInt(head.slice(cl + CONTENT_LENGTH.length), 10);
      if (buf.length < end + 2 + len) return;
      const body = buf.subarray(end + 2, end + 2 + len);
      // An empty view would still hold the whole read (up to 64 KB) for as long as the call lasts.
      buf = buf.length === end + 2 + len ? EMPTY : buf.subarray(end + 2 + len);
      counters.frames++;
      if (head.includes('Content-Type: command/reply')) {
        // connect → myevents json → linger (+ filters) → bridge or transfer; later replies (+OK, +OK bye) need nothing.
        replies++;
        if (replies === 1) socket.write('myevents json\n\n');
        else if (replies === 2) socket.write(SUBSCRIBE);
        else if (replies === ROUTE_AFTER) socket.write(DIALPLAN ? TRANSFER : BRIDGE);
      } else if (head.includes('Content-Type: text/event-')) {
        counters.events++;
        if (!DIALPLAN && body.indexOf(EXECUTE_COMPLETE) >= 0 && body.indexOf(APP_BRIDGE) >= 0) socket.write(HANGUP);
        else if (body.indexOf(HANGUP_COMPLETE) >= 0) socket.write('exit\n\n');
      }
      // disconnect notices: FreeSWITCH closes after the goodbye one.
    }
  });
  socket.write('connect\n\n');
}

export function startBaseline(port = 0, host = '127.0.0.1'): Promise<net.Server> {
  const server = net.createServer({ noDelay: true }, handle);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: 511 }, () => resolve(server));
  });
}

if (process.send && /baseline\.(ts|mjs)$/.test(process.argv[1] ?? '')) {
  const server = await startBaseline();
  const port = (server.address() as net.AddressInfo).port;
  process.on('message', (m: { type: string }) => {
    if (m.type === 'counters') process.send?.({ type: 'counters', counters });
    if (m.type === 'exit') process.exit(0);
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ type: 'ready', port, pid: process.pid });
}
