/**
 * An event leaves for Zammad only once it is on disk. The store commits in groups, one per
 * event-loop turn (store.ts); a lane whose next event is not committed yet waits here until its
 * group is. A failed commit (disk full, I/O error) is logged once, until a commit passes again,
 * and a ringing caller whose newCall is not on disk hears at once that no decision will come.
 */
import type { Logger } from '../process/log.js';
import type { EndpointStore } from './store.js';
import type { Verdict } from './verdict.js';

/** What this needs of a lane: its events, in order, each with its store id. */
interface Waiting {
  items: { id: number; early?: (v: Verdict) => void }[];
}

export class CommitWait<L extends Waiting> {
  private readonly lanes = new Set<L>();
  /** Why the disk refuses writes, while it does. */
  private fault: string | undefined;

  constructor(
    private readonly store: Pick<EndpointStore, 'stored'>,
    private readonly log: Logger,
    /** Whether the outbox is closed (a failed last commit then loses events). */
    private readonly closed: () => boolean,
    /** Events in the outbox, for the log. */
    private readonly pending: () => number,
    /** Called for each waiting lane once its group is on disk. */
    private readonly schedule: (lane: L) => void,
  ) {}

  /** Whether the lane's next event is on disk; if not, the lane waits for the commit. */
  onDisk(lane: L): boolean {
    const head = lane.items[0];
    if (!head || this.store.stored(head.id)) return true;
    this.lanes.add(lane);
    return false;
  }

  /** The lane is gone (dropped). */
  delete(lane: L): void {
    this.lanes.delete(lane);
  }

  /** The store committed a group (error undefined) or could not. */
  committed(error: Error | undefined, unstored: number): void {
    if (error) {
      const fields = { events: unstored, error: error.message };
      if (this.closed()) {
        this.log.error('could not write the last events to disk while stopping: they are lost', fields);
        return;
      }
      if (this.fault === undefined) {
        const what = 'new events wait in memory and are not sent to Zammad until they are on disk (a crash would lose them)';
        this.log.error(`cannot write the outbox to disk: ${what}; retrying`, fields);
      }
      this.fault = error.message;
      // A ringing caller need not wait for a decision that cannot come before the disk works.
      const verdict: Verdict = { kind: 'retry', reason: `the outbox cannot write to disk (${error.message})` };
      for (const lane of this.lanes) {
        for (const item of lane.items) {
          if (this.store.stored(item.id) || !item.early) continue;
          item.early(verdict);
          delete item.early;
        }
      }
      return;
    }
    if (this.fault !== undefined) {
      this.log.info('the outbox writes to disk again', { pending: this.pending() });
      this.fault = undefined;
    }
    const lanes = [...this.lanes];
    this.lanes.clear();
    for (const lane of lanes) this.schedule(lane);
  }
}
