/**
 * The outbox on disk (better-sqlite3, WAL): every event for Zammad is written here before it is
 * sent and removed once Zammad has it, so a crash or restart loses nothing. It also remembers
 * which calls are still in progress, so that a restarted adapter can finish them in Zammad.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export interface StoredEvent {
  id: number;
  callId: string;
  event: string;
  body: string;
  createdAt: number;
}

export interface OpenCall {
  callId: string;
  /** The call's newCall fields as JSON (callId, direction, from, to), for a closing hangup. */
  facts: string;
  answered: boolean;
  answeringNumber: string | null;
  startedAt: number;
}

export class OutboxStore {
  private readonly db: Database.Database;
  private readonly stmt: {
    insert: Database.Statement<[string, string, string, number]>;
    remove: Database.Statement<[number]>;
    all: Database.Statement<[], { id: number; call_id: string; event: string; body: string; created_at: number }>;
    count: Database.Statement<[], { n: number }>;
    openCall: Database.Statement<[string, string, number]>;
    answerCall: Database.Statement<[string, string]>;
    closeCall: Database.Statement<[string]>;
    openCalls: Database.Statement<[], { call_id: string; facts: string; answered: number; answering_number: string | null; started_at: number }>;
  };

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    // WAL + NORMAL: a committed row survives a crash of this process (not necessarily of the OS).
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        call_id TEXT NOT NULL,
        event TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS open_calls (
        call_id TEXT PRIMARY KEY,
        facts TEXT NOT NULL,
        answered INTEGER NOT NULL DEFAULT 0,
        answering_number TEXT,
        started_at INTEGER NOT NULL
      );
    `);
    this.stmt = {
      insert: this.db.prepare('INSERT INTO outbox (call_id, event, body, created_at) VALUES (?, ?, ?, ?)'),
      remove: this.db.prepare('DELETE FROM outbox WHERE id = ?'),
      all: this.db.prepare('SELECT id, call_id, event, body, created_at FROM outbox ORDER BY id'),
      count: this.db.prepare('SELECT count(*) AS n FROM outbox'),
      openCall: this.db.prepare('INSERT OR REPLACE INTO open_calls (call_id, facts, started_at) VALUES (?, ?, ?)'),
      answerCall: this.db.prepare('UPDATE open_calls SET answered = 1, answering_number = ? WHERE call_id = ?'),
      closeCall: this.db.prepare('DELETE FROM open_calls WHERE call_id = ?'),
      openCalls: this.db.prepare('SELECT call_id, facts, answered, answering_number, started_at FROM open_calls ORDER BY started_at'),
    };
  }

  add(callId: string, event: string, body: string, createdAt: number): number {
    return Number(this.stmt.insert.run(callId, event, body, createdAt).lastInsertRowid);
  }

  remove(id: number): void {
    this.stmt.remove.run(id);
  }

  pending(): StoredEvent[] {
    return this.stmt.all.all().map((r) => ({ id: r.id, callId: r.call_id, event: r.event, body: r.body, createdAt: r.created_at }));
  }

  count(): number {
    return this.stmt.count.get()?.n ?? 0;
  }

  callStarted(callId: string, facts: string, at: number): void {
    this.stmt.openCall.run(callId, facts, at);
  }

  callAnswered(callId: string, answeringNumber: string): void {
    this.stmt.answerCall.run(answeringNumber, callId);
  }

  callEnded(callId: string): void {
    this.stmt.closeCall.run(callId);
  }

  openCalls(): OpenCall[] {
    return this.stmt.openCalls.all().map((r) => ({
      callId: r.call_id,
      facts: r.facts,
      answered: r.answered === 1,
      answeringNumber: r.answering_number,
      startedAt: r.started_at,
    }));
  }

  close(): void {
    this.db.close();
  }
}
