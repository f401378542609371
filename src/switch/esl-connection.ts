/**
 * One outbound event-socket connection from FreeSWITCH, behind a small typed interface.
 *
 * modesl (behind esl.ts, the only file that knows it) does the handshake (`connect` and the
 * subscription), sends the commands and keeps the command/reply bookkeeping. Its Parser is not
 * used: it rebuilds each event header by header with a linear search (quadratic in the ~170
 * headers of a channel event) after a full JSON.parse, and re-joins its whole buffer on every
 * read — over half of the adapter's CPU time per call (bench/README.md). esl-frames.ts reads the
 * socket instead and esl.ts hands modesl's connection the same messages its Parser would have
 * emitted.
 * Its known defects are contained here and in esl.ts, from the outside, so that nothing above
 * this file ever sees them:
 *  - an 'error' on a socket or connection without a listener crashes the process
 *    → we listen on both before modesl can emit anything;
 *  - a reset connection ('close' without 'end') is never cleaned up
 *    → our own 'close' listener is the one teardown path;
 *  - pending command callbacks never fire when the socket goes away
 *    → every command is a promise of ours, rejected at teardown;
 *  - a raw '%' in a header value throws inside the socket's 'data' handler (decodeURIComponent)
 *    → values are decoded as FreeSWITCH decodes them (esl-frames.ts urlDecode), and the socket is
 *    read inside a guard: whatever else throws while a message is read (a broken XML event…)
 *    closes only that connection;
 *  - commands are written as they are given → a line break in a value would start another
 *    command; such a command is refused (EslUnsafeCommandError) before anything is written;
 *  - modesl buffers without bound → the guard counts bytes between parsed messages;
 *  - one write per command line and header (a packet each, with no-delay)
 *    → esl.ts writes what modesl sends in one tick at once;
 *  - no `linger`, no types → plain commands through `command()`, types here;
 *  - its subscription on `connect` (`event json …`) takes every channel's events of the switch
 *    until `myevents` → replaced by `myevents json`, this channel's events only.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { OutboundProtocol } from './esl.js';
import { FrameReader, JsonEvent, plainEvent, type EventLike, type HeaderText } from './esl-frames.js';

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

/**
 * A command that would not be one command on the wire: a line break (or any other control
 * character) in its line or a header value ends the header or the whole packet early and starts
 * another — FreeSWITCH reads a packet up to the first blank line (mod_event_socket.c
 * read_packet()), and with `async full` the next packet may be `api system …`. Values from the
 * channel (zammad_bridge), from Zammad (a dial reply's caller id) or from the directory never
 * reach the socket unchecked: this is refused before anything is written.
 */
export class EslUnsafeCommandError extends Error {
  constructor(
    readonly command: string,
    readonly field: string,
  ) {
    super(`not sent to FreeSWITCH: ${field} of "${command}" contains a line break or another control character`);
    this.name = 'EslUnsafeCommandError';
  }
}

const CONTROL = /[\x00-\x1f\x7f]/;
/** Events kept until the call follows them (a handful come before: CHANNEL_PARK at most). */
const EARLY_EVENTS = 64;
const HEADER_NAME = /^[A-Za-z0-9_-]+$/;

/** The part of a command that would break the packet apart, or undefined when it is one packet. */
function unsafePart(line: string, headers: Record<string, string> | undefined): string | undefined {
  if (CONTROL.test(line)) return 'the command line';
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (!HEADER_NAME.test(name)) return `header name "${name.replace(/[^\x20-\x7e]/g, '?').slice(0, 40)}"`;
    if (typeof value !== 'string' || CONTROL.test(value)) return `header ${name}`;
  }
  return undefined;
}

export class EslClosedError extends Error {
  constructor(
    readonly reason: CloseReason,
    readonly detail?: string,
  ) {
    super(`event socket closed (${reason}${detail ? `: ${detail}` : ''})`);
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
function view(event: EventLike): SwitchEvent {
  // Strings only: in a JSON event a peer can put a number, an array or an object where a
  // header's text belongs (FreeSWITCH writes arrays for ARRAY:: headers only).
  const text = (v: unknown): string | undefined =>
    typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;
  return {
    name: text(event.getHeader('Event-Name')) ?? '',
    get: (header) => text(event.getHeader(header)),
  };
}

/**
 * The subscription, in place of modesl's `event json BACKGROUND_JOB CHANNEL_EXECUTE_COMPLETE`.
 * On an outbound socket that is every channel's events switch-wide (event_handler() narrows to
 * this call only once `myevents` is on): seen on a real switch, a dozen other calls' events
 * reached each new call before our `myevents`. `myevents json` is this channel's events only, as
 * JSON, from the start (it sets the format too, as `event json` did).
 */
const SUBSCRIPTION = 'myevents json';

export class EslConnection extends EventEmitter<Events> {
  private readonly esl: OutboundProtocol;
  private readonly reader = new FrameReader();
  private readonly pending = new Set<(err: Error) => void>();
  private bytesSinceMessage = 0;
  private closedReason: CloseReason | undefined;
  private socketError: string | undefined;
  private readonly handshakeTimer: NodeJS.Timeout;
  private channelData: Promise<SwitchEvent> | undefined;
  readonly remote: string;

  constructor(
    private readonly socket: Socket,
    private readonly options: EslConnectionOptions,
  ) {
    super();
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    // Our listeners come first: no socket error can ever go unhandled. An error only records
    // why; 'close' (which node emits after every error, and after a reset without 'end') is the
    // one teardown path, so a connection that breaks in any way is cleaned up exactly once.
    socket.on('error', (err) => (this.socketError ??= err.message));
    socket.on('close', () => this.close(this.socketError !== undefined ? 'reset' : 'peer-closed', this.socketError));
    socket.on('end', () => this.close('peer-closed'));
    socket.on('data', (chunk: Buffer) => this.feed(chunk));

    // Dropped once used: this constructor's scope is shared by the socket's listeners, which live
    // as long as the call, and the resolve function holds its promise, which holds the channel
    // data (~7 KB a held call, bench/README.md, memory).
    let handshake: { resolve: (data: SwitchEvent) => void; reject: (err: Error) => void } | undefined;
    this.channelData = new Promise<SwitchEvent>((resolve, reject) => {
      this.pending.add(reject);
      handshake = { resolve, reject };
    });
    this.esl = new OutboundProtocol(socket, {
      ready: (data) => {
        if (!handshake) return;
        const h = handshake;
        handshake = undefined;
        this.pending.delete(h.reject);
        if (data) h.resolve(view(data));
        else {
          // The reply to `connect` was not a CHANNEL_DATA block: nothing to follow on this
          // connection. Closed now, not left open until the handshake timer fires.
          h.reject(new EslClosedError('malformed-frame'));
          this.close('malformed-frame', 'the reply to connect carried no channel data');
        }
      },
      notice: (disposition) => {
        if (this.isOpen) this.emit('notice', disposition);
      },
      error: (err) => this.close('malformed-frame', err.message),
    });
    this.channelData.catch(() => {});
    let shook = false;
    // Node runs due timers before it polls the sockets: on a busy loop the peer's reply may sit
    // unread when the timer fires. The close waits for this turn's reads (setImmediate runs after them).
    this.handshakeTimer = setTimeout(() => {
      setImmediate(() => {
        if (!shook) this.close('handshake-timeout');
      });
    }, options.handshakeTimeoutMs);
    this.handshakeTimer.unref();
    void this.channelData.then(
      () => {
        shook = true;
        clearTimeout(this.handshakeTimer);
      },
      () => {},
    );
  }

  /**
   * The CHANNEL_DATA FreeSWITCH sends in reply to `connect` (modesl sends `connect` itself).
   * Handed out once: the connection keeps no reference to it, so that a call followed for hours
   * does not carry its ~7 KB of channel data once the caller has read what it needs
   * (bench/README.md, memory). A second call rejects.
   */
  ready(): Promise<SwitchEvent> {
    const data = this.channelData;
    this.channelData = undefined;
    return data ?? Promise.reject(new Error('EslConnection.ready(): the channel data is handed out once'));
  }

  get isOpen(): boolean {
    return this.closedReason === undefined;
  }

  /**
   * The call's events from now on (`myevents json`). Sent by the call with its other opening
   * commands, in one write; a refusal closes the connection: without it the call could not be
   * followed at all, so it says so rather than wait for nothing.
   */
  subscribe(): Promise<string> {
    return this.command(SUBSCRIPTION).catch((err: unknown) => {
      if (!(err instanceof EslCommandError)) throw err;
      const detail = `FreeSWITCH refused "${SUBSCRIPTION}": ${err.reply}`;
      this.close('malformed-frame', detail);
      throw new EslClosedError('malformed-frame', detail);
    });
  }

  /** A plain command such as `myevents` or `linger`; resolves with the Reply-Text. */
  command(line: string, headers?: Record<string, string>): Promise<string> {
    const unsafe = unsafePart(line, headers);
    if (unsafe !== undefined)
      return Promise.reject(new EslUnsafeCommandError(line.split(/[\r\n]/)[0]?.slice(0, 40) ?? '', unsafe));
    return this.request(line, (done) => this.esl.command(line, headers, done));
  }

  /** `sendmsg` execute: in async mode FreeSWITCH acknowledges at once; the outcome comes as events. */
  execute(app: string, arg: string): Promise<string> {
    return this.command('sendmsg', { 'call-command': 'execute', 'execute-app-name': app, 'execute-app-arg': arg });
  }

  hangup(cause: string): Promise<string> {
    return this.command('sendmsg', { 'call-command': 'hangup', 'hangup-cause': cause });
  }

  /**
   * `api X` over this socket; resolves with the response body, `-ERR …` included: for a look-up
   * that is an answer ("no such variable": user_data writes nothing, api_exec says `-ERR no
   * reply`), not a failure worth an Error and its stack on every call.
   */
  api(line: string): Promise<string> {
    if (CONTROL.test(line)) return Promise.reject(new EslUnsafeCommandError('api', 'the command line'));
    return this.request(`api ${line}`, (done) => this.esl.api(line, done), false);
  }

  /** Say goodbye: FreeSWITCH answers `+OK bye`, sends the disconnect notice and closes. */
  exit(graceMs = 2000): void {
    if (!this.isOpen) return;
    this.esl.send('exit');
    setTimeout(() => this.close('exit'), graceMs).unref();
  }

  close(reason: CloseReason, detail?: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    clearTimeout(this.handshakeTimer);
    if (this.pending.size > 0) {
      const err = new EslClosedError(reason, detail); // an Error (and its stack) only when someone waits for it
      for (const reject of this.pending) reject(err);
      this.pending.clear();
    }
    this.esl.release();
    this.socket.destroy();
    this.emit('closed', reason, detail);
    this.removeAllListeners('event');
    this.removeAllListeners('notice');
  }

  /**
   * Events of the channel, to `listener`, starting with those that came before it listened: the
   * subscription is answered during the handshake, and an event can share a TCP read with that
   * reply, before the call has read its channel data.
   */
  follow(listener: (e: SwitchEvent) => void): void {
    this.on('event', listener);
    const early = this.early;
    this.early = undefined;
    for (const e of early ?? []) listener(e);
  }

  private early: SwitchEvent[] | undefined = [];

  private forward(e: SwitchEvent): void {
    if (this.early === undefined) this.emit('event', e);
    else if (this.early.length < EARLY_EVENTS) this.early.push(e);
  }

  private request(what: string, send: (done: (text: string) => void) => void, errIsFailure = true): Promise<string> {
    if (!this.isOpen) return Promise.reject(new EslClosedError(this.closedReason ?? 'peer-closed'));
    return new Promise<string>((resolve, reject) => {
      this.pending.add(reject);
      send((text) => {
        this.pending.delete(reject);
        if (errIsFailure && text.startsWith('-ERR')) reject(new EslCommandError(what.split('\n')[0] ?? what, text));
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
      this.reader.push(chunk, this.deliver);
    } catch (err) {
      this.close('malformed-frame', err instanceof Error ? err.message : String(err));
    }
  }

  /**
   * One message. Events go straight to the call: modesl's routing of them (three header look-ups
   * and an emit through EventEmitter2's wildcard tree per event) serves nothing here. Replies,
   * api responses and notices go to modesl's connection, for its command/reply bookkeeping.
   */
  private readonly deliver = (headers: HeaderText, body: string | undefined): void => {
    if (!this.isOpen) return;
    const type = headers.get('Content-Type');
    const event = this.eventOf(type, body ?? '');
    if (event !== undefined) {
      this.bytesSinceMessage = 0;
      const ev = view(event);
      if (!ev.name.startsWith('CHANNEL_DATA')) this.forward(ev);
      return;
    }
    if (this.esl.hand(headers, body)) this.bytesSinceMessage = 0;
  };

  /** An event as modesl's Parser would have built it (Parser._parseEvent); undefined: not an event. */
  private eventOf(type: unknown, body: string): EventLike | undefined {
    switch (type) {
      case 'text/event-json':
        return new JsonEvent(body);
      case 'text/event-plain':
        return plainEvent(body);
      case 'text/event-xml':
        return this.esl.xmlEvent(body);
      default:
        return undefined;
    }
  }
}
