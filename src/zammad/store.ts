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
 *  - An event is on disk before it leaves: add() returns its id at once, but the outbox posts it
 *    only once stored(id) says its batch has committed (onCommit tells when). Otherwise a
 *    SIGKILL after Zammad stored a newCall but before the commit would leave the call ringing
 *    for ever (no journal entry, so no closing hangup after the restart).
 *  - markSent() commits at once, with whatever is queued: it runs right before an at-most-once
 *    request leaves, and must be on disk by then.
 *  - remove() of a delivered event rides in the next batch: a SIGKILL within that turn sends
 *    the event again after the restart (at-least-once delivery, which every other event
 *    tolerates: verdict.ts). An at-most-once event marked sent is never sent twice: its mark is
 *    on disk before it left, so a restart that finds it drops it instead (outbox.ts restore()).
 *  - Reads (pending, count, openCalls) and close() commit what is queued first.
 * A failed commit (disk full, I/O error) is rolled back and the queue kept: nothing is marked
 * stored, onCommit hears of the error, and the commit is tried again (less and less often)
 * until it passes. Events not yet stored are never posted in the meantime, and markSent(…,
 * true) throws, so that its request does not leave.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { doubling } from './backoff.js';
import { DEFAULT_ENDPOINT } from './endpoints-file.js';

export interface StoredEvent {
  id: number;
  /** The Zammad it goes to (endpoints-file.ts); never another. */
  endpoint: string;
  callId: string;
  event: string;
  body: string;
  createdAt: number;
  /** The event was (about to be) written to Zammad's socket when the process last ran; see markSent. */
  sent: boolean;
}

export interface OpenCall {
  callId: string;
  endpoint: string;
  /** The call's newCall fields as JSON (callId, direction, from, to), for a closing hangup. */
  facts: string;
  answered: boolean;
  answeringNumber: string | null;
  startedAt: number;
}

/**
 * What the journal needs of an event. The outbox passes its CtiPost (it matches this shape), so
 * the form body is never parsed again.
 */
export interface EventFacts {
  event: string;
  callId: string;
  direction: string;
  from: string;
  to: string;
  queue?: string;
  answeringNumber?: string;
}

/** Told after each commit that made events stored (error undefined), or of a failed commit and how many events it left off the disk. */
export type CommitListener = (error: Error | undefined, unstored: number) => void;

/** Every statement in one place. */
const SCHEMA = `
  CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint TEXT NOT NULL DEFAULT '${DEFAULT_ENDPOINT}',
    call_id TEXT NOT NULL,
    event TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS open_calls (
    call_id TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL DEFAULT '${DEFAULT_ENDPOINT}',
    facts TEXT NOT NULL,
    answered INTEGER NOT NULL DEFAULT 0,
    answering_number TEXT,
    started_at INTEGER NOT NULL
  );
`;
const SQL = {
  columns: 'PRAGMA table_info(outbox)',
  journalColumns: 'PRAGMA table_info(open_calls)',
  addSent: 'ALTER TABLE outbox ADD COLUMN sent INTEGER NOT NULL DEFAULT 0',
  // A file without this column holds only events for ZAMMAD_CTI_URL: they get its endpoint's name.
  addEndpoint: `ALTER TABLE outbox ADD COLUMN endpoint TEXT NOT NULL DEFAULT '${DEFAULT_ENDPOINT}'`,
  addJournalEndpoint: `ALTER TABLE open_calls ADD COLUMN endpoint TEXT NOT NULL DEFAULT '${DEFAULT_ENDPOINT}'`,
  lastId: "SELECT max(coalesce((SELECT max(id) FROM outbox), 0), coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0)) AS n",
  // Ids come from this process (see add()), so they are known before the insert.
  insert: 'INSERT INTO outbox (id, endpoint, call_id, event, body, created_at) VALUES (?, ?, ?, ?, ?, ?)',
  remove: 'DELETE FROM outbox WHERE id = ?',
  markSent: 'UPDATE outbox SET sent = ? WHERE id = ?',
  all: 'SELECT id, endpoint, call_id, event, body, created_at, sent FROM outbox WHERE endpoint = ? ORDER BY id',
  endpoints: 'SELECT DISTINCT endpoint FROM outbox',
  count: 'SELECT count(*) AS n FROM outbox',
  openCall: 'INSERT OR IGNORE INTO open_calls (call_id, endpoint, facts, started_at) VALUES (?, ?, ?, ?)',
  answerCall: 'UPDATE open_calls SET answered = 1, answering_number = ? WHERE call_id = ?',
  closeCall: 'DELETE FROM open_calls WHERE call_id = ?',
  openCalls: 'SELECT call_id, endpoint, facts, answered, answering_number, started_at FROM open_calls ORDER BY started_at',
} as const;

/** A queued write. Plain records in one array: the order is the order of the calls. */
type Write =
  | { op: 'insert'; id: number; endpoint: string; callId: string; event: string; body: string; createdAt: number }
  | { op: 'remove'; id: number }
  | { op: 'mark'; id: number; sent: boolean }
  | { op: 'open'; callId: string; endpoint: string; facts: string; at: number }
  | { op: 'answer'; callId: string; answeringNumber: string }
  | { op: 'close'; callId: string };

/** After a failed commit: first retry after 50 ms, doubling up to 5 s. */
const COMMIT_RETRY = { baseMs: 50, maxMs: 5000 } as const;

/** What one endpoint's Outbox needs of the disk: its own events only. */
export interface EndpointStore {
  add(facts: EventFacts, body: string, createdAt: number): number;
  stored(id: number): boolean;
  onCommit(listener: CommitListener): void;
  remove(id: number): void;
  markSent(id: number, sent: boolean): void;
  pending(): StoredEvent[];
  callEnded(callId: string): void;
}

export class OutboxStore {
  private readonly db: Database.Database;
  private readonly stmt: {
    insert: Database.Statement<[number, string, string, string, string, number]>;
    remove: Database.Statement<[number]>;
    markSent: Database.Statement<[number, number]>;
    all: Database.Statement<[string], { id: number; endpoint: string; call_id: string; event: string; body: string; created_at: number; sent: number }>;
    endpoints: Database.Statement<[], { endpoint: string }>;
    count: Database.Statement<[], { n: number }>;
    openCall: Database.Statement<[string, string, string, number]>;
    answerCall: Database.Statement<[string, string]>;
    closeCall: Database.Statement<[string]>;
    openCalls: Database.Statement<[], { call_id: string; endpoint: string; facts: string; answered: number; answering_number: string | null; started_at: number }>;
  };
  private readonly commitTx: (writes: Write[]) => void;
  private queue: Write[] = [];
  /** The last id handed out by add(); ids only grow, so "stored" is one comparison. */
  private lastId: number;
  /** Every event with an id up to this one is on disk. */
  private storedId: number;
  private turnPending = false;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Failed commits in a row. */
  private failedCommits = 0;
  private failure: Error | undefined;
  /** One per endpoint's outbox. */
  private readonly listeners = new Set<CommitListener>();
  private toldId: number;
  private commitCount = 0;
  private closed = false;

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    // WAL + NORMAL: a committed row survives a crash of this process (not necessarily of the OS).
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(SCHEMA);
    // A file written without some of these columns gets them here, each with the default its rows mean.
    const columns = this.db.prepare(SQL.columns).all() as { name: string }[];
    if (!columns.some((c) => c.name === 'sent')) this.db.exec(SQL.addSent);
    if (!columns.some((c) => c.name === 'endpoint')) this.db.exec(SQL.addEndpoint);
    const journal = this.db.prepare(SQL.journalColumns).all() as { name: string }[];
    if (!journal.some((c) => c.name === 'endpoint')) this.db.exec(SQL.addJournalEndpoint);
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
    this.storedId = this.lastId;
    this.toldId = this.lastId;
    this.commitTx = this.db.transaction((writes: Write[]) => {
      for (const w of writes) {
        switch (w.op) {
          case 'insert':
            this.stmt.insert.run(w.id, w.endpoint, w.callId, w.event, w.body, w.createdAt);
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
    this.queue.push({ op: 'insert', id, endpoint, callId, event, body, createdAt });
    if (event === 'newCall') {
      const journal = { callId, direction: facts.direction, from: facts.from, to: facts.to, ...(facts.queue !== undefined ? { queue: facts.queue } : {}) };
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
    return id <= this.storedId;
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

  /** Queued: a delivered event leaves the disk with the next batch (see the header for the window). */
  remove(id: number): void {
    this.assertOpen();
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
    this.queue.push({ op: 'mark', id, sent });
    this.flush();
    if (this.failure && sent) {
      // Not on disk, and the request is not going to leave: the mark must not land later.
      this.queue.pop();
      throw this.failure;
    }
  }

  pending(endpoint: string): StoredEvent[] {
    this.flush();
    return this.stmt.all.all(endpoint).map((r) => ({ id: r.id, endpoint: r.endpoint, callId: r.call_id, event: r.event, body: r.body, createdAt: r.created_at, sent: r.sent === 1 }));
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
    }));
  }

  /** Commits what is queued, then closes the file. A failed last commit is reported to the listener. */
  close(): void {
    if (this.closed) return;
    this.flush();
    if (this.failure) for (const l of this.listeners) l(this.failure, this.unstored());
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.db.close();
  }

  /** Commits everything queued, now. Never throws: a failure is kept in `failure` (and retried). */
  flush(): void {
    if (this.queue.length === 0 || this.closed) return;
    const writes = this.queue;
    const last = this.lastId;
    try {
      this.commitTx(writes);
    } catch (err) {
      // Rolled back as a whole: keep the queue (new writes go after it) and try again later.
      this.failure = err instanceof Error ? err : new Error(String(err));
      this.armRetry();
      return;
    }
    this.queue = [];
    this.storedId = last;
    this.commitCount++;
    this.failure = undefined;
    this.failedCommits = 0;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    // A synchronous commit (markSent, a read) after a failure: the listener still hears of it.
    if (this.storedId > this.toldId && !this.turnPending) this.soon();
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
    if (this.failure) for (const l of this.listeners) l(this.failure, this.unstored());
    else if (this.storedId > this.toldId) {
      this.toldId = this.storedId;
      for (const l of this.listeners) l(undefined, 0);
    }
  };

  /** Events queued and not on disk. */
  private unstored(): number {
    return this.lastId - this.storedId;
  }

  /** A write after close() would be lost without a word: it throws, as a write to a closed database does. */
  private assertOpen(): void {
    if (this.closed) throw new TypeError('The outbox store is closed');
  }

  private armRetry(): void {
    if (this.retryTimer || this.closed) return;
    this.failedCommits++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.turnPending = true;
      this.turn();
    }, doubling(this.failedCommits, COMMIT_RETRY));
    // The adapter's servers keep the process alive; a store alone must not.
    this.retryTimer.unref();
  }
}
