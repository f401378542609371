/**
 * The outbox's lanes, one per call, and the count of the events in them: the one place that
 * adds or takes an event, so the count cannot drift from the lanes, and a stop's drain hears the
 * moment the last one goes.
 */
import { Idle } from './idle.js';
import type { Item, Lane } from './lane.js';

export class Lanes {
  private readonly byCall = new Map<string, Lane>();
  private count = 0;
  private readonly idle = new Idle();

  /** The call's lane, made on its first event. */
  of(callId: string): Lane {
    let lane = this.byCall.get(callId);
    if (!lane) {
      lane = { callId, items: [], busy: false, queued: false, warned: false };
      this.byCall.set(callId, lane);
    }
    return lane;
  }

  add(lane: Lane, item: Item): void {
    lane.items.push(item);
    this.count++;
  }

  /** Takes the lane's next event (it was delivered or dropped); a lane left empty is gone. */
  shift(lane: Lane): void {
    if (lane.items.shift() === undefined) return;
    this.count--;
    if (lane.items.length === 0) this.forget(lane);
  }

  /** Takes all of the lane's events (dropped) and the lane. */
  clear(lane: Lane): void {
    this.count -= lane.items.length;
    lane.items = [];
    this.forget(lane);
  }

  get events(): number {
    return this.count;
  }

  get calls(): number {
    return this.byCall.size;
  }

  values(): IterableIterator<Lane> {
    return this.byCall.values();
  }

  oldestAgeMs(now: number): number {
    let oldest = Infinity;
    for (const lane of this.byCall.values()) oldest = Math.min(oldest, lane.items[0]?.createdAt ?? Infinity);
    return oldest === Infinity ? 0 : now - oldest;
  }

  /** The oldest call with no request in flight (calls keep their arrival order). */
  oldestIdle(): Lane | undefined {
    for (const lane of this.byCall.values()) if (!lane.busy) return lane;
    return undefined;
  }

  /** Resolves true once no event is left, false if that takes longer than timeoutMs. */
  emptied(timeoutMs: number): Promise<boolean> {
    return this.count === 0 ? Promise.resolve(true) : this.idle.wait(timeoutMs);
  }

  private forget(lane: Lane): void {
    this.byCall.delete(lane.callId);
    if (this.count === 0) this.idle.notify();
  }
}
