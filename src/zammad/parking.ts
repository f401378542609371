/**
 * Lanes that may not send for now, and why: the endpoint is held (gone from the configuration),
 * Zammad refuses every event (wrong token, integration off: a configuration fault, which only an
 * admin mends), or Zammad is known to be unreachable (circuit.ts: the circuit is open).
 *
 * During a fault or while Zammad is unreachable, one parked lane at a time asks again (a probe),
 * and the state is logged once when it begins and once when it ends, not once per event.
 * Whatever ends the wait — the first answer from Zammad, the endpoint configured again or at a
 * new URL — releases every parked lane at once.
 */
import type { Logger } from '../process/log.js';
import { doubling, type BackoffBounds } from './backoff.js';
import {
  CLOSED,
  OPEN_AFTER_FAILURES,
  probeDelay,
  step,
  type Circuit,
  type CircuitChange,
  type CircuitInput,
} from './circuit.js';

export class Parking<L> {
  private readonly parked = new Set<L>();
  private reason: string | undefined;
  private since = 0;
  /** Probe rounds during the current fault: each waits twice as long as the one before. */
  private probes = 0;
  private timer: NodeJS.Timeout | undefined;
  private circuit: Circuit = CLOSED;
  /** The lane sent as the circuit's probe, while it is on its way. */
  private probing: L | undefined;
  /** A probe is due but no lane was parked: the next lane to park is the probe. */
  private due = false;
  /** Calls that went on without Zammad's decision while it was unreachable. */
  private skipped = 0;

  constructor(
    private readonly retry: BackoffBounds,
    private readonly log: Logger,
    private readonly now: () => number,
    /** Whether to probe at all now: not once the outbox is closed, nor while its endpoint is held. */
    private readonly mayProbe: () => boolean,
    /** Sends the lane's next event as the probe; false when it cannot go now (no free slot). */
    private readonly probe: (lane: L) => boolean,
  ) {}

  /** The configuration fault Zammad reported, while it lasts. */
  get fault(): string | undefined {
    return this.reason;
  }

  /** Why Zammad is known to be unreachable, while it is: no decision can come from it. */
  get unreachable(): string | undefined {
    return this.circuit.state === 'closed' ? undefined : this.circuit.reason;
  }

  has(lane: L): boolean {
    return this.parked.has(lane);
  }

  park(lane: L): void {
    this.parked.add(lane);
    if (this.due && this.circuit.state === 'open' && this.mayProbe()) return this.probeOne();
    this.arm();
  }

  /** The lane is gone (dropped). */
  delete(lane: L): void {
    this.parked.delete(lane);
  }

  /** A ringing caller went on without Zammad's decision because Zammad is unreachable. */
  noteSkipped(): void {
    this.skipped++;
  }

  /**
   * The outcome of one request (`ok`: Zammad answered): what changed. When Zammad answers again
   * after it was known down, no lane stays parked for it: the outbox schedules every lane again.
   */
  outcome(lane: L, ok: boolean, reason: string, pending: number): CircuitChange | undefined {
    const probe = lane === this.probing;
    if (probe) this.probing = undefined;
    const before = this.circuit;
    const input: CircuitInput = ok ? { type: 'answered' } : { type: 'failed', reason, probe, now: this.now() };
    const { circuit, change } = step(before, input);
    this.circuit = circuit;
    if (change === 'opened') {
      this.skipped = 0;
      const why = `${OPEN_AFTER_FAILURES} requests in a row failed, the last: ${reason}`;
      const what =
        'calls go on at once without its decision; events wait in the outbox and go out as soon as it answers';
      this.log.warn(`Zammad is unreachable (${why}): ${what}`);
      this.arm();
    } else if (change === 'closed' && before.state !== 'closed') {
      const fields = { unreachableForMs: this.now() - before.since, pending, callsWithoutDecision: this.skipped };
      this.log.info('Zammad answers again: delivering the events that waited', fields);
      this.due = false;
      this.stopProbing();
      this.parked.clear();
      // A configuration fault goes on probing; its lanes park again when scheduled.
      if (this.reason !== undefined) this.arm();
    } else if (!ok && probe && circuit.state === 'open') {
      this.arm();
    }
    return change;
  }

  /** The probe never left (the disk refused its "sent" mark): another one, later. */
  lost(lane: L): void {
    if (lane !== this.probing || this.circuit.state === 'closed') return;
    this.probing = undefined;
    const input: CircuitInput = { type: 'failed', reason: this.circuit.reason, probe: true, now: this.now() };
    this.circuit = step(this.circuit, input).circuit;
    this.arm();
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
    this.reason = undefined;
    return this.unparkAll();
  }

  /**
   * Ends the fault and the circuit (if any: a new URL starts afresh) and the wait of every parked
   * lane; returns them, to be scheduled again.
   */
  release(): L[] {
    this.reason = undefined;
    this.circuit = CLOSED;
    this.probing = undefined;
    this.due = false;
    return this.unparkAll();
  }

  /** The endpoint is held or the outbox closes: no probe until arm() finds probing allowed again. */
  stopProbing(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private unparkAll(): L[] {
    this.stopProbing();
    const lanes = [...this.parked];
    this.parked.clear();
    return lanes;
  }

  private arm(): void {
    if (this.timer || !this.mayProbe()) return;
    const open = this.circuit.state !== 'closed';
    // While Zammad is unreachable: one probe at a time, the next once the last one failed.
    if (open && this.circuit.state !== 'open') return;
    if (!open && this.reason === undefined) return;
    const delay = open ? probeDelay(this.circuit, this.retry) : doubling(this.probes + 1, this.retry);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.circuit.state === 'open') return this.probeOne();
      this.probes++;
      const lane = this.parked.values().next().value;
      if (lane === undefined) return this.arm();
      this.parked.delete(lane);
      if (!this.probe(lane)) this.parked.add(lane);
      this.arm();
    }, delay);
    // While Zammad is unreachable the probe stands in for the lanes' own retry timers, which hold
    // the process open like any timer; a configuration fault's probes do not.
    if (!open) this.timer.unref();
  }

  /** The circuit's probe: the lane parked longest; none parked, the next one to park. */
  private probeOne(): void {
    this.due = false;
    const lane = this.parked.values().next().value;
    if (lane === undefined) {
      this.due = true;
      return;
    }
    this.parked.delete(lane);
    if (!this.probe(lane)) {
      // No free slot (requests from before the circuit opened are still on their way): later.
      this.parked.add(lane);
      return this.arm();
    }
    // The request's outcome comes back after an await: never before this line.
    this.circuit = step(this.circuit, { type: 'probe' }).circuit;
    this.probing = lane;
  }
}
