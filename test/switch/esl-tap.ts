/**
 * A recording TCP relay between FreeSWITCH's `socket` application and the adapter: the suite's
 * proof of what the adapter COMMANDED the switch, independent of the adapter's own log.
 *
 * The gate's `socket` line points at the tap's port; each connection FreeSWITCH opens is relayed
 * byte for byte to the adapter's ESL_PORT and back. What the adapter writes is split into
 * commands (mod_event_socket's grammar: a command line, header lines, an empty line, and a body of
 * `content-length` bytes when that header is there); what FreeSWITCH writes first (the channel
 * data answering `connect`) names the call's `Unique-ID`. When either side closes or dies, the
 * other side is closed too, so a SIGKILLed adapter looks to the switch exactly as without the tap.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface TappedCommand {
  /** the command line, e.g. `sendmsg`, `api uuid_getvar … dialed_user`, `exit` */
  line: string;
  /** header lines, names lower-cased (`call-command`, `execute-app-name`, …) */
  headers: Record<string, string>;
  body?: string;
  /** Date.now() when the relay read it */
  at: number;
}

/** an event FreeSWITCH sent the adapter: its name and, for CHANNEL_EXECUTE*, the application */
export interface TappedEvent {
  name: string;
  application?: string;
  /** the channel the event is about */
  uuid?: string;
  /** Date.now() when the relay read it */
  at: number;
}

export interface TappedConnection {
  /** the channel's Unique-ID from FreeSWITCH's reply to `connect` */
  uuid: string | undefined;
  commands: TappedCommand[];
  /** the events FreeSWITCH sent on this connection (text/event-json and text/event-plain) */
  events: TappedEvent[];
  closed: boolean;
}

/** `sendmsg` execute → `app arg`, hangup → `hangup CAUSE`; anything else → its command line */
export function describeCommand(c: TappedCommand): string {
  if (c.line.split(' ')[0] !== 'sendmsg') return c.line;
  const cmd = c.headers['call-command'];
  if (cmd === 'execute')
    return `execute ${c.headers['execute-app-name'] ?? ''} ${c.headers['execute-app-arg'] ?? c.body ?? ''}`.trim();
  if (cmd === 'hangup') return `hangup ${c.headers['hangup-cause'] ?? ''}`.trim();
  return `sendmsg ${cmd ?? ''}`.trim();
}

/** FreeSWITCH's side: header block, then `Content-Length` bytes; events are picked out */
class EventReader {
  private buf = Buffer.alloc(0);
  constructor(private readonly out: TappedEvent[]) {}

  push(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      const end = this.buf.indexOf('\n\n');
      if (end < 0) return;
      const head = this.buf.subarray(0, end).toString('latin1');
      const len = Number(/(?:^|\n)Content-Length: (\d+)/i.exec(head)?.[1] ?? 0);
      if (this.buf.length < end + 2 + len) return;
      const body = this.buf.subarray(end + 2, end + 2 + len).toString('utf8');
      this.buf = this.buf.subarray(end + 2 + len);
      const type = /(?:^|\n)Content-Type: ([^\n]+)/i.exec(head)?.[1]?.trim();
      if (type === 'text/event-json') {
        try {
          const e = JSON.parse(body) as Record<string, string>;
          this.out.push({
            name: e['Event-Name'] ?? '',
            at: Date.now(),
            ...(e['Application'] !== undefined ? { application: e['Application'] } : {}),
            ...(e['Unique-ID'] !== undefined ? { uuid: e['Unique-ID'] } : {}),
          });
        } catch {
          this.out.push({ name: '(unparsable json event)', at: Date.now() });
        }
      } else if (type === 'text/event-plain') {
        const name = /(?:^|\n)Event-Name: ([^\n]+)/.exec(body)?.[1] ?? '';
        const app = /(?:^|\n)Application: ([^\n]+)/.exec(body)?.[1];
        const uuid = /(?:^|\n)Unique-ID: ([^\n]+)/.exec(body)?.[1];
        this.out.push({
          name,
          at: Date.now(),
          ...(app !== undefined ? { application: decodeURIComponent(app) } : {}),
          ...(uuid !== undefined ? { uuid } : {}),
        });
      }
    }
  }
}

class CommandReader {
  private buf = Buffer.alloc(0);
  constructor(private readonly out: TappedCommand[]) {}

  push(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      // a command block ends with an empty line (\n\n; \r\n tolerated)
      const text = this.buf.toString('latin1');
      const m = /\r?\n\r?\n/.exec(text);
      if (!m) return;
      const headEnd = m.index + m[0].length;
      const lines = text.slice(0, m.index).split(/\r?\n/);
      // blank lines between commands
      const first = lines.shift() ?? '';
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const len = Number(headers['content-length'] ?? 0);
      if (this.buf.length < headEnd + len) return;
      const cmd: TappedCommand = { line: first.trim(), headers, at: Date.now() };
      if (len > 0) cmd.body = this.buf.subarray(headEnd, headEnd + len).toString('utf8');
      this.buf = this.buf.subarray(headEnd + len);
      if (cmd.line !== '' || Object.keys(headers).length > 0) this.out.push(cmd);
    }
  }
}

export class EslTap {
  readonly connections: TappedConnection[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** Listens on a free 127.0.0.1 port and relays every connection to 127.0.0.1:`targetPort()`. */
  static async start(targetPort: () => number): Promise<EslTap> {
    let tap!: EslTap;
    const server = createServer((fromSwitch) => tap.relay(fromSwitch, targetPort()));
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const a = server.address();
        resolve(typeof a === 'object' && a ? a.port : 0);
      });
    });
    tap = new EslTap(server, port);
    return tap;
  }

  /** the connections FreeSWITCH opened for the channel `uuid` */
  forCall(uuid: string): TappedConnection[] {
    return this.connections.filter((c) => c.uuid === uuid);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private relay(fromSwitch: Socket, port: number): void {
    const conn: TappedConnection = { uuid: undefined, commands: [], events: [], closed: false };
    this.connections.push(conn);
    const toAdapter = connect({ host: '127.0.0.1', port });
    fromSwitch.setNoDelay(true);
    toAdapter.setNoDelay(true);
    this.sockets.add(fromSwitch);
    this.sockets.add(toAdapter);
    const reader = new CommandReader(conn.commands);
    const events = new EventReader(conn.events);
    let head = '';
    fromSwitch.on('data', (chunk: Buffer) => {
      if (conn.uuid === undefined && head.length < 256 * 1024) {
        head += chunk.toString('latin1');
        const m = /(?:^|\n)Unique-ID: ([^\r\n]+)\r?\n/.exec(head);
        if (m) conn.uuid = m[1];
      }
      events.push(chunk);
      toAdapter.write(chunk);
    });
    toAdapter.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      fromSwitch.write(chunk);
    });
    // FreeSWITCH closes after linger; the adapter closes after `exit` or when it dies. A side that
    // ends gets the other one ended (pending bytes flushed), then destroyed a moment later.
    const closeOther = (other: Socket) => () => {
      conn.closed = true;
      this.sockets.delete(fromSwitch);
      this.sockets.delete(toAdapter);
      other.end();
      setTimeout(() => other.destroy(), 1000).unref();
    };
    fromSwitch.on('close', closeOther(toAdapter));
    toAdapter.on('close', closeOther(fromSwitch));
    const fail = () => {
      fromSwitch.destroy();
      toAdapter.destroy();
    };
    fromSwitch.on('error', fail);
    toAdapter.on('error', fail);
  }
}
