/**
 * Whether Zammad is known to be unreachable: a circuit breaker, pure.
 *
 * - **closed**: Zammad answers, or has not failed often enough to say otherwise. Requests go as
 *   usual and a ringing caller waits (bounded) for Zammad's decision.
 * - **open**: OPEN_AFTER_FAILURES requests in a row failed with no answer between them (refused
 *   connections, no answer in time, 5xx). No decision can come: a ringing caller goes on at once,
 *   and nothing is sent but a probe, now and then (probeDelay).
 * - **halfOpen**: one probe is on its way. Its failure opens the circuit again (the next probe
 *   later); any answer from Zammad — the probe's or a request still in flight — closes it.
 *
 * What counts as no answer (noAnswer): no HTTP reply at all, or 502 / 503 / 504 from a proxy
 * standing in for a Zammad that is down or hangs. Anything Zammad itself says is an answer: a 401
 * is a configuration fault (parking.ts), a 500 concerns one event ("No such call_id"), which is
 * retried on its own without holding up the other calls.
 */
import { doubling, type BackoffBounds } from './backoff.js';
import type { HttpOutcome } from './client.js';

/** Failures in a row, with no answer between them, that make Zammad known down. */
export const OPEN_AFTER_FAILURES = 3;

/**
 * The longest wait between two probes: Zammad back is noticed within about this much, however
 * long it was away (RETRY_MAX_MS, if lower, bounds it too). One request at a time costs Zammad
 * nothing; the backlog behind it should not sleep for minutes.
 */
export const PROBE_MAX_MS = 2_000;

export type Circuit =
  | { readonly state: 'closed'; readonly failures: number }
  | { readonly state: 'open' | 'halfOpen'; readonly since: number; readonly probes: number; readonly reason: string };

export type CircuitInput =
  /** Zammad answered a request. */
  | { readonly type: 'answered' }
  /** A request got no answer; `probe`: it was the half-open probe. */
  | { readonly type: 'failed'; readonly reason: string; readonly probe: boolean; readonly now: number }
  /** A probe leaves. */
  | { readonly type: 'probe' };

/** 'opened': Zammad just became known down; 'closed': it answers again. */
export type CircuitChange = 'opened' | 'closed';

export const CLOSED: Circuit = { state: 'closed', failures: 0 };

export function step(c: Circuit, input: CircuitInput): { circuit: Circuit; change?: CircuitChange } {
  switch (input.type) {
    case 'answered':
      return c.state === 'closed' ? { circuit: CLOSED } : { circuit: CLOSED, change: 'closed' };
    case 'failed':
      if (c.state === 'closed') {
        const failures = c.failures + 1;
        if (failures < OPEN_AFTER_FAILURES) return { circuit: { state: 'closed', failures } };
        return { circuit: { state: 'open', since: input.now, probes: 0, reason: input.reason }, change: 'opened' };
      }
      // A request sent before the circuit opened says nothing new; only the probe's failure re-opens.
      if (c.state !== 'halfOpen' || !input.probe) return { circuit: c };
      return { circuit: { ...c, state: 'open', probes: c.probes + 1, reason: input.reason } };
    case 'probe':
      return { circuit: c.state === 'open' ? { ...c, state: 'halfOpen' } : c };
  }
}

/** Whether a ringing caller may wait for Zammad's decision: only while the circuit is closed. */
export function verdictCanArrive(c: Circuit): boolean {
  return c.state === 'closed';
}

/** How long after the circuit opened, or after the last failed probe, the next probe leaves. */
export function probeDelay(c: Circuit, retry: BackoffBounds): number {
  const probes = c.state === 'closed' ? 0 : c.probes;
  return Math.min(PROBE_MAX_MS, doubling(probes + 1, retry));
}

/** Statuses a proxy answers for a Zammad that is down or does not answer in time. */
const PROXY_FOR_NO_ANSWER = new Set([502, 503, 504]);

/** Why an outcome is no answer from Zammad; undefined when Zammad answered. */
export function noAnswer(outcome: HttpOutcome): string | undefined {
  if (outcome.kind === 'failure') return `${outcome.code}: ${outcome.error}`;
  return PROXY_FOR_NO_ANSWER.has(outcome.status) ? `Zammad answered ${outcome.status}` : undefined;
}
