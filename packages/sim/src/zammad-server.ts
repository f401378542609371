/**
 * The Zammad double's HTTP server (node:http): listening, refusing and accepting connections,
 * stopping; the requests it received and the caller log it keeps; settings and faults changed
 * between requests. Each request is read (zammad-request), recorded as a ReceivedPost, then
 * answered by the Rails side (zammad-controller) or the armed fault (zammad-faults).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { handleRequest } from './zammad-controller.js';
import { CtiLog } from './zammad-cti-log.js';
import { FaultSlot, respondWithFault, type FaultContext } from './zammad-faults.js';
import { errorPage, HTML_TYPE, type Reply } from './zammad-replies.js';
import { MAX_BODY, parseRequest, ROUTE_PREFIX, scalar, type ParsedRequest } from './zammad-request.js';
import type {
  CtiLogEntry,
  Fault,
  FaultOptions,
  ReceivedPost,
  ZammadDoubleOptions,
  ZammadSettings,
} from './zammad-types.js';
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
  private readonly cti: CtiLog;
  private readonly faults = new FaultSlot();
  private readonly faultContext: FaultContext;

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
    this.cti = new CtiLog(() => this.now());
    this.faultContext = {
      handle: (parsed) => this.handle(parsed),
      send: (res, post, reply) => this.send(res, post, reply),
      later: (ms, fn) => this.later(ms, fn),
      now: () => this.now(),
      stopped: () => this.stopped,
    };
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
    this.faults.clear();
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
    this.faults.set(f, opts);
  }

  clearFault(): void {
    this.faults.clear();
  }

  /** how many more requests the current fault applies to (0: none, Infinity: until cleared) */
  get faultsPending(): number {
    return this.faults.pending;
  }

  // ----- observation -------------------------------------------------------------------------

  /** Zammad's caller log (Cti::Log) in creation order; copies. */
  log(): CtiLogEntry[] {
    return this.cti.all();
  }

  /** the entry for a call id as stored (a call id longer than 250 chars is stored cut) */
  entry(callId: string): CtiLogEntry | undefined {
    return this.cti.get(callId);
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
        throw new Error(
          `ZammadDouble.waitFor: condition not met within ${timeoutMs} ms (last requests: ${last || 'none'})`,
        );
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Forget requests and the caller log (settings and faults stay). */
  reset(): void {
    this.posts.length = 0;
    this.cti.clear();
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
      const parsed = parseRequest(req, raw);
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
      const fault = this.faults.take(post.event);
      if (!fault) {
        this.send(res, post, this.handle(parsed));
        return;
      }
      post.fault = fault.kind;
      respondWithFault(this.faultContext, parsed, post, res, fault);
    });
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

  /** The whole Rails request (routing, controller filters, driver, model) with the current settings. */
  private handle(parsed: ParsedRequest): Reply {
    return handleRequest(parsed, this.settings, this.cti);
  }
}
