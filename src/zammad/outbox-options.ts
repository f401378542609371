/** What an outbox (outbox.ts) is given: where it posts, its bounds, and who hears its figures. */
import type { HttpOutcome } from './client.js';

export interface Poster {
  /** `onSend` runs right before the request is written to a connected socket (never if it could not connect). */
  post(body: string, timeoutMs: number, onSend?: () => void): Promise<HttpOutcome>;
}

export interface OutboxOptions {
  requestTimeoutMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  maxAgeMs: number;
  maxEvents: number;
  /** Requests in flight at once; more lanes wait their turn (fresh newCalls first: slots.ts). */
  concurrency: number;
  /** Of those, how many only fresh newCalls may use (default: a quarter, at least 1 when concurrency ≥ 2). */
  reserve?: number;
}

/** Figures for health and metrics; all optional. */
export interface OutboxHooks {
  posted?(event: string, result: string, seconds: number): void;
  /** reason: 'age' | 'full' | 'refused' | 'unconfirmed' (an at-most-once event not sent again). */
  dropped?(reason: string, events: number): void;
  /** Events stored while the endpoint is not configured (suspend()): kept, not sent. */
  held?(events: number): void;
  /** A ringing caller went on without waiting for Zammad's decision; reason: 'unreachable'. */
  skipped?(reason: string): void;
}
