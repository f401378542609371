/**
 * Lanes that may not send for now, and the configuration fault that is one reason for it.
 *
 * A lane parks while its endpoint is held (gone from the configuration) or while Zammad refuses
 * every event of it (wrong token, integration off: a configuration fault, which only an admin
 * mends). During a fault one parked lane at a time asks again, less and less often, and the fault
 * is logged once, not once per event. Whatever ends the wait — the first event Zammad takes, the
 * endpoint configured again or at a new URL — releases every parked lane at once.
 */
import type { Logger } from '../process/log.js';
import { doubling, type BackoffBounds } from './backoff.js';

export class Parking<L> {
  private readonly parked = new Set<L>();
  private reason: string | undefined;
  private since = 0;
  /** Probe rounds during the current fault: each waits twice as long as the one before. */
  private probes = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly retry: BackoffBounds,
    private readonly log: Logger,
    private readonly now: () => number,
    /** Whether to probe at all now: not once the outbox is closed, nor while its endpoint is held. */
    private readonly mayProbe: () => boolean,
    /** Sends the lane's next event as the probe, or parks the lane again when no slot is free. */
    private readonly probe: (lane: L) => void,
  ) {}

  /** The configuration fault Zammad reported, while it lasts. */
  get fault(): string | undefined {
    return this.reason;
  }

  has(lane: L): boolean {
    return this.parked.has(lane);
  }

  park(lane: L): void {
    this.parked.add(lane);
    this.arm();
  }

  /** The lane is gone (dropped). */
  delete(lane: L): void {
    this.parked.delete(lane);
  }

  setFault(reason: string): void {
    if (this.reason === reason) return;
    const first = this.reason === undefined;
    this.reason = reason;
    if (first) this.since = this.now();
    // One line for the fault, not one per event.
    this.log.error(`Zammad refuses all events: ${reason}. Events are kept and delivered once this is fixed.`);
    this.probes = 0;
    this.arm();
  }

  /** Zammad took an event again: the fault is over. Returns the lanes to schedule again. */
  endFault(pending: number): L[] {
    this.log.info('Zammad accepts events again', { faultLastedMs: this.now() - this.since, pending });
    return this.release();
  }

  /** Ends the fault (if any) and the wait of every parked lane; returns them, to be scheduled again. */
  release(): L[] {
    this.reason = undefined;
    this.stopProbing();
    const lanes = [...this.parked];
    this.parked.clear();
    return lanes;
  }

  /** The endpoint is held or the outbox closes: no probe until arm() finds probing allowed again. */
  stopProbing(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    if (this.timer || this.reason === undefined || !this.mayProbe()) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.probes++;
      const lane = this.parked.values().next().value;
      if (lane === undefined) return this.arm();
      this.parked.delete(lane);
      this.probe(lane);
      this.arm();
    }, doubling(this.probes + 1, this.retry));
    this.timer.unref();
  }
}
