/**
 * modesl, behind two small typed faces: the only file that imports it or knows how it works
 * inside. Its Connection does the handshake (`connect`, or `auth` on the inbound socket), sends the
 * commands and keeps the command/reply bookkeeping; esl-connection.ts (one outbound connection per
 * call) and inbound.ts (the inbound socket, re-attach after a restart) use what this file exports.
 *
 * For the outbound side it reaches into modesl's internals, so package.json pins modesl to the
 * exact version read here and test/unit/modesl-contract.test.ts checks each of these with a plain
 * message when an upgrade changes it:
 *  - Connection#subscribe, replaced on each connection: the outbound constructor calls it once
 *    `connect` is answered and emits `esl::ready` when its callback runs (here at once: the call
 *    subscribes itself, together with its other opening commands, esl-connection.ts subscribe());
 *  - Connection#parser.emit('esl::event', event, headers, body): messages read by esl-frames.ts are
 *    handed in where modesl's Parser would emit them (its Parser does not read the socket at all);
 *  - Parser#_parseXmlBody: an XML event read as modesl reads it;
 *  - Connection#cmdCallbackQueue and #apiCallbackQueue, emptied at teardown;
 *  - Connection#channelData, dropped once read;
 *  - the socket's 'end', on which modesl lets go of its socket.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import esl, { type Event as EslEvent, type SocketLike } from 'modesl';
import { BlockEvent, type EventLike, type HeaderText } from './esl-frames.js';

type ModeslConnection = InstanceType<typeof esl.Connection>;

/** A reply's Reply-Text; '' when it has none. */
const replyText = (reply: EslEvent): string => reply.getHeader('Reply-Text') ?? '';

/** The name modesl emits an event under, as one string (EventEmitter2 may hand it split). */
const nameOf = (name: string | string[]): string => (Array.isArray(name) ? name.join('::') : name);

/**
 * The socket modesl sees on an outbound connection. It never emits 'data' (the socket is read by
 * EslConnection with esl-frames.ts); what modesl writes in one tick — a write per command line and
 * header, each a packet of its own with no-delay — leaves in one write.
 */
class GuardedSocket extends EventEmitter implements SocketLike {
  private queued: string[] = [];
  constructor(private readonly socket: Socket) {
    super();
  }
  write(data: string): boolean {
    if (!this.socket.writable) return false;
    if (this.queued.length === 0) process.nextTick(this.flush);
    this.queued.push(data);
    return true;
  }
  end(): void {
    this.flush();
    this.socket.end();
  }
  private readonly flush = (): void => {
    if (this.queued.length === 0) return;
    const data = this.queued.length === 1 ? (this.queued[0] as string) : this.queued.join('');
    this.queued = [];
    if (this.socket.writable) this.socket.write(data);
  };
}

export interface OutboundHandlers {
  /** The handshake is over; the reply to `connect` (null when it was not a CHANNEL_DATA block). */
  ready(channelData: EventLike | null): void;
  /** A text/disconnect-notice, by its Content-Disposition. */
  notice(disposition: string): void;
  /** Something modesl could not handle (a broken XML event, a write that threw). */
  error(err: Error): void;
}

/** modesl's outbound Connection on a socket FreeSWITCH opened, fed from outside. */
export class OutboundProtocol {
  private readonly conn: ModeslConnection;
  private readonly guard: GuardedSocket;

  /**
   * modesl's own `event json BACKGROUND_JOB …` after `connect` is not sent: the handshake ends with
   * the reply to `connect`, and the call subscribes in the same write as its linger and filters.
   */
  constructor(socket: Socket, handlers: OutboundHandlers) {
    this.guard = new GuardedSocket(socket);
    this.conn = new esl.Connection(this.guard);
    const conn = this.conn;
    conn.subscribe = (_events, cb) => cb?.();
    conn.on('error', (err: Error) => handlers.error(err));
    conn.onAny((name, ...args) => {
      if (!nameOf(name).startsWith('esl::event::disconnect::notice')) return;
      handlers.notice((args[0] as EslEvent).getHeader('Content-Disposition') ?? '');
    });
    conn.once('esl::ready', () => {
      const data = conn.getInfo();
      conn.channelData = null; // the caller's is the only copy
      handlers.ready(data);
    });
  }

  /** A plain command (and its headers); `done` gets the Reply-Text. */
  command(line: string, headers: Record<string, string> | undefined, done: (replyText: string) => void): void {
    this.conn.sendRecv(line, headers ?? null, (reply) => done(replyText(reply)));
  }

  /** `api <line>`; `done` gets the response body. */
  api(line: string, done: (body: string) => void): void {
    this.conn.api(line, (reply) => done(reply.getBody()));
  }

  /** A command whose reply nobody waits for (`exit`). */
  send(line: string): void {
    this.conn.send(line);
  }

  /** An XML event, read by modesl's own reader: a broken body emits an error, then throws. */
  xmlEvent(text: string): EventLike {
    return new esl.Event(this.conn.parser._parseXmlBody(text));
  }

  /**
   * A message that is not an event (a command reply, an api response, a notice…), handed to
   * modesl's connection where its Parser would have emitted it, for its command/reply
   * bookkeeping. False: not handed over — an auth/request, which FreeSWITCH sends only to inbound
   * clients (mod_event_socket.c: a listener without a session); modesl would answer it with
   * "auth undefined" and put a reply callback of its own in the queue of ours.
   */
  hand(headers: HeaderText, body: string | undefined): boolean {
    const type = headers.get('Content-Type');
    if (type === 'auth/request') return false;
    // Of the outer headers, modesl's connection reads these two.
    const outer: Record<string, string | number> = {};
    if (type !== undefined) outer['Content-Type'] = type;
    const name = headers.get('Event-Name');
    if (name !== undefined) outer['Event-Name'] = name;
    const event: EventLike = new BlockEvent(headers, body ?? '');
    this.conn.parser.emit('esl::event', event as EslEvent, outer, body);
    return true;
  }

  /** Teardown: the callbacks of commands still waiting are forgotten, and modesl drops the socket. */
  release(): void {
    this.conn.cmdCallbackQueue.length = 0;
    this.conn.apiCallbackQueue.length = 0;
    this.guard.emit('end');
  }
}

export interface InboundHandlers {
  /** Logged in (modesl has sent its own `event json BACKGROUND_JOB CHANNEL_EXECUTE_COMPLETE`). */
  ready(): void;
  authFailed(): void;
  /** How far the login got: for the reason when it does not finish in time. */
  progress(stage: 'connected' | 'asked for the password'): void;
  error(err: Error): void;
  /** The TCP connection closed. */
  closed(): void;
  /** An event whose Event-Name starts with CHANNEL_: the only kind the inbound socket reads. */
  channelEvent(e: EventLike): void;
}

/** modesl's inbound Connection: it connects to FreeSWITCH's event socket and logs in. */
export class InboundProtocol {
  private readonly conn: ModeslConnection;

  constructor(host: string, port: number, password: string, handlers: InboundHandlers) {
    this.conn = new esl.Connection(host, port, password, () => handlers.ready());
    this.conn.on('error', (err: Error) => handlers.error(err));
    this.conn.on('esl::event::auth::fail', () => handlers.authFailed());
    this.conn.on('esl::connect', () => handlers.progress('connected'));
    this.conn.on('esl::event::auth::request', () => handlers.progress('asked for the password'));
    this.socket()?.on('close', () => handlers.closed());
    this.conn.onAny((name, ev) => {
      if (!nameOf(name).startsWith('esl::event::CHANNEL_')) return;
      const e = ev as EslEvent;
      if (e && typeof e.getHeader === 'function') handlers.channelEvent(e);
    });
  }

  /** A plain command; `done` gets the Reply-Text. */
  command(line: string, done: (replyText: string) => void): void {
    this.conn.sendRecv(line, (reply) => done(replyText(reply)));
  }

  /** `api <line>`; `done` gets the response body. */
  api(line: string, done: (body: string) => void): void {
    this.conn.api(line, (reply) => done(reply.getBody()));
  }

  destroy(): void {
    this.socket()?.destroy();
  }

  /** The net.Socket modesl connected; null once it has seen the socket end. */
  private socket(): Socket | null {
    return this.conn.socket as unknown as Socket | null;
  }
}
