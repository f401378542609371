/**
 * A small client for FreeSWITCH's INBOUND event socket (mod_event_socket, 127.0.0.1:8021): the
 * suite's own view of the switch, independent of the adapter's ESL library. Raw node:net:
 * `auth`, `api`, `bgapi` (its result arrives as a BACKGROUND_JOB event), `event plain …`,
 * `filter`. Frames are read with the switch double's frame reader (packages/sim/src/esl-wire.ts);
 * plain events are parsed with URL-decoded header values (switch_url_decode semantics).
 *
 * Every wait here has a bound: a command without a reply within `timeoutMs` rejects.
 */
import { connect, type Socket } from 'node:net';
import { FrameParser, parsePlainEvent, type FsFrame } from '@freeswitch-zammad-cti/sim/esl-wire';

/** One event as received: headers URL-decoded (first occurrence wins), plus the body if any. */
export interface FsEvent {
  name: string;
  headers: Record<string, string>;
  body?: string;
  /** when this process read it (ms, Date.now) */
  receivedAt: number;
}

export interface EslAddress {
  host: string;
  port: number;
  password: string;
}

interface Pending {
  resolve: (frame: FsFrame) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  what: string;
}

export class EslClient {
  private readonly parser = new FrameParser();
  /** replies (command/reply, api/response) come back in the order the commands were sent */
  private readonly pending: Pending[] = [];
  private readonly jobs = new Map<
    string,
    { resolve: (body: string) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();
  /** BACKGROUND_JOB results that arrived before bgapi() registered the job (same read as the reply) */
  private readonly unclaimed = new Map<string, string>();
  private readonly listeners = new Set<(e: FsEvent) => void>();
  private closedError: Error | undefined;

  private constructor(
    private readonly socket: Socket,
    readonly address: EslAddress,
  ) {
    socket.on('data', (chunk: Buffer) => {
      for (const frame of this.parser.push(chunk)) this.onFrame(frame);
    });
    const fail = (err: Error) => {
      if (this.closedError) return;
      this.closedError = err;
      for (const p of this.pending.splice(0)) {
        clearTimeout(p.timer);
        p.reject(new Error(`${p.what}: ${err.message}`));
      }
      for (const [, j] of this.jobs) {
        clearTimeout(j.timer);
        j.reject(err);
      }
      this.jobs.clear();
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('inbound event socket closed')));
  }

  /**
   * Connects and authenticates. Rejects within `timeoutMs` with a message naming the address
   * (connection refused, no auth/request, wrong password).
   */
  static async connect(address: EslAddress, timeoutMs = 5000): Promise<EslClient> {
    const where = `${address.host}:${address.port}`;
    const socket = connect({ host: address.host, port: address.port });
    socket.setNoDelay(true);
    const client = new EslClient(socket, address);
    try {
      const greeting = await client.expectFrame('auth/request from the switch', timeoutMs);
      if (greeting.headers['Content-Type'] !== 'auth/request')
        throw new Error(`unexpected greeting ${greeting.headers['Content-Type']}`);
      const reply = await client.command(`auth ${address.password}`, timeoutMs);
      if (!reply.startsWith('+OK')) throw new Error(`authentication refused: ${reply}`);
      return client;
    } catch (err) {
      socket.destroy();
      throw new Error(`no FreeSWITCH event socket at ${where}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** `api CMD`: the body of the api/response. */
  async api(cmd: string, timeoutMs = 10_000): Promise<string> {
    this.write(`api ${cmd}\n\n`);
    const frame = await this.expectFrame(`api ${cmd}`, timeoutMs);
    return frame.body;
  }

  /**
   * `bgapi CMD`: resolves with the BACKGROUND_JOB's body (e.g. `+OK <uuid>` or `-ERR USER_BUSY`).
   * The subscription must include BACKGROUND_JOB (subscribe() always adds it).
   */
  async bgapi(cmd: string, timeoutMs = 30_000): Promise<string> {
    const reply = await this.command(`bgapi ${cmd}`, 5000);
    const m = /^\+OK Job-UUID: (\S+)/.exec(reply);
    if (!m) throw new Error(`bgapi ${cmd}: ${reply}`);
    const jobUuid = m[1] as string;
    const early = this.unclaimed.get(jobUuid);
    if (early !== undefined) {
      this.unclaimed.delete(jobUuid);
      return early;
    }
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.jobs.delete(jobUuid);
        reject(new Error(`bgapi ${cmd}: no BACKGROUND_JOB within ${timeoutMs} ms`));
      }, timeoutMs);
      this.jobs.set(jobUuid, { resolve, reject, timer });
    });
  }

  /** `event plain NAMES…` (BACKGROUND_JOB always added, for bgapi). */
  async subscribe(names: readonly string[]): Promise<void> {
    const list = [...new Set([...names, 'BACKGROUND_JOB'])].join(' ');
    const reply = await this.command(`event plain ${list}`);
    if (!reply.startsWith('+OK')) throw new Error(`event plain: ${reply}`);
  }

  /** `filter HEADER VALUE` (FreeSWITCH 1.10 also takes `/regex/` as the value). */
  async filter(header: string, value: string): Promise<void> {
    const reply = await this.command(`filter ${header} ${value}`);
    if (!reply.startsWith('+OK')) throw new Error(`filter: ${reply}`);
  }

  onEvent(listener: (e: FsEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closedError) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, 1000);
      this.socket.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      this.socket.end('exit\n\n');
    });
  }

  // ---------------------------------------------------------------------------------------------

  /** A command answered by command/reply: resolves with its Reply-Text. */
  private async command(line: string, timeoutMs = 5000): Promise<string> {
    this.write(`${line}\n\n`);
    const frame = await this.expectFrame(line.startsWith('auth ') ? 'auth' : line, timeoutMs);
    return frame.headers['Reply-Text'] ?? '';
  }

  private write(data: string): void {
    if (this.closedError) throw new Error(`inbound event socket unusable: ${this.closedError.message}`);
    this.socket.write(data);
  }

  private expectFrame(what: string, timeoutMs: number): Promise<FsFrame> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise<FsFrame>((resolve, reject) => {
      const entry: Pending = {
        resolve,
        reject,
        what,
        timer: setTimeout(() => {
          const i = this.pending.indexOf(entry);
          if (i >= 0) this.pending.splice(i, 1);
          reject(new Error(`${what}: no reply within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.pending.push(entry);
    });
  }

  private onFrame(frame: FsFrame): void {
    const type = frame.headers['Content-Type'];
    if (type === 'text/event-plain') {
      const parsed = parsePlainEvent(frame.body);
      const event: FsEvent = { name: parsed.map['Event-Name'] ?? '', headers: parsed.map, receivedAt: Date.now() };
      if (parsed.body !== undefined) event.body = parsed.body;
      if (event.name === 'BACKGROUND_JOB') {
        const job = this.jobs.get(parsed.map['Job-UUID'] ?? '');
        if (job) {
          this.jobs.delete(parsed.map['Job-UUID'] ?? '');
          clearTimeout(job.timer);
          job.resolve(event.body ?? '');
        } else if (parsed.map['Job-UUID']) {
          // the reply to our bgapi is in the same read and its continuation has not run yet
          this.unclaimed.set(parsed.map['Job-UUID'], event.body ?? '');
          if (this.unclaimed.size > 1000) this.unclaimed.delete(this.unclaimed.keys().next().value as string);
        }
      }
      for (const l of [...this.listeners]) l(event);
      return;
    }
    if (type === 'text/disconnect-notice') return;
    // auth/request, command/reply, api/response: the oldest waiting command's answer
    const p = this.pending.shift();
    if (!p) return;
    clearTimeout(p.timer);
    p.resolve(frame);
  }
}
