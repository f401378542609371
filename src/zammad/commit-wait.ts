/**
 * While the disk works, an event leaves for Zammad only once it is on disk. The store commits in
 * groups, one per event-loop turn (store.ts); a lane whose next event is not committed yet waits
 * here until its group is.
 *
 * The disk is a means, not a gate: while commits fail (disk full, read-only, I/O error) the
 * events leave from memory, so that Zammad still gets them and no caller waits for the disk. For
 * those events the promise drops from "survives a crash" to "delivered while the process lives";
 * the log says so once per fault, with counts, and again when the disk takes writes again.
 */
import type { Logger } from '../process/log.js';
import type { EndpointStore } from './store.js';

/** What this needs of a lane: its events, in order, each with its store id. */
interface Waiting {
  items: { id: number }[];
}

export class CommitWait<L extends Waiting> {
  private readonly lanes = new Set<L>();
  /** Why the disk refuses writes, while it does. */
  private fault: string | undefined;
  /** Events delivered from memory during the current fault. */
  private fromMemory = 0;

  constructor(
    private readonly store: Pick<EndpointStore, 'stored' | 'failing'>,
    private readonly log: Logger,
    /** Events in the outbox, for the log. */
    private readonly pending: () => number,
    /** Called for each waiting lane once its group is on disk, or once the disk fails. */
    private readonly schedule: (lane: L) => void,
  ) {}

  /**
   * Whether the lane's next event may leave: it is on disk, or the disk fails. If not, the lane waits for the
   * commit.
   */
  mayLeave(lane: L): boolean {
    const head = lane.items[0];
    if (!head || this.store.stored(head.id) || this.store.failing()) return true;
    this.lanes.add(lane);
    return false;
  }

  /** An event is delivered; `stored` says whether it had reached the disk. */
  delivered(stored: boolean): void {
    if (!stored) this.fromMemory++;
  }

  /** The lane is gone (dropped). */
  delete(lane: L): void {
    this.lanes.delete(lane);
  }

  /** The store committed a group (error undefined) or could not. */
  committed(error: Error | undefined, unstored: number): void {
    if (error) {
      if (this.fault === undefined) {
        this.log.error(
          'cannot write the outbox to disk: events are delivered from memory while Zammad answers, ' +
            'so for them the promise drops ' +
            'from "survives a crash" to "delivered while the process lives"; ' +
            'a crash loses those not yet delivered, a stop names them. Retrying the disk',
          { eventsInMemory: unstored, pending: this.pending(), error: error.message },
        );
      }
      this.fault = error.message;
    } else if (this.fault !== undefined) {
      this.log.info('the outbox writes to disk again', {
        pending: this.pending(),
        deliveredFromMemory: this.fromMemory,
      });
      this.fault = undefined;
      this.fromMemory = 0;
    }
    const lanes = [...this.lanes];
    this.lanes.clear();
    for (const lane of lanes) this.schedule(lane);
  }
}
