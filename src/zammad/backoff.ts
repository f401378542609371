/**
 * How long to wait before the next try of something that keeps failing: Zammad not answering,
 * Zammad refusing every event, the disk refusing a commit. Pure.
 */

export interface BackoffBounds {
  /** The first wait. */
  baseMs: number;
  /** No wait is longer. */
  maxMs: number;
}

/**
 * The wait before try number `attempt` + 1 (attempt 1 = after the first failure): baseMs,
 * doubled per failure, never above maxMs. The exponent is capped so that a long outage gives
 * maxMs, never Infinity or NaN.
 */
export function doubling(attempt: number, bounds: BackoffBounds): number {
  const exponent = Math.min(Math.max(0, attempt - 1), 52);
  return Math.min(bounds.maxMs, bounds.baseMs * 2 ** exponent);
}

/**
 * Half of `ms` fixed, half random ("equal jitter"): lanes that failed together in one outage do
 * not all come back at the same moment, and none comes back sooner than half its wait.
 */
export function equalJitter(ms: number, random: () => number = Math.random): number {
  return ms / 2 + random() * (ms / 2);
}
