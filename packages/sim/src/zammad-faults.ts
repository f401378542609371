/**
 * Fault injection for the Zammad double: the one armed fault (for the next N requests, or only
 * some events) and how a faulted request is answered: a proxy's status page, a late reply, no
 * reply, a reset connection, a huge or never-ending body, a redirect; with or without the event
 * being stored first, as each Fault kind says.
 */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import { HTML_TYPE, JSON_TYPE, type Reply } from './zammad-replies.js';
import type { ParsedRequest } from './zammad-request.js';
import type { Fault, FaultOptions, ReceivedPost } from './zammad-types.js';

export type ActiveFaultKind = Exclude<Fault, { kind: 'none' }>;

interface ActiveFault {
  fault: ActiveFaultKind;
  remaining: number; // Infinity = until cleared
  events: string[] | undefined;
}

/** The armed fault, if any, and how many more requests it applies to. */
export class FaultSlot {
  private active: ActiveFault | undefined;

  set(f: Fault, opts: FaultOptions = {}): void {
    if (f.kind === 'none') {
      this.active = undefined;
      return;
    }
    const remaining = opts.times ?? Infinity;
    this.active =
      remaining > 0 ? { fault: f, remaining, events: opts.events ? [...opts.events] : undefined } : undefined;
  }

  clear(): void {
    this.active = undefined;
  }

  /** how many more requests the current fault applies to (0: none, Infinity: until cleared) */
  get pending(): number {
    return this.active?.remaining ?? 0;
  }

  /** The fault for a request with this `event` param (counted against `times`), or undefined. */
  take(event: string | undefined): ActiveFaultKind | undefined {
    const a = this.active;
    if (!a) return undefined;
    if (a.events && (event === undefined || !a.events.includes(event))) return undefined;
    a.remaining -= 1;
    if (a.remaining <= 0) this.active = undefined;
    return a.fault;
  }
}

/** What a faulted reply needs from the double's server. */
export interface FaultContext {
  /** run the request through Zammad (stores the event) and get its normal reply */
  handle(parsed: ParsedRequest): Reply;
  /** send a reply (records status, body and reply time on the post) */
  send(res: ServerResponse, post: ReceivedPost, reply: Reply): void;
  /** a timer that stop() cancels */
  later(ms: number, fn: () => void): void;
  now(): number;
  stopped(): boolean;
}

/** Answer a request the way `fault` says. */
export function respondWithFault(
  ctx: FaultContext,
  parsed: ParsedRequest,
  post: ReceivedPost,
  res: ServerResponse,
  fault: ActiveFaultKind,
): void {
  switch (fault.kind) {
    case 'status': {
      if (fault.process) ctx.handle(parsed);
      const reason = STATUS_CODES[fault.status] ?? 'Error';
      const body =
        fault.body ??
        `<html>\r\n<head><title>${fault.status} ` +
          `${reason}</title></head>\r\n<body>\r\n<center><h1>${fault.status} ` +
          `${reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
      const reply: Reply = { status: fault.status, contentType: fault.contentType ?? 'text/html', body };
      if (fault.headers) reply.headers = fault.headers;
      ctx.send(res, post, reply);
      return;
    }
    case 'delay': {
      if (fault.process === 'last') {
        ctx.later(fault.ms, () => ctx.send(res, post, ctx.handle(parsed)));
      } else {
        const reply = ctx.handle(parsed);
        ctx.later(fault.ms, () => ctx.send(res, post, reply));
      }
      return;
    }
    case 'hang':
      if (fault.process) ctx.handle(parsed);
      return; // never answered; the socket is destroyed by stop() / refuseConnections()
    case 'reset': {
      if (fault.process) ctx.handle(parsed);
      const socket = res.socket;
      if (socket) socket.resetAndDestroy();
      return;
    }
    case 'hugeBody': {
      const reply = ctx.handle(parsed);
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
        res.end(() => (post.repliedAt = ctx.now()));
      };
      res.on('close', () => (left = 0));
      if (res.write(head)) pump();
      else res.once('drain', pump);
      return;
    }
    case 'neverEndingBody': {
      const reply = ctx.handle(parsed);
      post.status = 200;
      post.reply = reply.body;
      res.writeHead(200, { 'Content-Type': JSON_TYPE });
      // the start of the JSON reply, then whitespace forever: never a complete body
      res.write(reply.body.slice(0, Math.max(1, reply.body.length - 1)));
      const every = fault.intervalMs ?? 50;
      const tick = (): void => {
        if (res.destroyed || ctx.stopped()) return;
        res.write(' ');
        ctx.later(every, tick);
      };
      ctx.later(every, tick);
      return;
    }
    case 'redirect':
      ctx.send(res, post, { status: 302, contentType: HTML_TYPE, body: '', headers: { Location: fault.location } });
      return;
  }
}
