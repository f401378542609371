/**
 * The outbox on disk (better-sqlite3, WAL): every event for Zammad is written here before it is
 * sent and removed once Zammad has it, so a crash or restart loses nothing. It also remembers
 * which calls are still in progress (open_calls), so that a restarted adapter can finish them in
 * Zammad. add() keeps that journal in the same transaction as the call's events: a call is open
 * from the moment its newCall is on disk until its hangup is. Two separate writes would leave,
 * after a crash between them, a call closed twice (two hangups) or a hangup for a call whose
 * newCall was never stored (refused by Zammad for ever).
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DEFAULT_ENDPOINT } from './endpoints-file.js';
export class OutboxStore {
    db;
    stmt;
    addTx;
    constructor(path) {
        if (path !== ':memory:')
            mkdirSync(dirname(path), { recursive: true });
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
        // Added after the first release: an outbox file of an earlier version gets the column here.
        const columns = this.db.prepare('PRAGMA table_info(outbox)').all();
        if (!columns.some((c) => c.name === 'sent'))
            this.db.exec('ALTER TABLE outbox ADD COLUMN sent INTEGER NOT NULL DEFAULT 0');
        // Added with endpoints per tenant: what an earlier version stored went to ZAMMAD_CTI_URL.
        if (!columns.some((c) => c.name === 'endpoint'))
            this.db.exec(`ALTER TABLE outbox ADD COLUMN endpoint TEXT NOT NULL DEFAULT '${DEFAULT_ENDPOINT}'`);
        const journal = this.db.prepare('PRAGMA table_info(open_calls)').all();
        if (!journal.some((c) => c.name === 'endpoint'))
            this.db.exec(`ALTER TABLE open_calls ADD COLUMN endpoint TEXT NOT NULL DEFAULT '${DEFAULT_ENDPOINT}'`);
        this.stmt = {
            insert: this.db.prepare('INSERT INTO outbox (endpoint, call_id, event, body, created_at) VALUES (?, ?, ?, ?, ?)'),
            remove: this.db.prepare('DELETE FROM outbox WHERE id = ?'),
            markSent: this.db.prepare('UPDATE outbox SET sent = ? WHERE id = ?'),
            all: this.db.prepare('SELECT id, endpoint, call_id, event, body, created_at, sent FROM outbox WHERE endpoint = ? ORDER BY id'),
            endpoints: this.db.prepare('SELECT DISTINCT endpoint FROM outbox'),
            count: this.db.prepare('SELECT count(*) AS n FROM outbox'),
            openCall: this.db.prepare('INSERT OR IGNORE INTO open_calls (call_id, endpoint, facts, started_at) VALUES (?, ?, ?, ?)'),
            answerCall: this.db.prepare('UPDATE open_calls SET answered = 1, answering_number = ? WHERE call_id = ?'),
            closeCall: this.db.prepare('DELETE FROM open_calls WHERE call_id = ?'),
            openCalls: this.db.prepare('SELECT call_id, endpoint, facts, answered, answering_number, started_at FROM open_calls ORDER BY started_at'),
        };
        this.addTx = this.db.transaction((endpoint, callId, event, body, createdAt) => {
            const id = Number(this.stmt.insert.run(endpoint, callId, event, body, createdAt).lastInsertRowid);
            const form = new URLSearchParams(body);
            if (event === 'newCall') {
                const queue = form.get('queue');
                const facts = { callId, direction: form.get('direction') ?? '', from: form.get('from') ?? '', to: form.get('to') ?? '', ...(queue !== null ? { queue } : {}) };
                this.stmt.openCall.run(callId, endpoint, JSON.stringify(facts), createdAt);
            }
            else if (event === 'answer') {
                this.stmt.answerCall.run(form.get('answeringNumber') ?? '', callId);
            }
            else if (event === 'hangup') {
                this.stmt.closeCall.run(callId);
            }
            return id;
        });
    }
    /** Stores an event and, in the same transaction, keeps the open-call journal (newCall opens, answer marks, hangup closes). */
    add(endpoint, callId, event, body, createdAt) {
        return this.addTx(endpoint, callId, event, body, createdAt);
    }
    /** The outbox of one endpoint sees only its own events. */
    scoped(endpoint) {
        return {
            add: (callId, event, body, createdAt) => this.add(endpoint, callId, event, body, createdAt),
            remove: (id) => this.remove(id),
            markSent: (id, sent) => this.markSent(id, sent),
            pending: () => this.pending(endpoint),
            callEnded: (callId) => this.callEnded(callId),
        };
    }
    /** Every endpoint that has events waiting, configured or not. */
    endpoints() {
        return this.stmt.endpoints.all().map((r) => r.endpoint);
    }
    remove(id) {
        this.stmt.remove.run(id);
    }
    /** Written before an at-most-once event goes to Zammad's socket; cleared when Zammad provably did not take it. */
    markSent(id, sent) {
        this.stmt.markSent.run(sent ? 1 : 0, id);
    }
    pending(endpoint) {
        return this.stmt.all.all(endpoint).map((r) => ({ id: r.id, endpoint: r.endpoint, callId: r.call_id, event: r.event, body: r.body, createdAt: r.created_at, sent: r.sent === 1 }));
    }
    count() {
        return this.stmt.count.get()?.n ?? 0;
    }
    /** The journal entry of a call without its newCall (for tests and tools; the adapter journals through add()). */
    callStarted(callId, facts, at, endpoint = DEFAULT_ENDPOINT) {
        this.stmt.openCall.run(callId, endpoint, facts, at);
    }
    callAnswered(callId, answeringNumber) {
        this.stmt.answerCall.run(answeringNumber, callId);
    }
    callEnded(callId) {
        this.stmt.closeCall.run(callId);
    }
    openCalls() {
        return this.stmt.openCalls.all().map((r) => ({
            callId: r.call_id,
            endpoint: r.endpoint,
            facts: r.facts,
            answered: r.answered === 1,
            answeringNumber: r.answering_number,
            startedAt: r.started_at,
        }));
    }
    close() {
        this.db.close();
    }
}
//# sourceMappingURL=store.js.map