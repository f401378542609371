/**
 * A lane: one call's events for one endpoint, in their order, and where each stands. The outbox
 * (outbox.ts) moves them; these are its records.
 */
import type { Verdict } from './verdict.js';
import type { StoredEvent } from './store.js';

/** Told that no decision will come now; returns false when nobody waited for it any more. */
export type Early = (v: Verdict) => unknown;

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
  /** Told at once that no decision will come (configuration fault, Zammad unreachable); the event stays. */
  early?: Early;
  /** Its caller went on without Zammad's decision: delivered late, no longer ahead of the backlog. */
  late?: boolean;
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
  if (head === undefined || head.late) return false;
  return head.event === 'newCall' && head.attempts === 0 && head.settle !== undefined;
}

/**
 * No decision can come now: the lane's ringing caller, if any, is told to go on; its newCall stays,
 * to be delivered late. True when a caller was still waiting.
 */
export function goOn(lane: Lane, reason: string): boolean {
  const head = lane.items[0];
  if (!head?.early) return false;
  const waited = head.early({ kind: 'retry', reason });
  delete head.early;
  head.late = true;
  return waited !== false;
}

/** An event an earlier run left on disk, as its lane holds it: not yet tried in this run. */
export function restoredItem(row: StoredEvent, once: boolean): Item {
  const { id, callId, event, body, createdAt } = row;
  return { id, callId, event, body, createdAt, attempts: 0, once, sent: false };
}
