/**
 * Requests in flight to one Zammad, bounded (`concurrency`, one per pooled connection). A fresh
 * newCall — a caller is ringing and the switch waits for Zammad's decision — goes before any
 * backlog, and the backlog never takes the last connections (`reserve`), so lanes recovering
 * after an outage cannot starve it.
 */
export class Slots<L> {
  private inFlight = 0;
  /** Lanes waiting for a free slot: urgent ones first, each kind in the order they came. */
  private readonly waiting: L[] = [];
  /** How many requests the backlog may have in flight; the rest is the reserve. */
  private readonly backlogLimit: number;

  constructor(
    private readonly concurrency: number,
    /** Default: a quarter, at least 1 when concurrency ≥ 2. */
    reserve: number | undefined,
    /** Whether a lane's next request is a fresh newCall. */
    private readonly urgent: (lane: L) => boolean,
  ) {
    const kept = reserve ?? (concurrency >= 2 ? Math.max(1, Math.floor(concurrency / 4)) : 0);
    this.backlogLimit = Math.max(1, concurrency - kept);
  }

  /** Whether a request may start now: an urgent one up to `concurrency`, any other outside the reserve. */
  free(urgent: boolean): boolean {
    return this.inFlight < (urgent ? this.concurrency : this.backlogLimit);
  }

  started(): void {
    this.inFlight++;
  }

  finished(): void {
    this.inFlight--;
  }

  /** A lane that found no free slot waits here; a fresh newCall holds a ringing caller: it goes before any backlog. */
  wait(lane: L): void {
    if (this.urgent(lane)) this.waiting.splice(this.waiting.findIndex((l) => !this.urgent(l)) >>> 0, 0, lane);
    else this.waiting.push(lane);
  }

  /** Hands the waiting lanes to `start`, in order, while a slot is free for the next one. */
  next(start: (lane: L) => void): void {
    for (let lane = this.waiting[0]; lane !== undefined && this.free(this.urgent(lane)); lane = this.waiting[0]) {
      this.waiting.shift();
      start(lane);
    }
  }

  /** Takes a lane out of the queue (it was dropped). */
  remove(lane: L): void {
    const index = this.waiting.indexOf(lane);
    if (index >= 0) this.waiting.splice(index, 1);
  }

  /** Empties the queue, returning what waited. */
  takeAll(): L[] {
    return this.waiting.splice(0);
  }
}
