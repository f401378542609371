/**
 * One outbound event-socket connection from FreeSWITCH, behind a small typed interface.
 *
 * modesl does the framing and the command/reply bookkeeping. Its known defects are contained
 * here, from the outside, so that nothing above this file ever sees them:
 *  - an 'error' on a socket or connection without a listener crashes the process
 *    → we listen on both before modesl can emit anything;
 *  - a reset connection ('close' without 'end') is never cleaned up
 *    → our own 'close' listener is the one teardown path;
 *  - pending command callbacks never fire when the socket goes away
 *    → every command is a promise of ours, rejected at teardown;
 *  - a raw '%' in a header value throws inside the socket's 'data' handler (decodeURIComponent)
 *    → modesl reads from a guard that catches it and closes only that connection;
 *  - modesl buffers without bound → the guard counts bytes between parsed messages;
 *  - no `linger`, no types → plain commands through `command()`, types here.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import esl, { type Event as EslEvent, type SocketLike } from 'modesl';

/** A FreeSWITCH event as the call logic sees it: a name and header lookup, values decoded. */
export interface SwitchEvent {
  readonly name: string;
  get(header: string): string | undefined;
}

export type CloseReason =
  | 'exit' // we said goodbye
  | 'peer-closed' // FreeSWITCH closed (e.g. no linger and the channel went down)
  | 'reset' // the TCP connection broke
  | 'handshake-timeout' // connected but sent no channel data in time
  | 'frame-too-large' // more bytes than ESL_MAX_FRAME_BYTES without one complete message
  | 'malformed-frame' // bytes modesl could not parse
  | 'shutdown'; // the adapter is stopping

export class EslCommandError extends Error {
  constructor(
    readonly command: string,
    readonly reply: string,
  ) {
    super(`FreeSWITCH answered "${command}" with "${reply}"`);
    this.name = 'EslCommandError';
  }
}

export class EslClosedError extends Error {
  constructor(readonly reason: CloseReason) {
    super(`event socket closed (${reason})`);
    this.name = 'EslClosedError';
  }
}

export interface EslConnectionOptions {
  maxFrameBytes: number;
  handshakeTimeoutMs: number;
}

type Events = {
  event: [SwitchEvent];
  notice: [disposition: string];
  closed: [reason: CloseReason, detail: string | undefined];
};

/** A header lookup over modesl's event; modesl already decoded plain and json bodies alike. */
function view(event: EslEvent): SwitchEvent {
  return {
    name: event.getHeader('Event-Name') ?? '',
    get: (header) => event.getHeader(header) ?? undefined,
  };
}

/** The socket modesl sees. Data passes through a try/catch so that a parser throw stays here. */
class GuardedSocket extends EventEmitter implements SocketLike {
  constructor(private readonly socket: Socket) {
    super();
  }
  write(data: string): boolean {
    return this.socket.writable ? this.socket.write(data) : false;
  }
  end(): void {
    this.socket.end();
  }
}

export class EslConnection extends EventEmitter<Events> {
  private readonly conn: InstanceType<typeof esl.Connection>;
  private readonly guard: GuardedSocket;
  private readonly pending = new Set<(err: Error) => void>();
  private bytesSinceMessage = 0;
  private closedReason: CloseReason | undefined;
  private readonly handshakeTimer: NodeJS.Timeout;
  private readonly channelData: Promise<SwitchEvent>;
  readonly remote: string;

  constructor(
    private readonly socket: Socket,
    private readonly options: EslConnectionOptions,
  ) {
    super();
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    // Our listeners come first: no socket error can ever go unhandled.
    socket.on('error', (err) => this.close('reset', err.message));
    socket.on('close', () => this.close(this.closedReason ?? 'peer-closed'));
    socket.on('end', () => this.close('peer-closed'));

    this.guard = new GuardedSocket(socket);
    socket.on('data', (chunk: Buffer) => this.feed(chunk));

    this.conn = new esl.Connection(this.guard);
    this.conn.on('error', (err: Error) => this.close('malformed-frame', err.message));
    this.conn.onAny((name, ...args) => this.dispatch(Array.isArray(name) ? name.join('::') : name, args[0]));

    this.channelData = new Promise<SwitchEvent>((resolve, reject) => {
      this.pending.add(reject);
      this.conn.once('esl::ready', () => {
        this.pending.delete(reject);
        const data = this.conn.getInfo();
        if (data) resolve(view(data));
        else reject(new EslClosedError('malformed-frame'));
      });
    });
    this.channelData.catch(() => {});
    this.handshakeTimer = setTimeout(() => this.close('handshake-timeout'), options.handshakeTimeoutMs);
    this.handshakeTimer.unref();
    void this.channelData.then(() => clearTimeout(this.handshakeTimer), () => {});
  }

  /** The CHANNEL_DATA FreeSWITCH sends in reply to `connect` (modesl sends `connect` itself). */
  ready(): Promise<SwitchEvent> {
    return this.channelData;
  }

  get isOpen(): boolean {
    return this.closedReason === undefined;
  }

  /** A plain command such as `myevents` or `linger`; resolves with the Reply-Text. */
  command(line: string, headers?: Record<string, string>): Promise<string> {
    return this.request(line, (done) => this.conn.sendRecv(line, headers ?? null, (reply) => done(reply.getHeader('Reply-Text') ?? '')));
  }

  /** `sendmsg` execute: in async mode FreeSWITCH acknowledges at once; the outcome comes as events. */
  execute(app: string, arg: string): Promise<string> {
    return this.command('sendmsg', { 'call-command': 'execute', 'execute-app-name': app, 'execute-app-arg': arg });
  }

  hangup(cause: string): Promise<string> {
    return this.command('sendmsg', { 'call-command': 'hangup', 'hangup-cause': cause });
  }

  /** `api X` over this socket; resolves with the response body. */
  api(line: string): Promise<string> {
    return this.request(`api ${line}`, (done) => this.conn.api(line, (reply) => done(reply.getBody())));
  }

  /** Say goodbye: FreeSWITCH answers `+OK bye`, sends the disconnect notice and closes. */
  exit(graceMs = 2000): void {
    if (!this.isOpen) return;
    this.conn.send('exit');
    setTimeout(() => this.close('exit'), graceMs).unref();
  }

  close(reason: CloseReason, detail?: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    clearTimeout(this.handshakeTimer);
    const err = new EslClosedError(reason);
    for (const reject of this.pending) reject(err);
    this.pending.clear();
    this.conn.cmdCallbackQueue.length = 0;
    this.conn.apiCallbackQueue.length = 0;
    this.guard.emit('end'); // lets modesl drop its socket reference
    this.socket.destroy();
    this.emit('closed', reason, detail);
    this.removeAllListeners('event');
    this.removeAllListeners('notice');
  }

  private request(what: string, send: (done: (text: string) => void) => void): Promise<string> {
    if (!this.isOpen) return Promise.reject(new EslClosedError(this.closedReason ?? 'peer-closed'));
    return new Promise<string>((resolve, reject) => {
      this.pending.add(reject);
      send((text) => {
        this.pending.delete(reject);
        if (text.startsWith('-ERR')) reject(new EslCommandError(what.split('\n')[0] ?? what, text));
        else resolve(text);
      });
    });
  }

  private feed(chunk: Buffer): void {
    if (!this.isOpen) return;
    this.bytesSinceMessage += chunk.length;
    if (this.bytesSinceMessage > this.options.maxFrameBytes) {
      this.close('frame-too-large', `${this.bytesSinceMessage} bytes without a complete message`);
      return;
    }
    try {
      this.guard.emit('data', chunk);
    } catch (err) {
      this.close('malformed-frame', err instanceof Error ? err.message : String(err));
    }
  }

  private dispatch(name: string, payload: unknown): void {
    this.bytesSinceMessage = 0;
    if (!this.isOpen || !name.startsWith('esl::event::')) return;
    const rest = name.slice('esl::event::'.length);
    if (rest.startsWith('disconnect::notice')) {
      const ev = payload as EslEvent;
      this.emit('notice', ev.getHeader('Content-Disposition') ?? '');
      return;
    }
    if (rest.startsWith('command::reply') || rest.startsWith('api::response') || rest.startsWith('raw::') || rest.startsWith('CHANNEL_DATA') || rest.startsWith('logdata') || rest.startsWith('auth::')) {
      return;
    }
    const ev = payload as EslEvent;
    if (ev && typeof ev.getHeader === 'function') this.emit('event', view(ev));
  }
}
