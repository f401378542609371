/**
 * Zammad double: a real HTTP server (node:http) that behaves like Zammad's CTI (generic) Push API
 * endpoint `POST /api/v1/cti/:token`, and keeps a caller log the way Zammad's `Cti::Log` does.
 *
 * Behaviour-faithful to ../../../shared/spec/zammad-behaviour.md, which wins over the public API text.
 * Details checked against Zammad's source (zammad/zammad):
 *  - app/controllers/integration/cti_controller.rb: before_action check_configured (disabled →
 *    422, cti_config / inbound / outbound blank → 422), then check_token (401); replies rendered with
 *    `render json:` (always JSON, whatever the Accept header): `{}`, reject `{action:'reject',
 *    reason:'busy'}`, dial `{action:'dial', caller_id:, number:}`, invalid direction 422.
 *  - app/models/cti/driver/base.rb#process: direction_check first (nothing stored); reject_check
 *    (inbound newCall, `from` exactly equal to a blocked caller id) still calls Cti::Log.process;
 *    caller_id_rewrite (outbound newCall, routing_table `dest` with `*` → `.+?`, matched as
 *    /^dest$/, first match wins, else default_caller_id) replaces params['from'] with the chosen
 *    caller id BEFORE the log entry is stored; `number` is params[:to] as sent.
 *    push_open_ticket_screen_recipient calls `@params[:user].downcase` for an inbound answer, so a
 *    `user[]` array there raises NoMethodError (500) after the answer was stored.
 *  - app/models/cti/log.rb#process: callId || call_id; user array joined with ", "; newCall raises
 *    "call_id … already exists!" if the id is known; inbound newCall done=false, outbound done=true;
 *    answer/hangup raise "No such call_id …" for an unknown id; answer after hangup is ignored;
 *    answer sets state, start_at (again on every answer), waiting time, to_comment=user if sent,
 *    done=true, comment=cause; hangup sets done=true, then false for direction=in if (state was
 *    newCall and cause != forwarded) or to_comment == 'voicemail'; end_at, talking / waiting time;
 *    unknown event → ArgumentError.
 *  - app/controllers/application_controller/handles_errors.rb: StandardError → 500, ArgumentError
 *    and ActiveRecord::StatementInvalid → 422; respond_to json → humanize_error (messages matching
 *    /already exists|duplicate key/ → "This object already exists.", "null value in column …" →
 *    "Attribute '…' required!", anything else → "Error ID xxxxxxxx: Please contact your
 *    administrator."), any other format → public/<status>.html rendered as text/html.
 *  - spec/requests/integration/cti_spec.rb: expected replies, stored from = rewritten caller id,
 *    queue, done flags, voicemail, answer after hangup → 200.
 *  - ApplicationModel's attribute length check cuts strings to the column limit (call_id 250,
 *    from/to 100) so later lookups with the full id fail.
 */
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes } from 'node:crypto';

// ---------------------------------------------------------------------------------------------
// Public types

export interface OutboundRoute {
  /** routing_table dest: matched as /^dest$/ with `*` standing for one or more characters */
  dest: string;
  callerId: string;
}

export interface ZammadSettings {
  /** valid token in POST /api/v1/cti/:token */
  token: string;
  /** Setting cti_integration; false → 422 "Feature is disabled, …" (default true) */
  enabled: boolean;
  /** cti_config with inbound and outbound present; false → 422 "Feature not configured, …" (default true) */
  configured: boolean;
  /** inbound.block_caller_ids: inbound newCall from exactly equal → reject/busy */
  blockedNumbers: string[];
  /** outbound.routing_table */
  outboundRoutes: OutboundRoute[];
  /** outbound.default_caller_id ('' or undefined = none) */
  defaultCallerId: string | undefined;
  /** key of the caller id in dial replies: real Zammad code uses 'caller_id', the public text 'callerId' */
  dialKey: 'caller_id' | 'callerId';
  /**
   * How the error format (JSON or HTML page) of *exception* replies (422 unknown event / missing
   * call id, 500s, 404) is chosen:
   *  - 'strict' (default, per zammad-behaviour.md): JSON only when Accept names application/json;
   *  - 'rails': Rails' own negotiation: JSON also for a lone `Accept: *∕*` (what fetch/undici send
   *    by default), HTML for no Accept or a browser-like one.
   * Replies the controller renders itself (200, 401, disabled/not configured/direction 422) are JSON always.
   */
  acceptNegotiation: 'strict' | 'rails';
}

export interface ZammadDoubleOptions extends Partial<Omit<ZammadSettings, 'token'>> {
  token: string;
  host?: string;
  /** default 0 (any free port) */
  port?: number;
  /** clock in ms since the epoch (default Date.now); inject one to test start/end times without sleeping */
  now?: () => number;
}

export type Params = Record<string, string | string[]>;

export interface ReceivedPost {
  /** 1-based arrival number */
  seq: number;
  /** clock time when the request body was complete */
  at: number;
  method: string;
  /** path and query as requested */
  path: string;
  /** token from the path ('' if the path is not /api/v1/cti/:token) */
  token: string;
  contentType: string;
  accept: string | undefined;
  /** parsed body (form or JSON) merged over the query; `user[]` repeated → array under `user` */
  params: Params;
  raw: string;
  /** convenience: params.event / params.callId (or call_id) when they are strings */
  event: string | undefined;
  callId: string | undefined;
  /** the fault applied to this request, if any */
  fault: Fault['kind'] | undefined;
  /** HTTP status sent; 0 while unanswered, or if never answered (hang, reset, stop) */
  status: number;
  /** body sent (for hugeBody / neverEndingBody: the JSON part, without the padding) */
  reply: string;
  repliedAt: number | undefined;
}

export interface CtiLogEntry {
  /** creation order, 1-based */
  id: number;
  /** call id as stored (cut at 250 chars) */
  callId: string;
  direction: 'in' | 'out';
  /** as stored, cut at 100; for an outbound call that got a dial reply: the caller id Zammad chose */
  from: string | null;
  to: string | null;
  /** user(s) of the newCall, joined with ", " (null when none was sent) */
  users: string | null;
  /** Zammad's from_comment / to_comment as far as the double knows them (no customer lookup) */
  fromComment: string | null;
  toComment: string | null;
  queue: string | null;
  state: 'newCall' | 'answer' | 'hangup';
  done: boolean;
  /** Zammad's `comment`: the cause of the latest applied event (each event overwrites it) */
  cause?: string;
  /** user sent with the latest applied answer */
  answeredBy?: string;
  /** answeringNumber of the latest applied answer/hangup (not stored by Zammad; kept for tests) */
  answeringNumber?: string;
  initializedAt: number;
  startAt?: number;
  endAt?: number;
  /** seconds, computed as Zammad does (to_i differences) */
  durationWaitingTime?: number;
  durationTalkingTime?: number;
  /** hangups applied (> 1 means a repeated hangup reached Zammad) */
  hangups: number;
  /** answers applied */
  answers: number;
  /** answers that arrived after the hangup and were ignored */
  ignoredAnswers: number;
}

export type Fault =
  | { kind: 'none' }
  /** reply with this status (e.g. 503 from a proxy, an HTML 500 page); process=true: Zammad stored the event first */
  | { kind: 'status'; status: number; body?: string; contentType?: string; headers?: Record<string, string>; process?: boolean }
  /** slow Zammad: the event is processed (stored) at once unless process='last', the reply is sent after ms */
  | { kind: 'delay'; ms: number; process?: 'first' | 'last' }
  /** read the request, never answer (until stop / refuseConnections); process=true: stored anyway */
  | { kind: 'hang'; process?: boolean }
  /** read the request, then reset the TCP connection; process=true: stored before the connection died */
  | { kind: 'reset'; process?: boolean }
  /** 200 with the normal JSON reply padded with whitespace to `bytes` (Content-Length set); processed */
  | { kind: 'hugeBody'; bytes: number }
  /** 200 headers and the start of the reply, then one byte every intervalMs (default 50) forever; processed */
  | { kind: 'neverEndingBody'; intervalMs?: number }
  /** 302 to location; not processed */
  | { kind: 'redirect'; location: string };

export interface FaultOptions {
  /** apply to the next N matching requests (default: until cleared) */
  times?: number;
  /** only requests whose `event` param is one of these */
  events?: string[];
}

// ---------------------------------------------------------------------------------------------
// Internals

interface Reply {
  status: number;
  contentType: string;
  body: string;
  headers?: Record<string, string>;
}

/** An exception as Rails' handles_errors would render it. */
class RailsError extends Error {
  constructor(
    readonly status: 404 | 422 | 500,
    message: string,
  ) {
    super(message);
  }
}

interface ParsedRequest {
  method: string;
  pathname: string;
  token: string;
  /** `.:format` suffix of the route, if any */
  format: string | undefined;
  routed: boolean;
  contentType: string;
  accept: string | undefined;
  params: Params;
  parseError: boolean;
}

const JSON_TYPE = 'application/json; charset=utf-8';
const HTML_TYPE = 'text/html; charset=utf-8';
const ROUTE_PREFIX = '/api/v1/cti/';
const MAX_BODY = 1024 * 1024;

const CALL_ID_LIMIT = 250;
const NUMBER_LIMIT = 100;

/** Ruby's String#[0, n] counts characters, not UTF-16 units. */
function cut(value: string, limit: number): string {
  const chars = Array.from(value);
  return chars.length <= limit ? value : chars.slice(0, limit).join('');
}

/** Ruby/ActiveSupport `present?` for the values the double handles. */
function present(value: string | undefined | null): value is string {
  return value !== undefined && value !== null && value.trim() !== '';
}

function scalar(params: Params, key: string): string | undefined {
  const v = params[key];
  return typeof v === 'string' ? v : undefined;
}

function htmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Rendered like Zammad's public/<status>.html in production (no traceback). */
function errorPage(status: number, message: string | undefined): string {
  if (status === 500) {
    return [
      '<!DOCTYPE html>',
      '<html class="dark">',
      '<meta charset="utf-8">',
      '<title>500: Something went wrong</title>',
      '<link rel="stylesheet" href="/assets/error/style.css">',
      '<body >',
      "<h1>500: We're sorry, but something went wrong.</h1>",
      '  <div class="error-image" style="background-image: url(/assets/error/error-2.svg)"></div>',
      "  <p>We're sorry, but something went wrong.</p>",
      '</body>',
      '</html>',
    ].join('\n');
  }
  const title = status === 422 ? '422: Unprocessable Entity' : status === 404 ? '404: Requested resource was not found' : `${status}: ${STATUS_CODES[status] ?? 'Error'}`;
  const h1 = status === 422 ? '422: The change you wanted was rejected.' : status === 404 ? '404: Requested resource was not found.' : title;
  return [
    '<!DOCTYPE html>',
    '<html class="dark">',
    '<meta charset="utf-8">',
    `<title>${title}</title>`,
    '<link rel="stylesheet" href="/assets/error/style.css">',
    '<body >',
    `  <h1>${h1}</h1>`,
    message !== undefined ? `  <div>${htmlEscape(message)}</div>` : '',
    '  <div class="error-image" style="background-image: url(/assets/error/error-1.svg)"></div>',
    '</body>',
    '</html>',
  ].join('\n');
}

/** humanize_error of handles_errors.rb for an anonymous (non-admin) caller. */
function humanize(message: string): { error: string; error_human?: string } {
  let human: string | undefined;
  const notNull = /null value in column "(.+?)" violates not-null constraint/i.exec(message);
  if (/(already exists|duplicate key|duplicate entry)/i.test(message)) human = 'This object already exists.';
  else if (notNull) human = `Attribute '${notNull[1] ?? ''}' required!`;
  else if (message.startsWith('No route matches')) human = message; // ActionController::RoutingError
  if (human !== undefined) return { error: human, error_human: human };
  return { error: `Error ID ${randomBytes(6).toString('base64url')}: Please contact your administrator.` };
}

function json(status: number, body: unknown): Reply {
  return { status, contentType: JSON_TYPE, body: JSON.stringify(body) };
}

function parseForm(text: string, into: Params): void {
  for (const [rawKey, value] of new URLSearchParams(text)) {
    if (rawKey.endsWith('[]')) {
      const key = rawKey.slice(0, -2);
      const prev = into[key];
      into[key] = Array.isArray(prev) ? [...prev, value] : [value];
    } else {
      into[rawKey] = value; // Rack: last one wins
    }
  }
}

function jsonValueToParam(v: unknown): string | string[] | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x)));
  return JSON.stringify(v);
}

interface ActiveFault {
  fault: Exclude<Fault, { kind: 'none' }>;
  remaining: number; // Infinity = until cleared
  events: string[] | undefined;
}

/** entries are mutated in place; log() / entry() hand out copies */
type MutableEntry = CtiLogEntry;

// ---------------------------------------------------------------------------------------------

export class ZammadDouble {
  /** every request received, in arrival order (also the rejected ones) */
  readonly posts: ReceivedPost[] = [];

  private settings: ZammadSettings;
  private readonly host: string;
  private port: number;
  private readonly now: () => number;
  private server: Server | undefined;
  private listening = false;
  private stopped = false;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly entries: MutableEntry[] = [];
  private readonly byCallId = new Map<string, MutableEntry>();
  private active: ActiveFault | undefined;

  constructor(opts: ZammadDoubleOptions) {
    this.settings = {
      token: opts.token,
      enabled: opts.enabled ?? true,
      configured: opts.configured ?? true,
      blockedNumbers: [...(opts.blockedNumbers ?? [])],
      outboundRoutes: (opts.outboundRoutes ?? []).map((r) => ({ ...r })),
      defaultCallerId: opts.defaultCallerId,
      dialKey: opts.dialKey ?? 'caller_id',
      acceptNegotiation: opts.acceptNegotiation ?? 'strict',
    };
    this.host = opts.host ?? '127.0.0.1';
    this.port = opts.port ?? 0;
    this.now = opts.now ?? Date.now;
  }

  // ----- lifecycle ---------------------------------------------------------------------------

  async start(): Promise<void> {
    if (this.server) throw new Error('ZammadDouble already started');
    this.server = createServer((req, res) => this.onRequest(req, res));
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    // a client that resets mid-request must not crash the test process
    this.server.on('clientError', (_err, socket: Socket) => socket.destroy());
    await this.listen();
  }

  /** the endpoint incl. token, e.g. http://127.0.0.1:PORT/api/v1/cti/TOKEN */
  get url(): string {
    return `${this.baseUrl}${ROUTE_PREFIX}${encodeURIComponent(this.settings.token)}`;
  }

  /** http://HOST:PORT */
  get baseUrl(): string {
    if (this.port === 0) throw new Error('ZammadDouble not started');
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `http://${host}:${this.port}`;
  }

  /** Close the listening port and drop every open connection (Zammad down). State is kept. */
  async refuseConnections(): Promise<void> {
    const server = this.server;
    if (!server || !this.listening) return;
    this.listening = false;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    this.dropConnections();
    await closed;
  }

  /** Listen again on the same port (Zammad back / restarted). State (the caller log) is kept. */
  async acceptConnections(): Promise<void> {
    if (!this.server) throw new Error('ZammadDouble not started');
    if (this.listening) return;
    await this.listen();
  }

  /** Stop listening, destroy hanging / trickling / keep-alive sockets, cancel delayed replies. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.active = undefined;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const server = this.server;
    if (!server) return;
    const closed = this.listening ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    this.listening = false;
    this.dropConnections();
    await closed;
  }

  // ----- settings and faults -----------------------------------------------------------------

  /** Change Zammad's settings between requests (e.g. disable the integration, rotate the token). */
  update(patch: Partial<ZammadSettings>): void {
    this.settings = { ...this.settings, ...patch };
  }

  /** A fault for the next `times` matching requests (default: until cleared), optionally only for some events. */
  setFault(f: Fault, opts: FaultOptions = {}): void {
    if (f.kind === 'none') {
      this.active = undefined;
      return;
    }
    const remaining = opts.times ?? Infinity;
    this.active = remaining > 0 ? { fault: f, remaining, events: opts.events ? [...opts.events] : undefined } : undefined;
  }

  clearFault(): void {
    this.active = undefined;
  }

  /** how many more requests the current fault applies to (0: none, Infinity: until cleared) */
  get faultsPending(): number {
    return this.active?.remaining ?? 0;
  }

  // ----- observation -------------------------------------------------------------------------

  /** Zammad's caller log (Cti::Log) in creation order; copies. */
  log(): CtiLogEntry[] {
    return this.entries.map((e) => ({ ...e }));
  }

  /** the entry for a call id as stored (a call id longer than 250 chars is stored cut) */
  entry(callId: string): CtiLogEntry | undefined {
    const e = this.byCallId.get(callId);
    return e ? { ...e } : undefined;
  }

  /** requests that carried this call id */
  postsFor(callId: string): ReceivedPost[] {
    return this.posts.filter((p) => p.callId === callId);
  }

  /** `event`s Zammad accepted (status 200) for a call, in order */
  acceptedEvents(callId: string): string[] {
    return this.postsFor(callId)
      .filter((p) => p.status === 200 && p.event !== undefined)
      .map((p) => p.event ?? '');
  }

  /** Like acceptedEvents, with each hangup's cause: `['newCall', 'answer', 'hangup:normalClearing']`. */
  acceptedWithCause(callId: string): string[] {
    return this.postsFor(callId)
      .filter((p) => p.status === 200 && p.event !== undefined)
      .map((p) => (p.params['cause'] ? `${p.event}:${String(p.params['cause'])}` : (p.event ?? '')));
  }

  /** Poll until pred(this) is true; rejects after timeoutMs (default 5000) with the last requests. */
  async waitFor(pred: (d: ZammadDouble) => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (pred(this)) return;
      if (Date.now() >= deadline) {
        const last = this.posts
          .slice(-10)
          .map((p) => `#${p.seq} ${p.event ?? '?'} ${p.callId ?? '?'} → ${p.status}`)
          .join('; ');
        throw new Error(`ZammadDouble.waitFor: condition not met within ${timeoutMs} ms (last requests: ${last || 'none'})`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Forget requests and the caller log (settings and faults stay). */
  reset(): void {
    this.posts.length = 0;
    this.entries.length = 0;
    this.byCallId.clear();
  }

  // ----- HTTP --------------------------------------------------------------------------------

  private listen(): Promise<void> {
    const server = this.server;
    if (!server) return Promise.reject(new Error('ZammadDouble not started'));
    return new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      server.once('error', onError);
      server.listen(this.port, this.host, () => {
        server.off('error', onError);
        this.port = (server.address() as AddressInfo).port;
        this.listening = true;
        resolve();
      });
    });
  }

  private dropConnections(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) tooBig = true;
      else chunks.push(c);
    });
    req.on('error', () => undefined);
    res.on('error', () => undefined); // the client may vanish while a reply is delayed or trickling
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const parsed = this.parse(req, raw);
      const post: ReceivedPost = {
        seq: this.posts.length + 1,
        at: this.now(),
        method: parsed.method,
        path: req.url ?? '',
        token: parsed.token,
        contentType: parsed.contentType,
        accept: parsed.accept,
        params: parsed.params,
        raw,
        event: scalar(parsed.params, 'event'),
        callId: scalar(parsed.params, 'callId') ?? scalar(parsed.params, 'call_id'),
        fault: undefined,
        status: 0,
        reply: '',
        repliedAt: undefined,
      };
      this.posts.push(post);
      if (tooBig) {
        this.send(res, post, { status: 413, contentType: HTML_TYPE, body: errorPage(413, undefined) });
        return;
      }
      const fault = this.takeFault(post.event);
      if (fault) post.fault = fault.kind;
      this.respond(parsed, post, res, fault);
    });
  }

  private takeFault(event: string | undefined): ActiveFault['fault'] | undefined {
    const a = this.active;
    if (!a) return undefined;
    if (a.events && (event === undefined || !a.events.includes(event))) return undefined;
    a.remaining -= 1;
    if (a.remaining <= 0) this.active = undefined;
    return a.fault;
  }

  private respond(parsed: ParsedRequest, post: ReceivedPost, res: ServerResponse, fault: ActiveFault['fault'] | undefined): void {
    if (!fault) {
      this.send(res, post, this.handle(parsed));
      return;
    }
    switch (fault.kind) {
      case 'status': {
        if (fault.process) this.handle(parsed);
        const reason = STATUS_CODES[fault.status] ?? 'Error';
        const body = fault.body ?? `<html>\r\n<head><title>${fault.status} ${reason}</title></head>\r\n<body>\r\n<center><h1>${fault.status} ${reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
        const reply: Reply = { status: fault.status, contentType: fault.contentType ?? 'text/html', body };
        if (fault.headers) reply.headers = fault.headers;
        this.send(res, post, reply);
        return;
      }
      case 'delay': {
        if (fault.process === 'last') {
          this.later(fault.ms, () => this.send(res, post, this.handle(parsed)));
        } else {
          const reply = this.handle(parsed);
          this.later(fault.ms, () => this.send(res, post, reply));
        }
        return;
      }
      case 'hang':
        if (fault.process) this.handle(parsed);
        return; // never answered; the socket is destroyed by stop() / refuseConnections()
      case 'reset': {
        if (fault.process) this.handle(parsed);
        const socket = res.socket;
        if (socket) socket.resetAndDestroy();
        return;
      }
      case 'hugeBody': {
        const reply = this.handle(parsed);
        const head = Buffer.from(reply.body, 'utf8');
        const total = Math.max(fault.bytes, head.length);
        post.status = 200;
        post.reply = reply.body;
        res.writeHead(200, { 'Content-Type': JSON_TYPE, 'Content-Length': String(total) });
        let left = total - head.length;
        const pad = Buffer.alloc(64 * 1024, 0x20);
        const pump = (): void => {
          while (left > 0) {
            const n = Math.min(left, pad.length);
            left -= n;
            if (!res.write(n === pad.length ? pad : pad.subarray(0, n))) {
              res.once('drain', pump);
              return;
            }
          }
          res.end(() => (post.repliedAt = this.now()));
        };
        res.on('close', () => (left = 0));
        if (res.write(head)) pump();
        else res.once('drain', pump);
        return;
      }
      case 'neverEndingBody': {
        const reply = this.handle(parsed);
        post.status = 200;
        post.reply = reply.body;
        res.writeHead(200, { 'Content-Type': JSON_TYPE });
        // the start of the JSON reply, then whitespace forever: never a complete body
        res.write(reply.body.slice(0, Math.max(1, reply.body.length - 1)));
        const every = fault.intervalMs ?? 50;
        const tick = (): void => {
          if (res.destroyed || this.stopped) return;
          res.write(' ');
          this.later(every, tick);
        };
        this.later(every, tick);
        return;
      }
      case 'redirect':
        this.send(res, post, { status: 302, contentType: HTML_TYPE, body: '', headers: { Location: fault.location } });
        return;
    }
  }

  private send(res: ServerResponse, post: ReceivedPost, reply: Reply): void {
    if (res.destroyed || res.writableEnded) return;
    post.status = reply.status;
    post.reply = reply.body;
    res.writeHead(reply.status, {
      'Content-Type': reply.contentType,
      'Content-Length': String(Buffer.byteLength(reply.body)),
      ...(reply.headers ?? {}),
    });
    res.end(reply.body, () => (post.repliedAt = this.now()));
  }

  private parse(req: IncomingMessage, raw: string): ParsedRequest {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://zammad.invalid');
    const contentTypeHeader = req.headers['content-type'] ?? '';
    const mediaType = (contentTypeHeader.split(';')[0] ?? '').trim().toLowerCase();
    const acceptHeader = req.headers.accept;

    // route /api/v1/cti/:token(.:format): a segment without '/', '.'
    let token = '';
    let format: string | undefined;
    let routed = false;
    if (url.pathname.startsWith(ROUTE_PREFIX)) {
      const rest = url.pathname.slice(ROUTE_PREFIX.length);
      const m = /^([^/.]+)(?:\.([^/.]+))?$/.exec(rest);
      if (m && m[1] !== undefined) {
        try {
          token = decodeURIComponent(m[1]);
          format = m[2];
          routed = true;
        } catch {
          routed = false;
        }
      }
    }

    const params: Params = {};
    parseForm(url.search, params);
    let parseError = false;
    if (mediaType === 'application/json') {
      if (raw.trim() !== '') {
        try {
          const body: unknown = JSON.parse(raw);
          if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
            for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
              const p = jsonValueToParam(v);
              if (p !== undefined) params[k] = p;
            }
          } else {
            const p = jsonValueToParam(body);
            if (p !== undefined) params['_json'] = p; // Rails wraps non-hash JSON bodies
          }
        } catch {
          parseError = true;
        }
      }
    } else if (mediaType === '' || mediaType === 'application/x-www-form-urlencoded') {
      // Rack parses a POST without Content-Type as a form
      parseForm(raw, params);
    }
    // other media types (text/plain, multipart, …): body ignored by the double

    return {
      method,
      pathname: url.pathname,
      token,
      format,
      routed,
      contentType: contentTypeHeader,
      accept: Array.isArray(acceptHeader) ? acceptHeader.join(', ') : acceptHeader,
      params,
      parseError,
    };
  }

  private wantsJson(parsed: ParsedRequest): boolean {
    if (parsed.format !== undefined) return parsed.format === 'json';
    const accept = parsed.accept;
    if (accept === undefined || accept.trim() === '') return false;
    const types = accept.split(',').map((s) => (s.split(';')[0] ?? '').trim().toLowerCase());
    if (this.settings.acceptNegotiation === 'strict') return types.includes('application/json');
    // Rails: a browser-like Accept (*/* together with other types) is ignored → html
    if (types.length > 1 && types.includes('*/*')) return false;
    return types.includes('application/json') || types.includes('*/*');
  }

  /** respond_to_exception of handles_errors.rb */
  private renderException(parsed: ParsedRequest, err: RailsError): Reply {
    const data = humanize(err.message);
    if (this.wantsJson(parsed)) return json(err.status, data);
    return { status: err.status, contentType: HTML_TYPE, body: errorPage(err.status, data.error_human ?? data.error) };
  }

  /** The whole Rails request: routing, controller filters, driver, model. */
  private handle(parsed: ParsedRequest): Reply {
    if (!parsed.routed || parsed.method !== 'POST') {
      return this.renderException(parsed, new RailsError(404, `No route matches [${parsed.method}] ${parsed.pathname}`));
    }
    const s = this.settings;
    // before_action :check_configured
    if (!s.enabled) return json(422, { error: 'Feature is disabled, please contact your administrator!' });
    if (!s.configured) return json(422, { error: 'Feature not configured, please contact your admin!' });
    // params are parsed when first read (check_token): a broken JSON body fails here
    if (parsed.parseError) {
      const error = 'Error occurred while parsing request parameters';
      return this.wantsJson(parsed) ? json(400, { error }) : { status: 400, contentType: HTML_TYPE, body: errorPage(400, error) };
    }
    // before_action :check_token
    if (parsed.token !== s.token) return json(401, { error: 'Invalid token, please contact your admin!' });
    try {
      return this.event(parsed.params);
    } catch (err) {
      if (err instanceof RailsError) return this.renderException(parsed, err);
      // anything else (e.g. a routing_table dest that is no valid regexp) → StandardError → 500
      return this.renderException(parsed, new RailsError(500, err instanceof Error ? err.message : String(err)));
    }
  }

  /** CtiController#event + Cti::Driver::Base#process */
  private event(params: Params): Reply {
    const s = this.settings;
    const direction = scalar(params, 'direction');
    const event = scalar(params, 'event');
    if (direction !== 'in' && direction !== 'out') return json(422, { error: 'Invalid direction!' });

    // reject_check: inbound newCall, from exactly equal to a blocked caller id
    const from = scalar(params, 'from');
    if (direction === 'in' && event === 'newCall' && from !== undefined && s.blockedNumbers.includes(from)) {
      this.process(params, direction, event, undefined);
      return json(200, { action: 'reject', reason: 'busy' });
    }

    // caller_id_rewrite: outbound newCall
    const to = scalar(params, 'to');
    if (direction === 'out' && event === 'newCall' && present(to)) {
      let callerId: string | undefined;
      for (const row of s.outboundRoutes) {
        const dest = row.dest.replace(/\*/g, '.+?');
        if (new RegExp(`^${dest}$`, 'm').test(to)) {
          callerId = row.callerId;
          break;
        }
      }
      if (callerId === undefined && present(s.defaultCallerId)) callerId = s.defaultCallerId;
      if (callerId !== undefined) {
        this.process(params, direction, event, callerId);
        return json(200, { action: 'dial', [s.dialKey]: callerId, number: to });
      }
    }

    const outcome = this.process(params, direction, event, undefined);
    // push_open_ticket_screen_recipient: `@params[:user].downcase` on an Array → NoMethodError
    const user = params['user'];
    if (outcome === 'applied' && event === 'answer' && direction === 'in' && Array.isArray(user) && user.length > 0) {
      throw new RailsError(500, "undefined method `downcase' for an instance of Array");
    }
    return json(200, {});
  }

  /** Cti::Log.process */
  private process(params: Params, direction: 'in' | 'out', event: string | undefined, fromOverride: string | undefined): 'applied' | 'ignored' {
    const cause = scalar(params, 'cause');
    const rawUser = params['user'];
    const user = Array.isArray(rawUser) ? rawUser.join(', ') : rawUser;
    let queue = scalar(params, 'queue');
    const callId = scalar(params, 'callId') ?? scalar(params, 'call_id');
    const from = fromOverride ?? scalar(params, 'from');
    const to = scalar(params, 'to');
    const answeringNumber = scalar(params, 'answeringNumber');

    let fromComment: string | null = null;
    let toComment: string | null = null;
    if (direction === 'in') {
      if (present(user)) toComment = user;
      else if (present(queue)) toComment = queue;
      if (!present(queue)) queue = to;
    } else {
      fromComment = user ?? null;
      if (!present(queue)) queue = from;
    }

    const log = callId !== undefined ? this.byCallId.get(callId) : undefined;
    const now = this.now();
    const sec = (ms: number): number => Math.floor(ms / 1000);

    switch (event) {
      case 'newCall': {
        if (log) throw new RailsError(500, `call_id ${callId ?? ''} already exists!`);
        if (callId === undefined) {
          throw new RailsError(422, 'PG::NotNullViolation: ERROR:  null value in column "call_id" violates not-null constraint');
        }
        const stored = cut(callId, CALL_ID_LIMIT);
        // unique index on call_id: a long id cut to an existing one
        if (this.byCallId.has(stored)) throw new RailsError(500, `PG::UniqueViolation: ERROR:  duplicate key value violates unique constraint "index_cti_logs_on_call_id"`);
        const entry: MutableEntry = {
          id: this.entries.length + 1,
          callId: stored,
          direction,
          from: from !== undefined ? cut(from, NUMBER_LIMIT) : null,
          to: to !== undefined ? cut(to, NUMBER_LIMIT) : null,
          users: user ?? null,
          fromComment,
          toComment,
          queue: queue ?? null,
          state: 'newCall',
          done: direction !== 'in',
          initializedAt: now,
          hangups: 0,
          answers: 0,
          ignoredAnswers: 0,
        };
        if (cause !== undefined) entry.cause = cause;
        this.entries.push(entry);
        this.byCallId.set(stored, entry);
        return 'applied';
      }
      case 'answer': {
        if (!log) throw new RailsError(500, `No such call_id ${callId ?? ''}`);
        if (log.state === 'hangup') {
          log.ignoredAnswers += 1; // call is already hangup, ignore answer
          return 'ignored';
        }
        log.state = 'answer';
        log.startAt = now;
        log.durationWaitingTime = sec(now) - sec(log.initializedAt);
        if (user !== undefined) {
          log.toComment = user;
          log.answeredBy = user;
        }
        log.done = true;
        if (cause !== undefined) log.cause = cause;
        else delete log.cause;
        if (answeringNumber !== undefined) log.answeringNumber = answeringNumber;
        log.answers += 1;
        return 'applied';
      }
      case 'hangup': {
        if (!log) throw new RailsError(500, `No such call_id ${callId ?? ''}`);
        log.done = true;
        if (direction === 'in' && ((log.state === 'newCall' && cause !== 'forwarded') || log.toComment === 'voicemail')) {
          log.done = false;
        }
        log.state = 'hangup';
        log.endAt = now;
        if (log.startAt !== undefined) log.durationTalkingTime = sec(now) - sec(log.startAt);
        else if (log.durationWaitingTime === undefined) log.durationWaitingTime = sec(now) - sec(log.initializedAt);
        if (cause !== undefined) log.cause = cause;
        else delete log.cause;
        if (answeringNumber !== undefined) log.answeringNumber = answeringNumber;
        log.hangups += 1;
        return 'applied';
      }
      default:
        // raise ArgumentError, "Unknown event #{event.inspect}" → 422
        throw new RailsError(422, `Unknown event ${event === undefined ? 'nil' : JSON.stringify(event)}`);
    }
  }
}
