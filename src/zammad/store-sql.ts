/** The outbox file's tables and statements, the rows read from them, and the writes store.ts queues for them. */
import { DEFAULT_ENDPOINT } from './endpoints-file.js';
import type { LostChange } from './journal-marker.js';

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
  /** false: an earlier run could not write every journal change of this call (journal-marker.ts). */
  trusted: boolean;
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

/** Every statement in one place. */
export const SCHEMA = `
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
export const SQL = {
  columns: 'PRAGMA table_info(outbox)',
  journalColumns: 'PRAGMA table_info(open_calls)',
  addSent: 'ALTER TABLE outbox ADD COLUMN sent INTEGER NOT NULL DEFAULT 0',
  // A file without this column holds only events for ZAMMAD_CTI_URL: they get its endpoint's name.
  addEndpoint: `ALTER TABLE outbox ADD COLUMN endpoint TEXT NOT NULL DEFAULT '${DEFAULT_ENDPOINT}'`,
  addJournalEndpoint: `ALTER TABLE open_calls ADD COLUMN endpoint TEXT NOT NULL DEFAULT '${DEFAULT_ENDPOINT}'`,
  addJournalTrusted: 'ALTER TABLE open_calls ADD COLUMN trusted INTEGER NOT NULL DEFAULT 1',
  distrustAll: 'UPDATE open_calls SET trusted = 0',
  lastId:
    'SELECT max(coalesce((SELECT max(id) FROM outbox), 0), ' +
    "coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0)) AS n",
  // Ids come from this process (see add()), so they are known before the insert.
  insert: 'INSERT INTO outbox (id, endpoint, call_id, event, body, created_at, sent) VALUES (?, ?, ?, ?, ?, ?, ?)',
  remove: 'DELETE FROM outbox WHERE id = ?',
  markSent: 'UPDATE outbox SET sent = ? WHERE id = ?',
  all: 'SELECT id, endpoint, call_id, event, body, created_at, sent FROM outbox WHERE endpoint = ? ORDER BY id',
  endpoints: 'SELECT DISTINCT endpoint FROM outbox',
  count: 'SELECT count(*) AS n FROM outbox',
  openCall: 'INSERT OR IGNORE INTO open_calls (call_id, endpoint, facts, started_at) VALUES (?, ?, ?, ?)',
  answerCall: 'UPDATE open_calls SET answered = 1, answering_number = ? WHERE call_id = ?',
  closeCall: 'DELETE FROM open_calls WHERE call_id = ?',
  openCalls:
    'SELECT call_id, endpoint, facts, answered, answering_number, started_at, trusted ' +
    'FROM open_calls ORDER BY started_at',
} as const;

/** A queued write. Plain records in one array: the order is the order of the calls. */
export type Write =
  | Insert
  | { op: 'remove'; id: number }
  | { op: 'mark'; id: number; sent: boolean }
  | { op: 'open'; callId: string; endpoint: string; facts: string; at: number }
  | { op: 'answer'; callId: string; answeringNumber: string }
  | { op: 'close'; callId: string };

/** `sent` and `cancelled` may change while it waits (markSent, remove). */
export interface Insert {
  op: 'insert';
  id: number;
  endpoint: string;
  callId: string;
  event: string;
  body: string;
  createdAt: number;
  sent: boolean;
  /** Delivered before it could be written: it is not written at all. */
  cancelled: boolean;
}

export const isJournal = (w: Write): boolean => w.op === 'open' || w.op === 'answer' || w.op === 'close';

/** An event that close() could neither have delivered nor written: the operator can replay it. */
export interface UnsavedEvent {
  endpoint: string;
  callId: string;
  event: string;
  body: string;
  createdAt: number;
}

/** What close() could not write. */
export interface Unsaved {
  events: UnsavedEvent[];
  /** Calls whose journal change (open, answer, close) is lost. */
  journalCalls: string[];
  error: string;
}

/** What a queue the disk did not take holds: the events not delivered, and the journal changes lost. Pure. */
export function leftOver(queue: readonly Write[]): { events: UnsavedEvent[]; lost: LostChange[] } {
  const events: UnsavedEvent[] = [];
  for (const w of queue) {
    if (w.op === 'insert' && !w.cancelled)
      events.push({ endpoint: w.endpoint, callId: w.callId, event: w.event, body: w.body, createdAt: w.createdAt });
  }
  // A call whose newCall Zammad does not have must not be closed by the next start (a 500 for ever).
  const unknown = new Set(events.filter((e) => e.event === 'newCall').map((e) => e.callId));
  const lost: LostChange[] = [];
  for (const w of queue) {
    if (w.op === 'open')
      lost.push({
        op: w.op,
        callId: w.callId,
        ...(unknown.has(w.callId) ? {} : { open: { endpoint: w.endpoint, facts: w.facts, at: w.at } }),
      });
    if (w.op === 'close') lost.push({ op: w.op, callId: w.callId });
    if (w.op === 'answer') lost.push({ op: w.op, callId: w.callId, answeringNumber: w.answeringNumber });
  }
  return { events, lost };
}
