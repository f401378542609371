/**
 * A lane: one call's events for one endpoint, in their order, and where each stands. The outbox
 * (outbox.ts) moves them; these are its records.
 */
import type { Verdict } from './verdict.js';

export interface Item {
  id: number;
  callId: string;
  event: string;
  body: string;
  createdAt: number;
  attempts: number;
  /** Must not reach Zammad twice (verdict.ts atMostOnce). */
  once: boolean;
  /** The disk says it may have reached Zammad. */
  sent: boolean;
  settle?: (v: Verdict) => void;
  /** Told of a configuration fault at once; the event itself stays parked for redelivery. */
  early?: (v: Verdict) => void;
}

export interface Lane {
  callId: string;
  items: Item[];
  busy: boolean;
  /** Waiting for a free slot. */
  queued: boolean;
  timer?: NodeJS.Timeout;
  warned: boolean;
  /** Logged once: this call's events wait for a suspended endpoint. */
  heldLogged?: boolean;
}

/** A caller is ringing and the switch may be waiting for this: a newCall on its first try. */
export function urgent(lane: Lane): boolean {
  const head = lane.items[0];
  return head !== undefined && head.event === 'newCall' && head.attempts === 0 && head.settle !== undefined;
}
