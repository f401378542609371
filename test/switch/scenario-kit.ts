/**
 * What the real-switch scenario files share: the switch's directory domain, the callers, Zammad's caller id, and small
 * readers of legs and posts.
 */
import type { FinishedCall } from './harness.js';
import type { Leg } from './legs.js';

export const DOMAIN = 'test.local';
export const CALLER = '493055571600';
/** On the Zammad doubles' block list. */
export const BLOCKED = '493055571699';
/** What the Zammad doubles' outbound route answers `dial` with. */
export const ZAMMAD_CALLER_ID = '4930777000000';

export const user = (ext: string): string => `user/${ext}@${DOMAIN}`;

/** from, to, direction, callId: the fields every post of the call carries. */
export function common(done: FinishedCall, to: string, from = CALLER, direction = 'in') {
  return { from, to, direction, callId: done.callId };
}

/** The leg's CHANNEL_EXECUTE events of one application. */
export const executions = (leg: Leg, app: string) =>
  leg.events.filter((e) => e.name === 'CHANNEL_EXECUTE' && e.headers['Application'] === app);

/** Event timestamps (µs) → ms between them. */
export const ms = (fromUs: number, toUs: number): number => Math.round((toUs - fromUs) / 1000);
