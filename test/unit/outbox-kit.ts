/**
 * What the outbox tests (outbox*.test.ts) share: Zammad's answers, a scripted poster that behaves
 * like the real client (client.ts), a logger that records its lines, waits on conditions, temporary
 * outbox files and the CTI posts of a call.
 */
import { after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CtiPost } from '../../src/call/flow.js';
import type { Logger, LogFields } from '../../src/process/log.js';
import type { HttpOutcome } from '../../src/zammad/client.js';
import type { Poster } from '../../src/zammad/outbox.js';

// ---------------------------------------------------------------------------------------------
// Zammad's answers

export const OK: HttpOutcome = { kind: 'response', status: 200, body: '{}' };
export const status = (s: number, body = ''): HttpOutcome => ({ kind: 'response', status: s, body });
export const TIMEOUT: HttpOutcome = {
  kind: 'failure',
  code: 'TIMEOUT',
  error: 'no answer within 100 ms',
  sent: true,
};
export const REFUSED: HttpOutcome = {
  kind: 'failure',
  code: 'ECONNREFUSED',
  error: 'connect ECONNREFUSED 127.0.0.1:9',
  sent: false,
};
export const EXISTS = status(
  500,
  '{"error":"This object already exists.","error_human":"This object already exists."}',
);
export const BAD_TOKEN = status(401, '{"error":"Invalid token, please contact your admin!"}');

// ---------------------------------------------------------------------------------------------
// The poster

/** One request as the poster got it: every try, also one refused or aborted before it was written. */
export interface Req {
  /** 1 for the first request this poster got. */
  seq: number;
  body: string;
  event: string;
  callId: string;
  cause: string | null;
  /** performance.now() when it was posted. */
  at: number;
  /** Written to Zammad: connected, and its onSend (the "sent" mark on disk) did not throw. */
  written: boolean;
  /** Answer a held request. */
  reply(outcome: HttpOutcome): void;
  answered: boolean;
}

/** Zammad as a function of the request: an outcome now, or 'hold' until the test replies. */
export class FakePoster implements Poster {
  readonly requests: Req[] = [];
  answer: (r: Req) => HttpOutcome | 'hold' = () => OK;
  /** Runs at the moment a request is posted, before anything else happens. */
  check: (body: string) => void = () => {};
  inFlight = 0;
  maxInFlight = 0;

  /**
   * What the real client does (client.ts): onSend only for a request written to a connected
   * socket, right before writing; if it throws, nothing is written and the request fails.
   */
  post(body: string, _timeoutMs: number, onSend?: () => void): Promise<HttpOutcome> {
    this.check(body);
    const form = new URLSearchParams(body);
    return new Promise((resolve) => {
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      const req: Req = {
        seq: this.requests.length + 1,
        body,
        event: form.get('event') ?? '',
        callId: form.get('callId') ?? '',
        cause: form.get('cause'),
        at: performance.now(),
        written: false,
        answered: false,
        reply: (outcome) => {
          if (req.answered) return;
          req.answered = true;
          this.inFlight--;
          resolve(outcome);
        },
      };
      this.requests.push(req);
      const outcome = this.answer(req);
      if (outcome === 'hold' || outcome.kind === 'response' || outcome.sent !== false) {
        try {
          onSend?.();
        } catch (err) {
          req.reply({ kind: 'failure', code: 'ABORTED', error: String(err), sent: false });
          return;
        }
        req.written = true;
      }
      if (outcome !== 'hold') queueMicrotask(() => req.reply(outcome));
    });
  }

  /** The bodies written to Zammad, in order (not those refused or aborted before writing). */
  get bodies(): string[] {
    return this.requests.filter((r) => r.written).map((r) => r.body);
  }

  /** Requests not answered yet. */
  held(): Req[] {
    return this.requests.filter((r) => !r.answered);
  }

  /** The events posted for a call, every try, in order. */
  of(callId: string): string[] {
    return this.requests.filter((r) => r.callId === callId).map((r) => r.event);
  }
}

// ---------------------------------------------------------------------------------------------
// Log lines

export interface Line {
  level: string;
  message: string;
  fields: LogFields;
}

/** A logger that appends every line to `lines`, a child's fields merged in. */
export function recordingLogger(lines: Line[], base: LogFields = {}): Logger {
  const at = (level: string) => (message: string, fields?: LogFields) =>
    void lines.push({ level, message, fields: { ...base, ...fields } });
  return {
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    child: (f) => recordingLogger(lines, { ...base, ...f }),
    isDebug: () => true,
  };
}

// ---------------------------------------------------------------------------------------------
// Time

/** Polls pred; once true, lets pending replies be handled (one macrotask) before the test goes on. */
export async function until(pred: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
  await new Promise((r) => setImmediate(r));
}

/** One turn of the event loop (the store commits once per turn). */
export const turn = () => new Promise<void>((r) => setImmediate(r));

/** A fixed wait: only where a test shows that something does not happen. */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Outbox files

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A path for an outbox file in a fresh folder, removed after the test file. */
export function tempPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cti-outbox-test-'));
  dirs.push(dir);
  return join(dir, 'outbox.sqlite');
}

// ---------------------------------------------------------------------------------------------
// The posts of a call

export const base = (callId: string, direction: 'in' | 'out' = 'in') => ({
  callId,
  direction,
  from: '493055571600',
  to: '4930777000',
});
export const newCall = (callId: string, direction: 'in' | 'out' = 'in'): CtiPost => ({
  event: 'newCall',
  ...base(callId, direction),
  users: ['Alice'],
});
export const answer = (callId: string, direction: 'in' | 'out' = 'in'): CtiPost => ({
  event: 'answer',
  ...base(callId, direction),
  user: 'Alice',
  answeringNumber: '2000',
});
export const answeredHangup = (callId: string, direction: 'in' | 'out' = 'in'): CtiPost => ({
  event: 'hangup',
  ...base(callId, direction),
  cause: 'normalClearing',
  answeringNumber: '2000',
});
export const missedHangup = (callId: string): CtiPost => ({ event: 'hangup', ...base(callId), cause: 'cancel' });
