/**
 * Ordered, retried, durable delivery to Zammad.
 *
 * Each call has a lane: its events leave strictly one after the other (newCall → answer →
 * hangup), because Zammad answers 500 to an answer or hangup of a call it has not seen. Lanes
 * are independent, so one call's trouble never holds up another's. Every event is on disk
 * before the first try and leaves the disk only once Zammad has it (or it is dropped, loudly).
 * The store commits in groups, one transaction per event-loop turn (store.ts): an event waits
 * for its group's commit before it may leave, so the decision path waits for one commit per
 * turn, shared by every call of that turn, and for Zammad; while the disk fails, none waits.
 *
 * What is sent again after a failure follows what a repeat does in Zammad (verdict.ts): every
 * event is retried until Zammad confirms it, except the hangup of a missed inbound call
 * (atMostOnce), which is retried only when Zammad provably did not get it. For that one event
 * the "may have reached Zammad" moment is written to disk before the request leaves, so that
 * not even a crash in flight leads to a second hangup.
 *
 * Requests in flight are bounded, fresh newCalls first (slots.ts); lanes wait while the endpoint
 * is held, Zammad refuses everything or Zammad is known unreachable (parking.ts, circuit.ts). While
 * it is unreachable a ringing caller goes on at once; when it answers again every lane goes at once.
 */
import type { CtiPost } from '../call/flow.js';
import type { Logger } from '../process/log.js';
import { doubling, equalJitter, type BackoffBounds } from './backoff.js';
import { noAnswer } from './circuit.js';
import type { HttpOutcome } from './client.js';
import { CommitWait } from './commit-wait.js';
import { formBody } from './form.js';
import { Forgotten } from './forgotten.js';
import { Lanes } from './lanes.js';
import { goOn, restoredItem, urgent, type Early, type Item, type Lane } from './lane.js';
import type { OutboxHooks, OutboxOptions, Poster } from './outbox-options.js';
import { Parking } from './parking.js';
import { Slots } from './slots.js';
import type { EndpointStore } from './store.js';
import { atMostOnce, verdictOf, type Verdict } from './verdict.js';

export type { OutboxHooks, OutboxOptions, Poster } from './outbox-options.js';

export class Outbox {
  private readonly lanes = new Lanes();
  private readonly slots: Slots<Lane>;
  private readonly parking: Parking<Lane>;
  private readonly forgotten = new Forgotten();
  private readonly sweepTimer: NodeJS.Timeout;
  private closed = false;
  /** Last answer from Zammad, for readiness: true = it answered 2xx, false = unreachable. */
  private reachable: boolean | undefined;
  /** For a lane's retries and for the probes during a configuration fault. */
  private readonly retry: BackoffBounds;
  /** Why nothing is sent (the endpoint left the endpoints file), while it lasts. */
  private held: string | undefined;
  /** Lanes whose next event is not on disk yet: they go once its commit is done. */
  private readonly commits: CommitWait<Lane>;

  constructor(
    private readonly store: EndpointStore,
    private poster: Poster,
    private readonly options: OutboxOptions,
    private readonly log: Logger,
    private readonly hooks: OutboxHooks = {},
    private readonly now: () => number = Date.now,
  ) {
    this.slots = new Slots(options.concurrency, options.reserve, urgent);
    this.retry = { baseMs: options.retryBaseMs, maxMs: options.retryMaxMs };
    const mayProbe = () => !this.closed && this.held === undefined;
    this.parking = new Parking(this.retry, log, now, mayProbe, (lane) => this.probe(lane));
    this.sweepTimer = setInterval(() => this.sweep(), Math.min(60_000, Math.max(1000, options.maxAgeMs / 10)));
    this.sweepTimer.unref();
    this.commits = new CommitWait(
      store,
      log,
      () => this.lanes.events,
      (lane) => this.schedule(lane),
    );
    store.onCommit((error, unstored) => this.commits.committed(error, unstored));
  }

  /** Picks up what an earlier run left on disk. */
  restore(): number {
    const rows = this.store.pending();
    let restored = 0;
    for (const row of rows) {
      const once = atMostOnce(row.event, row.body);
      if (once && row.sent) {
        // The earlier run stopped while this hangup was on its way: Zammad may have it.
        this.log.warn(
          'not sending again a hangup that was on its way to Zammad when the adapter stopped: ' +
            'a second one would mark a missed call done',
          { callId: row.callId, event: row.event },
        );
        this.hooks.dropped?.('unconfirmed', 1);
        this.store.remove(row.id);
        continue;
      }
      this.lanes.add(this.lanes.of(row.callId), restoredItem(row, once));
      restored++;
    }
    const fields = { events: restored, calls: this.lanes.calls };
    if (restored > 0 && this.held !== undefined) {
      this.log.warn(`events left from an earlier run kept, not sent: ${this.held}`, fields);
      this.hooks.held?.(restored);
    } else if (restored > 0) this.log.info('delivering events left from an earlier run', fields);
    this.sweep();
    for (const lane of this.lanes.values()) this.schedule(lane);
    return restored;
  }

  /**
   * Stores the event, then delivers it in its call's order. Settles when Zammad has it or it is
   * dropped. `early` hears of a configuration fault (wrong token, integration off) the moment
   * Zammad reports it, while the event waits in the outbox until the fault is mended: a ringing
   * caller need not wait for an answer that will not come.
   */
  send(post: CtiPost, early?: Early): Promise<Verdict> {
    if (this.closed) {
      this.log.error('event after the outbox was closed: not stored', { callId: post.callId, event: post.event });
      return Promise.resolve({ kind: 'retry', reason: 'outbox closed' });
    }
    const forgotten = this.forgotten.reason(post.callId);
    if (forgotten !== undefined && post.event !== 'newCall') {
      this.log.error('dropping an event of a call whose newCall was dropped: Zammad would refuse it', {
        callId: post.callId,
        event: post.event,
        because: forgotten,
      });
      this.hooks.dropped?.(forgotten, 1);
      return Promise.resolve({ kind: 'refused', reason: `the call's newCall was dropped (${forgotten})` });
    }
    if (this.lanes.events >= this.options.maxEvents) this.dropOldestCall();
    const createdAt = this.now();
    const body = formBody(post);
    // The journal takes its fields from the post itself, not from the body.
    const id = this.store.add(post, body, createdAt);
    if (this.held !== undefined) {
      this.hooks.held?.(1);
      const lane = this.lanes.of(post.callId);
      if (!lane.heldLogged)
        this.log.warn(`event kept, not sent: ${this.held}`, { callId: post.callId, event: post.event });
      lane.heldLogged = true;
    }
    return new Promise<Verdict>((settle) => {
      const lane = this.lanes.of(post.callId);
      this.lanes.add(lane, {
        id,
        callId: post.callId,
        event: post.event,
        body,
        createdAt,
        attempts: 0,
        once: atMostOnce(post.event, body),
        sent: false,
        settle,
        ...(early ? { early } : {}),
      });
      this.schedule(lane);
    });
  }

  get depth(): number {
    return this.lanes.events;
  }

  oldestAgeMs(): number {
    return this.lanes.oldestAgeMs(this.now());
  }

  /** A configuration fault Zammad reported (wrong token, integration off), while it lasts. */
  get configFault(): string | undefined {
    return this.parking.fault;
  }

  get zammadReachable(): boolean | undefined {
    return this.reachable;
  }

  /** Why Zammad is known unreachable (the circuit is open), while it is. */
  get unreachable(): string | undefined {
    return this.parking.unreachable;
  }

  /**
   * The endpoint is gone from the configuration: its events stay on disk and in their lanes,
   * counted, and nothing is sent — never to another endpoint — until resume() or the age bound
   * (sweep) drops them. A ringing caller waiting for a decision from it goes on at once.
   */
  suspend(reason: string): void {
    if (this.held !== undefined) return;
    this.held = reason;
    this.parking.stopProbing();
    for (const lane of this.slots.takeAll()) {
      lane.queued = false;
      this.parking.park(lane);
    }
    for (const lane of this.lanes.values()) {
      const head = lane.items[0];
      if (head?.early) {
        head.early({ kind: 'configFault', reason });
        delete head.early;
      }
    }
    if (this.lanes.events > 0)
      this.log.warn(`events kept, not sent: ${reason}`, { events: this.lanes.events, calls: this.lanes.calls });
  }

  /** The endpoint is configured again (perhaps at another URL): what waited goes out, in order. */
  resume(poster: Poster): void {
    this.poster = poster;
    if (this.held === undefined) return;
    this.held = undefined;
    this.reachable = undefined;
    if (this.lanes.events > 0)
      this.log.info('endpoint configured again: delivering the events kept for it', { events: this.lanes.events });
    for (const lane of this.lanes.values()) lane.heldLogged = false;
    this.unpark();
  }

  /** The endpoint's URL changed (a new token): the next requests use the new one; those in flight finish on the old. */
  usePoster(poster: Poster): void {
    this.poster = poster;
    this.reachable = undefined;
    // A fault of the old URL (401 for a revoked token) says nothing about the new one.
    if (this.parking.fault !== undefined) this.unpark();
  }

  /** Resolves true once nothing is pending, false if that takes longer than timeoutMs. */
  drain(timeoutMs: number): Promise<boolean> {
    return this.lanes.emptied(timeoutMs);
  }

  close(): void {
    this.closed = true;
    clearInterval(this.sweepTimer);
    this.parking.stopProbing();
    for (const lane of this.lanes.values()) clearTimeout(lane.timer);
  }

  /**
   * Drops calls whose events waited longer than OUTBOX_MAX_AGE_HOURS: logged and counted, never
   * silent. Runs on a timer.
   */
  sweep(): void {
    const limit = this.now() - this.options.maxAgeMs;
    for (const lane of [...this.lanes.values()]) {
      const head = lane.items[0];
      if (!head || lane.busy || head.createdAt >= limit) continue;
      this.log.error('dropping events older than OUTBOX_MAX_AGE_HOURS', {
        callId: lane.callId,
        events: lane.items.length,
        ageMs: this.now() - head.createdAt,
      });
      this.hooks.dropped?.('age', lane.items.length);
      this.dropLane(lane, 'age');
    }
  }

  private schedule(lane: Lane): void {
    if (this.closed || lane.busy || lane.queued || lane.timer || lane.items.length === 0) return;
    if (this.parking.has(lane)) return;
    if (this.held !== undefined) return this.parking.park(lane);
    if (!this.commits.mayLeave(lane)) return;
    const fresh = urgent(lane);
    if (this.parking.fault !== undefined && !fresh) return this.parking.park(lane);
    if (this.parking.unreachable !== undefined) {
      this.skip(lane);
      return this.parking.park(lane);
    }
    if (!this.slots.free(fresh)) {
      lane.queued = true;
      this.slots.wait(lane);
      return;
    }
    void this.run(lane);
  }

  private next(): void {
    this.slots.next((lane) => {
      lane.queued = false;
      this.schedule(lane);
    });
  }

  private async run(lane: Lane): Promise<void> {
    const item = lane.items[0];
    if (!item || !this.commits.mayLeave(lane)) return;
    lane.busy = true;
    this.slots.started();
    const started = performance.now();
    let diskRefused: unknown;
    const onSend = item.once
      ? () => {
          // On disk before the first byte leaves: after a crash, this hangup is not sent again.
          // Committed at once (not with the turn's group); if that fails it throws, and the client
          // does not send (client.ts onConnect).
          try {
            this.store.markSent(item.id, true);
          } catch (err) {
            diskRefused = err;
            throw err;
          }
          item.sent = true;
        }
      : undefined;
    const outcome = await this.poster.post(item.body, this.options.requestTimeoutMs, onSend);
    this.slots.finished();
    lane.busy = false;
    // The disk's fault, not Zammad's: nothing left, and readiness does not blame Zammad.
    if (diskRefused !== undefined && !this.closed) this.waitForDisk(lane, item, diskRefused);
    if (diskRefused !== undefined) return this.next();
    const verdict = verdictOf(item.event, outcome, { atMostOnce: item.once });
    this.hooks.posted?.(
      item.event,
      outcome.kind === 'response' ? String(outcome.status) : outcome.code,
      (performance.now() - started) / 1000,
    );
    if (!this.closed) {
      if (item.sent && (verdict.kind === 'retry' || verdict.kind === 'configFault')) {
        // Zammad provably did not take it: the next try is not a repeat.
        this.store.markSent(item.id, false);
        item.sent = false;
      }
      this.handle(lane, item, verdict);
      this.reach(lane, outcome);
    }
    this.next();
  }

  private handle(lane: Lane, item: Item, verdict: Verdict): void {
    // Fields, not a child logger: this runs for every event, and most log nothing.
    const about = { callId: item.callId, event: item.event };
    switch (verdict.kind) {
      case 'delivered':
        this.reachable = true;
        if (this.parking.fault !== undefined) this.reschedule(this.parking.endFault(this.lanes.events));
        if (lane.warned) this.log.info('delivered to Zammad after retrying', { ...about, attempts: item.attempts + 1 });
        lane.warned = false;
        this.done(lane, item, verdict);
        break;
      case 'retry': {
        this.reachable = false;
        item.attempts++;
        const delay = equalJitter(doubling(item.attempts, this.retry));
        // While Zammad is known unreachable, one line says so for every call (parking.ts).
        if (!lane.warned && this.parking.unreachable === undefined) {
          const fields = { ...about, reason: verdict.reason, retryInMs: Math.round(delay) };
          this.log.warn('Zammad did not take the event; it stays in the outbox and is retried', fields);
        }
        lane.warned = true;
        this.later(lane, delay);
        break;
      }
      case 'configFault':
        this.reachable = true;
        item.attempts++;
        item.early?.(verdict);
        delete item.early;
        this.parking.setFault(verdict.reason);
        this.parking.park(lane);
        break;
      case 'unconfirmed':
        this.reachable = false;
        this.log.warn(
          'no confirmation from Zammad for the hangup of a missed call; it is not sent again, because a ' +
            'second hangup would mark the call done. Zammad shows it missed, or ringing if the hangup was ' +
            'lost; either way not done',
          { ...about, reason: verdict.reason },
        );
        this.hooks.dropped?.('unconfirmed', 1);
        lane.warned = false;
        this.done(lane, item, verdict);
        break;
      case 'refused': {
        this.reachable = true;
        this.log.error('Zammad refused the event; it cannot be delivered as it is and is dropped', {
          ...about,
          reason: verdict.reason,
        });
        this.hooks.dropped?.('refused', 1);
        if (item.event !== 'newCall') {
          this.done(lane, item, verdict);
          break;
        }
        // Without its newCall, Zammad would answer 500 to the rest of this call for ever.
        if (lane.items.length > 1) {
          this.log.error('dropping the rest of the call too: Zammad never stored its newCall', {
            ...about,
            events: lane.items.length - 1,
          });
          this.hooks.dropped?.('refused', lane.items.length - 1);
        }
        // The newCall's own settle gets Zammad's reason; dropLane settles the rest.
        this.lanes.shift(lane);
        this.store.remove(item.id);
        item.settle?.(verdict);
        this.dropLane(lane, 'refused');
        break;
      }
    }
  }

  /** A missed call's hangup whose "sent" mark the disk did not take: sent without it, a restart could send it twice. */
  private waitForDisk(lane: Lane, item: Item, error: unknown): void {
    const delay = equalJitter(doubling(++item.attempts, this.retry));
    const fields = { callId: item.callId, error: error instanceof Error ? error.message : String(error) };
    this.parking.lost(lane);
    if (!lane.warned)
      this.log.warn(
        'the hangup of a missed call waits until the disk takes its "sent" mark ' +
          '(sent without it, a restart could send it twice)',
        fields,
      );
    lane.warned = true;
    this.later(lane, delay);
  }

  private later(lane: Lane, delayMs: number): void {
    lane.timer = setTimeout(() => {
      lane.timer = undefined;
      this.schedule(lane);
    }, delayMs);
  }

  private done(lane: Lane, item: Item, verdict: Verdict): void {
    this.commits.delivered(this.store.stored(item.id));
    this.store.remove(item.id);
    this.lanes.shift(lane);
    item.settle?.(verdict);
    if (lane.items.length > 0) this.schedule(lane);
  }

  /** The lane's next event asks Zammad again (a fault, the circuit) if the backlog has a free slot; else false. */
  private probe(lane: Lane): boolean {
    if (lane.busy || !this.slots.free(false) || !this.commits.mayLeave(lane)) return false;
    void this.run(lane);
    return true;
  }

  /** Feeds the circuit (circuit.ts) one request's verdict; acts when Zammad becomes known down or answers again. */
  private reach(lane: Lane, outcome: HttpOutcome): void {
    const why = noAnswer(outcome);
    const change = this.parking.outcome(lane, why === undefined, why ?? '', this.lanes.events);
    if (change === 'opened') for (const waiting of this.lanes.values()) this.skip(waiting);
    if (change !== 'closed') return;
    // Lanes sleeping out their backoff go now, oldest call first; the slots bound how many at once.
    for (const sleeping of this.lanes.values()) {
      clearTimeout(sleeping.timer);
      sleeping.timer = undefined;
    }
    this.reschedule([...this.lanes.values()]);
  }

  /** Zammad is known unreachable: the lane's ringing caller goes on at once, counted. */
  private skip(lane: Lane): void {
    if (!goOn(lane, `Zammad is unreachable: ${this.parking.unreachable ?? ''}`)) return;
    this.parking.noteSkipped();
    this.hooks.skipped?.('unreachable');
  }

  /** Every parked lane goes back to the schedule (which parks it again while the endpoint is held). */
  private unpark(): void {
    this.reschedule(this.parking.release());
  }

  private reschedule(lanes: readonly Lane[]): void {
    for (const lane of lanes) this.schedule(lane);
  }

  private dropLane(lane: Lane, reason: string): void {
    clearTimeout(lane.timer);
    if (lane.items.some((i) => i.event === 'newCall') || reason === 'refused') this.forget(lane.callId, reason);
    for (const item of lane.items) {
      this.store.remove(item.id);
      item.settle?.({ kind: 'refused', reason });
    }
    this.parking.delete(lane);
    this.commits.delete(lane);
    this.slots.remove(lane);
    lane.queued = false;
    this.lanes.clear(lane);
  }

  /** Zammad will never have this call: later events of it are dropped at once, and a restart does not close it. */
  private forget(callId: string, reason: string): void {
    this.forgotten.add(callId, reason);
    this.store.callEnded(callId);
  }

  private dropOldestCall(): void {
    const oldest = this.lanes.oldestIdle();
    if (!oldest) return;
    this.log.error('outbox full (OUTBOX_MAX_EVENTS): dropping the oldest call', {
      callId: oldest.callId,
      events: oldest.items.length,
    });
    this.hooks.dropped?.('full', oldest.items.length);
    this.dropLane(oldest, 'full');
  }
}
