/**
 * Opening the outbox file: it must take a real write before the adapter takes calls, and an
 * error names the file, OUTBOX_PATH and the fix. A file that is not a usable database is left
 * as it is: it may still hold events, and only the operator may decide to move it aside.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/** The outbox cannot be opened or written: the start stops (main.ts, exit code 2). */
export class OutboxOpenError extends Error {
  constructor(
    message: string,
    readonly path: string,
  ) {
    super(message);
    this.name = 'OutboxOpenError';
  }
}

const code = (err: unknown): string => String((err as { code?: unknown } | null)?.code ?? '');

/** What the operator reads: what is wrong with which file, and what to do. Pure. */
export function openErrorMessage(path: string, err: unknown): string {
  const why = err instanceof Error ? err.message : String(err);
  const c = code(err);
  const where = `the outbox OUTBOX_PATH=${path}`;
  if (c === 'SQLITE_NOTADB' || c.startsWith('SQLITE_CORRUPT')) {
    return [
      `${where} is not a usable SQLite database (${why}); it is left untouched.`,
      `To start with a new outbox, move it aside and start again: mv ${path} ${path}.broken`,
      `(and ${path}-wal and ${path}-shm, if there). What it still held is not delivered then: its events`,
      'and its journal of calls in progress (those calls are not closed in Zammad); ' +
        'keep the moved file to look into it.',
    ].join(' ');
  }
  if (c === 'SQLITE_FULL' || c === 'ENOSPC') {
    return [
      `cannot write ${where} (${why}): the disk is full.`,
      'Free space there, or set OUTBOX_PATH to a disk with room.',
    ].join(' ');
  }
  return [
    `cannot write ${where} (${why}). The adapter writes every event there before it sends it, and does not start`,
    `without it: make the file and its directory (${dirname(path)}) writable by this user (SQLite also writes`,
    `${path}-wal and ${path}-shm beside it), or set OUTBOX_PATH to a writable place.`,
  ].join(' ');
}

/** Opens (or creates) the file and proves that it takes a write; throws OutboxOpenError otherwise. */
export function openOutboxFile(path: string, prepare: (db: Database.Database) => void): Database.Database {
  let db: Database.Database | undefined;
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    db = new Database(path);
    // WAL + NORMAL: a committed row survives a crash of this process (not necessarily of the OS).
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    prepare(db);
    // SQLite opens a file it may not write read-only, without a word: a real write says so now.
    const probe = db;
    probe.transaction(() => {
      probe.exec('CREATE TABLE IF NOT EXISTS write_probe (at INTEGER)');
      probe.prepare('INSERT INTO write_probe (at) VALUES (?)').run(Date.now());
      probe.exec('DELETE FROM write_probe');
    })();
    return db;
  } catch (err) {
    try {
      db?.close();
    } catch {
      /* the error above is the one to report */
    }
    throw new OutboxOpenError(openErrorMessage(path, err), path);
  }
}
