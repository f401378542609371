/**
 * The outbox on disk (better-sqlite3, WAL): every event for Zammad is written here before it is
 * sent and removed once Zammad has it, so a crash or restart loses nothing. It also remembers
 * which calls are still in progress (open_calls), so that a restarted adapter can finish them in
 * Zammad. An event and its journal change (newCall opens, answer marks, hangup closes) go in the
 * same transaction: two separate writes would leave, after a crash between them, a call closed
 * twice (two hangups) or a hangup for a call whose newCall was never stored.
 *
 * Group commit: writes are queued and committed together, one transaction per event-loop turn
 * (setImmediate after the first queued write), instead of one per write. What that keeps:
 *  - While the disk works, an event is on disk before it leaves: add() returns its id at once, but
 *    the outbox posts it only once stored(id) says its batch has committed (onCommit tells when). Otherwise a
 *    SIGKILL after Zammad stored a newCall but before the commit would leave the call ringing
 *    for ever (no journal entry, so no closing hangup after the restart).
 *  - markSent() commits at once, with whatever is queued: it runs right before an at-most-once
 *    request leaves, and must be on disk by then.
 *  - remove() of a delivered event rides in the next batch: a SIGKILL within that turn sends
 *    the event again after the restart (at-least-once delivery, which every other event
 *    tolerates: verdict.ts). An at-most-once event marked sent is never sent twice: its mark is
 *    on disk before it left, so a restart that finds it drops it instead (outbox.ts restore()).
 *  - Reads (pending, count, openCalls) and close() commit what is queued first.
 * A failed commit (disk full, I/O error) is rolled back; onCommit hears of the error, and the
 * commit is tried again (less and less often). So that a little room is enough, the retry does
 * not stake the whole backlog on one transaction: an event delivered meanwhile (the outbox
 * sends from memory while the disk fails) is never written at all (remove() cancels its queued
 * insert; its journal change stays), removes and marks go first (they free room), then each
 * call's writes in a transaction of their own, oldest call first. markSent(…, true) of an event
 * on disk still throws when it cannot be written, so that its request does not leave; of an
 * event not on disk it only changes the queued insert.
 *
 * close() returns what it could not write; the next start hears of lost journal changes (journal-marker.ts).
 */
import type Database from 'better-sqlite3';
import { doubling } from './backoff.js';
import { isJournal, leftOver, SCHEMA, SQL, type Insert, type Write } from './store-sql.js';
import { clearIncomplete, listIncomplete, markIncomplete, readIncomplete } from './journal-marker.js';
import { openOutboxFile } from './store-open.js';
import type { EventFacts, OpenCall, StoredEvent, Unsaved, UnsavedEvent } from './store-sql.js';

export type { EventFacts, OpenCall, StoredEvent, Unsaved, UnsavedEvent };

export interface StoreHooks {
  /** A commit failed (disk full, read-only, I/O error); what it tried stays queued. */
  writeFailed?(error: Error): void;
}

/**
 * Told after each commit that made events stored (error undefined), or of a failed commit and how
 * many events it left off the disk.
 */
export type CommitListener = (error: Error | undefined, unstored: number) => void;

/** After a failed commit: first retry after 50 ms, doubling up to 5 s. */
const COMMIT_RETRY = { baseMs: 50, maxMs: 5000 } as const;

/** What one endpoint's Outbox needs of the disk: its own events only. */
export interface EndpointStore {
  add(facts: EventFacts, body: string, createdAt: number): number;
  stored(id: number): boolean;
  /** The last commit failed: events wait in memory and may leave from there (outbox.ts). */
  failing(): boolean;
  onCommit(listener: CommitListener): void;
  remove(id: number): void;
  markSent(id: number, sent: boolean): void;
  pending(): StoredEvent[];
  callEnded(callId: string): void;
}

export class OutboxStore {
  private readonly db: Database.Database;
  private readonly stmt: {
    insert: Database.Statement<[number, string, string, string, string, number, number]>;
    remove: Database.Statement<[number]>;
    markSent: Database.Statement<[number, number]>;
    all: Database.Statement<
      [string],
      { id: number; endpoint: string; call_id: string; event: string; body: string; created_at: number; sent: number }
    >;
    endpoints: Database.Statement<[], { endpoint: string }>;
    count: Database.Statement<[], { n: number }>;
    openCall: Database.Statement<[string, string, string, number]>;
    answerCall: Database.Statement<[string, string]>;
    closeCall: Database.Statement<[string]>;
    openCalls: Database.Statement<
      [],
      {
        call_id: string;
        endpoint: string;
        facts: string;
        answered: number;
        answering_number: string | null;
        started_at: number;
        trusted: number;
      }
    >;
  };
  private readonly commitTx: (writes: Write[]) => void;
  private queue: Write[] = [];
  /** The last id handed out by add(); ids only grow. */
  private lastId: number;
  /** Inserts queued and not on disk, by id: an id handed out and not here is stored (or cancelled). */
  private readonly unstoredInserts = new Map<number, Insert>();
  /** Events became stored since the listeners were last told. */
  private newlyStored = false;
  /** The listeners last heard of a failure. */
  private toldFailure = false;
  /** This process made the journal marker (journal-marker.ts). */
  private marked = false;
  private turnPending = false;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Failed commits in a row. */
  private failedCommits = 0;
  private failed: Error | undefined;
  /** One per endpoint's outbox. */
  private readonly listeners = new Set<CommitListener>();
  private commitCount = 0;
  private closed = false;

  /** Throws OutboxOpenError (store-open.ts) when the file cannot be opened or written. */
  constructor(
    private readonly path: string,
    private readonly hooks: StoreHooks = {},
  ) {
    this.db = openOutboxFile(path, (db) => {
      db.exec(SCHEMA);
      // A file written without some of these columns gets them here, each with the default its rows mean.
      const columns = db.prepare(SQL.columns).all() as { name: string }[];
      if (!columns.some((c) => c.name === 'sent')) db.exec(SQL.addSent);
      if (!columns.some((c) => c.name === 'endpoint')) db.exec(SQL.addEndpoint);
      const journal = db.prepare(SQL.journalColumns).all() as { name: string }[];
      if (!journal.some((c) => c.name === 'endpoint')) db.exec(SQL.addJournalEndpoint);
      if (!journal.some((c) => c.name === 'trusted')) db.exec(SQL.addJournalTrusted);
    });
    this.takeMarker();
    this.stmt = {
      insert: this.db.prepare(SQL.insert),
      remove: this.db.prepare(SQL.remove),
      markSent: this.db.prepare(SQL.markSent),
      all: this.db.prepare(SQL.all),
      endpoints: this.db.prepare(SQL.endpoints),
      count: this.db.prepare(SQL.count),
      openCall: this.db.prepare(SQL.openCall),
      answerCall: this.db.prepare(SQL.answerCall),
      closeCall: this.db.prepare(SQL.closeCall),
      openCalls: this.db.prepare(SQL.openCalls),
    };
    // Above every id this file has used (AUTOINCREMENT's sequence too), so order by id stays the order of sending.
    this.lastId = (this.db.prepare(SQL.lastId).get() as { n: number }).n;
    this.commitTx = this.db.transaction((writes: Write[]) => {
      for (const w of writes) {
        switch (w.op) {
          case 'insert':
            if (!w.cancelled)
              this.stmt.insert.run(w.id, w.endpoint, w.callId, w.event, w.body, w.createdAt, w.sent ? 1 : 0);
            break;
          case 'remove':
            this.stmt.remove.run(w.id);
            break;
          case 'mark':
            this.stmt.markSent.run(w.sent ? 1 : 0, w.id);
            break;
          case 'open':
            this.stmt.openCall.run(w.callId, w.endpoint, w.facts, w.at);
            break;
          case 'answer':
            this.stmt.answerCall.run(w.answeringNumber, w.callId);
            break;
          case 'close':
            this.stmt.closeCall.run(w.callId);
            break;
        }
      }
    });
  }

  /**
   * Queues an event and its journal change (newCall opens, answer marks, hangup closes) for the
   * next commit; returns its id at once. It is on disk once stored(id) is true.
   */
  add(endpoint: string, facts: EventFacts, body: string, createdAt: number): number {
    this.assertOpen();
    const id = ++this.lastId;
    const { callId, event } = facts;
    const insert: Insert = {
      op: 'insert',
      id,
      endpoint,
      callId,
      event,
      body,
      createdAt,
      sent: false,
      cancelled: false,
    };
    this.queue.push(insert);
    this.unstoredInserts.set(id, insert);
    if (event === 'newCall') {
      const journal = {
        callId,
        direction: facts.direction,
        from: facts.from,
        to: facts.to,
        ...(facts.queue !== undefined ? { queue: facts.queue } : {}),
      };
      this.queue.push({ op: 'open', callId, endpoint, facts: JSON.stringify(journal), at: createdAt });
    } else if (event === 'answer') {
      this.queue.push({ op: 'answer', callId, answeringNumber: facts.answeringNumber ?? '' });
    } else if (event === 'hangup') {
      this.queue.push({ op: 'close', callId });
    }
    this.soon();
    return id;
  }

  /** Whether the event is on disk (its batch has committed). */
  stored(id: number): boolean {
    return !this.unstoredInserts.has(id);
  }

  /** Why the last commit failed, while writes wait in memory. */
  get failure(): Error | undefined {
    return this.failed;
  }

  /** Events waiting in memory for the disk, by endpoint. */
  unstoredByEndpoint(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const w of this.unstoredInserts.values()) counts.set(w.endpoint, (counts.get(w.endpoint) ?? 0) + 1);
    return counts;
  }

  /** Each endpoint's outbox listens: told after each commit that stored events, and of each failed commit. */
  onCommit(listener: CommitListener): void {
    this.listeners.add(listener);
  }

  /** The outbox of one endpoint sees only its own events. */
  scoped(endpoint: string): EndpointStore {
    return {
      add: (facts, body, createdAt) => this.add(endpoint, facts, body, createdAt),
      stored: (id) => this.stored(id),
      failing: () => this.failed !== undefined,
      onCommit: (listener) => this.onCommit(listener),
      remove: (id) => this.remove(id),
      markSent: (id, sent) => this.markSent(id, sent),
      pending: () => this.pending(endpoint),
      callEnded: (callId) => this.callEnded(callId),
    };
  }

  /** Every endpoint that has events waiting, configured or not. */
  endpoints(): string[] {
    this.flush();
    return this.stmt.endpoints.all().map((r) => r.endpoint);
  }

  /** Transactions committed so far (for tests and figures). */
  get commits(): number {
    return this.commitCount;
  }

  /** Queued (see the header for the window); one not on disk yet is never written: a restart must not resend it. */
  remove(id: number): void {
    this.assertOpen();
    const waiting = this.unstoredInserts.get(id);
    if (waiting) {
      waiting.cancelled = true;
      this.unstoredInserts.delete(id);
      return;
    }
    this.queue.push({ op: 'remove', id });
    this.soon();
  }

  /**
   * Written before an at-most-once event goes to Zammad's socket: on disk (with whatever was
   * queued) when this returns, or it throws and leaves nothing behind (the request must not
   * leave then). Cleared when Zammad provably did not take it: committed at once too, but a
   * failed commit keeps the clearing queued instead of throwing (a later commit applies it).
   */
  markSent(id: number, sent: boolean): void {
    this.assertOpen();
    const waiting = this.unstoredInserts.get(id);
    if (waiting) {
      // Not on disk: a crash cannot send it again; if it is written later, it is written marked.
      waiting.sent = sent;
      return;
    }
    const mark: Write = { op: 'mark', id, sent };
    this.queue.push(mark);
    this.flush();
    const index = this.queue.indexOf(mark);
    if (index >= 0 && sent) {
      // Not on disk, and the request is not going to leave: the mark must not land later.
      this.queue.splice(index, 1);
      throw this.failed ?? new Error('the outbox could not write the mark');
    }
  }

  pending(endpoint: string): StoredEvent[] {
    this.flush();
    return this.stmt.all.all(endpoint).map((r) => ({
      id: r.id,
      endpoint: r.endpoint,
      callId: r.call_id,
      event: r.event,
      body: r.body,
      createdAt: r.created_at,
      sent: r.sent === 1,
    }));
  }

  count(): number {
    this.flush();
    return this.stmt.count.get()?.n ?? 0;
  }

  /** Queued like the rest: it lands in the same batch as a hangup sent just before it, or a later one. */
  callEnded(callId: string): void {
    this.assertOpen();
    this.queue.push({ op: 'close', callId });
    this.soon();
  }

  openCalls(): OpenCall[] {
    this.flush();
    return this.stmt.openCalls.all().map((r) => ({
      callId: r.call_id,
      endpoint: r.endpoint,
      facts: r.facts,
      answered: r.answered === 1,
      answeringNumber: r.answering_number,
      startedAt: r.started_at,
      trusted: r.trusted === 1,
    }));
  }

  /** Commits what is queued, then closes the file. Returns what could not be written, for the caller to name. */
  close(): Unsaved | undefined {
    if (this.closed) return undefined;
    this.flush();
    const error = this.failed?.message ?? '';
    const { events, lost } = leftOver(this.queue);
    const journalCalls = new Set(lost.map((c) => c.callId));
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.db.close();
    if (lost.length > 0 && this.path !== ':memory:') listIncomplete(this.path, lost);
    else if (this.marked) clearIncomplete(this.path);
    if (this.queue.length === 0) return undefined;
    return { events, journalCalls: [...journalCalls], error };
  }

  /** Commits everything queued, now. Never throws: a failure is kept in `failed` (and retried). */
  flush(): void {
    if (this.queue.length === 0 || this.closed) return;
    const writes = this.queue;
    let error: Error | undefined;
    try {
      this.commitTx(writes);
      this.queue = [];
    } catch (err) {
      // Rolled back as a whole: try again in pieces, so that a little room lets some of it through.
      error = err instanceof Error ? err : new Error(String(err));
      this.salvage();
    }
    this.settleInserts(writes);
    if (this.queue.length > 0) {
      this.failed = error ?? this.failed;
      if (error) this.hooks.writeFailed?.(error);
      if (!this.marked && this.queue.some(isJournal)) this.marked = markIncomplete(this.path);
      this.armRetry();
      return;
    }
    this.commitCount++;
    this.failed = undefined;
    this.failedCommits = 0;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.marked && this.path !== ':memory:') {
      clearIncomplete(this.path);
      this.marked = false;
    }
    // A synchronous commit (markSent, a read) after a failure: the listener still hears of it.
    if (this.newlyStored && !this.turnPending) this.soon();
  }

  /**
   * After a failed commit: removes and marks first (they make room), then each call's writes in a
   * transaction of their own, oldest call first, up to the first that fails; the rest stays queued.
   */
  private salvage(): void {
    const first: Write[] = [];
    const calls = new Map<string, Write[]>();
    for (const w of this.queue) {
      if (w.op === 'remove' || w.op === 'mark') first.push(w);
      else if (w.op === 'insert' && w.cancelled) continue;
      else {
        const group = calls.get(w.callId);
        if (group) group.push(w);
        else calls.set(w.callId, [w]);
      }
    }
    const groups = [first, ...calls.values()].filter((g) => g.length > 0);
    let done = 0;
    for (const group of groups) {
      try {
        this.commitTx(group);
      } catch {
        break;
      }
      this.commitCount++;
      done++;
    }
    this.queue = groups.slice(done).flat();
  }

  /** The inserts of `writes` that are no longer queued are on disk now. */
  private settleInserts(writes: readonly Write[]): void {
    const left = new Set(this.queue);
    for (const w of writes) {
      if (w.op !== 'insert' || left.has(w)) continue;
      if (this.unstoredInserts.delete(w.id)) this.newlyStored = true;
    }
  }

  /**
   * An earlier run left the journal incomplete (journal-marker.ts): its listed changes are applied
   * (a lost close: the hangup was delivered, or is named for replay), or every call is put in
   * doubt. On disk before the marker goes.
   */
  private takeMarker(): void {
    if (this.path === ':memory:') return;
    const lost = readIncomplete(this.path);
    if (lost === undefined) return;
    const all = this.db.prepare(SQL.distrustAll);
    const open = this.db.prepare<[string, string, string, number]>(SQL.openCall);
    const answer = this.db.prepare<[string, string]>(SQL.answerCall);
    const close = this.db.prepare<[string]>(SQL.closeCall);
    this.db.transaction(() => {
      if (lost === 'all') return void all.run();
      for (const c of lost) {
        if (c.open) open.run(c.callId, c.open.endpoint, c.open.facts, c.open.at);
        if (c.op === 'answer') answer.run(c.answeringNumber ?? '', c.callId);
        if (c.op === 'close') close.run(c.callId);
      }
    })();
    clearIncomplete(this.path);
  }

  /**
   * One commit per event-loop turn: everything queued until the turn's I/O callbacks are done
   * goes together. setImmediate rather than queueMicrotask: a microtask runs after each socket
   * callback, so a turn that reads several switch connections would commit once per connection;
   * the check phase comes once, after all of them, and is still part of the same turn.
   */
  private soon(): void {
    if (this.turnPending || this.retryTimer || this.closed) return;
    this.turnPending = true;
    setImmediate(this.turn);
  }

  /**
   * The listener hears of commits here, on a turn of its own, never from inside a synchronous
   * flush: markSent flushes inside the HTTP client's connect callback, where starting further
   * requests would re-enter it.
   */
  private readonly turn = (): void => {
    this.flush();
    this.turnPending = false;
    if (this.closed) return;
    const stored = this.newlyStored;
    this.newlyStored = false;
    const healed = this.toldFailure && !this.failed;
    this.toldFailure = this.failed !== undefined;
    if (this.failed) for (const l of this.listeners) l(this.failed, this.unstoredInserts.size);
    else if (stored || healed) for (const l of this.listeners) l(undefined, 0);
  };

  /** A write after close() would be lost without a word: it throws, as a write to a closed database does. */
  private assertOpen(): void {
    if (this.closed) throw new TypeError('The outbox store is closed');
  }

  private armRetry(): void {
    if (this.retryTimer || this.closed) return;
    this.failedCommits++;
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = undefined;
        this.turnPending = true;
        this.turn();
      },
      doubling(this.failedCommits, COMMIT_RETRY),
    );
    // The adapter's servers keep the process alive; a store alone must not.
    this.retryTimer.unref();
  }
}
