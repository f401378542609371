/**
 * The disk fails under the outbox: the store retries in pieces so that a little room is enough,
 * never writes an event delivered meanwhile, and says at close what it could not write; the
 * outbox delivers from memory (a store failure injected through the store interface); the file
 * is probed at open; a stop names every event it could not store.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Outbox, type OutboxOptions } from '../../src/zammad/outbox.js';
import {
  OutboxStore,
  type CommitListener,
  type EndpointStore,
  type EventFacts,
  type StoredEvent,
} from '../../src/zammad/store.js';
import { OutboxOpenError } from '../../src/zammad/store-open.js';
import { markerPath } from '../../src/zammad/journal-marker.js';
import { reportUnsaved, UNSAVED_LINE, UnsavedLine } from '../../src/zammad/unsaved.js';
import {
  answer,
  base,
  FakePoster,
  type Line,
  missedHangup,
  newCall,
  recordingLogger,
  tempPath,
  turn,
  until,
} from './outbox-kit.js';

const OPTIONS: OutboxOptions = {
  requestTimeoutMs: 100,
  retryBaseMs: 4,
  retryMaxMs: 16,
  maxAgeMs: 60_000,
  maxEvents: 10_000,
  concurrency: 8,
};
const facts = (callId: string, event: string): EventFacts => ({ ...base(callId), event, answeringNumber: '2000' });

/** A store whose disk fails while `failing` is true: nothing is ever stored then. */
class FailingStore implements EndpointStore {
  failingNow = false;
  /** Only the marks fail (the disk fills between an event's write and its mark). */
  refuseMarks = false;
  private next = 0;
  private readonly onDisk = new Set<number>();
  readonly written: number[] = [];
  readonly removed: number[] = [];
  private readonly listeners: CommitListener[] = [];
  add(): number {
    const id = ++this.next;
    setImmediate(() => {
      if (this.failingNow) for (const l of this.listeners) l(new Error('database or disk is full'), 1);
      else {
        this.onDisk.add(id);
        this.written.push(id);
        for (const l of this.listeners) l(undefined, 0);
      }
    });
    return id;
  }
  stored = (id: number) => this.onDisk.has(id);
  failing = () => this.failingNow;
  onCommit = (l: CommitListener) => void this.listeners.push(l);
  remove = (id: number) => void this.removed.push(id);
  markSent(id: number): void {
    if (!this.onDisk.has(id)) return;
    if (this.refuseMarks) this.failingNow = true;
    if (this.failingNow) throw new Error('database or disk is full');
  }
  pending = (): StoredEvent[] => [];
  callEnded(): void {}
}

describe('the outbox while the disk fails', () => {
  test(
    'events leave from memory without waiting, the verdict arrives ' +
      'as usual, one log line per fault with counts, Zammad not blamed',
    async () => {
      const store = new FailingStore();
      const zammad = new FakePoster();
      const lines: Line[] = [];
      const outbox = new Outbox(store, zammad, OPTIONS, recordingLogger(lines));
      store.failingNow = true;
      const early: unknown[] = [];
      const verdicts = await Promise.all([
        outbox.send(newCall('a'), (v) => early.push(v)),
        outbox.send(answer('a')),
        outbox.send(newCall('b')),
      ]);
      assert.deepEqual(
        verdicts.map((v) => v.kind),
        ['delivered', 'delivered', 'delivered'],
      );
      assert.deepEqual(early, []);
      assert.equal(zammad.bodies.length, 3);
      await turn();
      const errors = lines.filter((l) => l.level === 'error');
      assert.equal(errors.length, 1, 'once per fault');
      assert.match(errors[0]?.message ?? '', /from memory.*"delivered while the process lives"/);
      assert.equal(typeof errors[0]?.fields['eventsInMemory'], 'number');
      assert.notEqual(outbox.zammadReachable, false);
      store.failingNow = false;
      await outbox.send(newCall('c'));
      const back = lines.find((l) => l.message === 'the outbox writes to disk again');
      assert.equal(back?.fields['deliveredFromMemory'], 3);
      outbox.close();
    },
  );

  test(
    "a missed call's hangup on disk whose mark the disk " + 'refuses waits for the disk, and Zammad is not blamed',
    async () => {
      const store = new FailingStore();
      const zammad = new FakePoster();
      const lines: Line[] = [];
      const outbox = new Outbox(store, zammad, OPTIONS, recordingLogger(lines));
      await outbox.send(newCall('m'));
      store.refuseMarks = true; // the hangup gets on disk, then the disk fails before its mark
      const hangup = outbox.send(missedHangup('m'));
      await until(
        () => lines.some((l) => /waits until the disk takes its "sent" mark/.test(l.message)),
        'waits for the disk',
      );
      assert.equal(zammad.bodies.length, 1, 'not sent without its mark');
      assert.notEqual(outbox.zammadReachable, false, 'not blamed on Zammad');
      store.refuseMarks = false;
      store.failingNow = false;
      assert.equal((await hangup).kind, 'delivered');
      outbox.close();
    },
  );
});

describe('the store while the disk fails', () => {
  test(
    'a delivered event is not written afterwards, its journal change ' +
      'is; removes go first; each call on its own, oldest first',
    () => {
      const path = tempPath();
      const store = new OutboxStore(path);
      const admin = new Database(path);
      admin.exec(
        "CREATE TRIGGER full BEFORE INSERT ON outbox WHEN NEW.call_id = 'big' " +
          "BEGIN SELECT RAISE(ABORT, 'database or disk is full (test)'); END",
      );
      const delivered = store.add('default', facts('a', 'newCall'), 'event=newCall&callId=a', 1);
      store.add('default', facts('big', 'newCall'), 'event=newCall&callId=big', 2);
      const later = store.add('default', facts('c', 'newCall'), 'event=newCall&callId=c', 3);
      store.remove(delivered); // delivered from memory before its write
      store.flush();
      assert.match(store.failure?.message ?? '', /disk is full/);
      assert.equal(store.stored(delivered), true, 'nothing left to store of it');
      assert.equal(store.stored(later), false, 'behind the oldest call that does not fit (oldest first)');
      const rows = admin
        .prepare<[], { call_id: string }>('SELECT call_id FROM outbox')
        .all()
        .map((r) => r.call_id);
      assert.deepEqual(rows, [], 'the delivered event is never written');
      const open = admin
        .prepare<[], { call_id: string }>('SELECT call_id FROM open_calls')
        .all()
        .map((r) => r.call_id);
      assert.deepEqual(open, ['a'], 'its journal change is: a crash after Zammad took it still closes the call');
      admin.exec('DROP TRIGGER full');
      store.flush();
      assert.equal(store.failure, undefined);
      assert.deepEqual(
        store.pending('default').map((e) => e.callId),
        ['big', 'c'],
      );
      store.close();
      admin.close();
    },
  );

  test(
    'close() returns what it could not write; the next start applies ' +
      'the lost journal changes (an open only if Zammad has the newCall)',
    () => {
      const path = tempPath();
      const first = new OutboxStore(path);
      first.add('default', facts('x', 'newCall'), 'event=newCall&callId=x', 1);
      first.add('default', facts('y', 'newCall'), 'event=newCall&callId=y', 1);
      first.flush();
      const admin = new Database(path);
      admin.exec(
        "CREATE TRIGGER full BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'database or disk is full (test)'); END",
      );
      first.add('default', facts('x', 'answer'), 'event=answer&callId=x', 2);
      const hangupY = first.add('default', facts('y', 'hangup'), 'event=hangup&callId=y', 3);
      first.remove(hangupY); // delivered from memory
      first.remove(first.add('default', facts('w', 'newCall'), 'event=newCall&callId=w', 4)); // delivered from memory
      first.add('default', facts('v', 'newCall'), 'event=newCall&callId=v', 5); // not delivered: Zammad does not know v
      first.flush();
      assert.equal(existsSync(markerPath(path)), true, 'marked at the first failure');
      const unsaved = first.close();
      assert.deepEqual(
        unsaved?.events.map((e) => `${e.callId}:${e.event}`),
        ['x:answer', 'v:newCall'],
      );
      assert.deepEqual(unsaved?.journalCalls.sort(), ['v', 'w', 'x', 'y']);
      admin.exec('DROP TRIGGER full');
      admin.close();
      const second = new OutboxStore(path);
      const open = second.openCalls();
      assert.deepEqual(
        open.map((c) => [c.callId, c.answered, c.trusted]),
        [
          ['x', true, true],
          ['w', false, true],
        ],
        'x answered, y closed, w opened, v unknown to Zammad',
      );
      assert.equal(existsSync(markerPath(path)), false);
      second.close();
    },
  );

  test('a marker without its closing line (a crash during the fault) puts every open call in doubt', () => {
    const path = tempPath();
    const first = new OutboxStore(path);
    first.add('default', facts('z', 'newCall'), 'b', 1);
    first.close();
    writeFileSync(markerPath(path), '');
    const second = new OutboxStore(path);
    assert.deepEqual(
      second.openCalls().map((c) => [c.callId, c.trusted]),
      [['z', false]],
    );
    second.close();
  });
});

describe('opening the outbox', () => {
  test(
    'a file that is not a database: refused, left untouched, the ' +
      'message names the path, OUTBOX_PATH and how to move it aside',
    () => {
      const path = tempPath();
      writeFileSync(path, 'not a database '.repeat(100));
      const before = readFileSync(path);
      assert.throws(
        () => new OutboxStore(path),
        (err: unknown) => {
          assert.ok(err instanceof OutboxOpenError);
          assert.match(err.message, new RegExp(`OUTBOX_PATH=${path}`));
          assert.match(err.message, /not a usable SQLite database/);
          assert.ok(err.message.includes(`mv ${path} ${path}.broken`));
          return true;
        },
      );
      assert.deepEqual(readFileSync(path), before, 'untouched');
    },
  );

  test('a file it may not write: refused at open, with the fix', () => {
    const path = tempPath();
    new OutboxStore(path).close();
    chmodSync(path, 0o444);
    if (process.getuid?.() !== 0) {
      assert.throws(() => new OutboxStore(path), /cannot write the outbox OUTBOX_PATH=.*writable/);
      return;
    }
    // Root writes a 0444 file anyway: the open runs as an unprivileged user (nobody), as a service would.
    chmodSync(join(path, '..'), 0o755);
    process.setegid?.(65534);
    process.seteuid?.(65534);
    try {
      assert.throws(() => new OutboxStore(path), /cannot write the outbox OUTBOX_PATH=.*writable/);
    } finally {
      process.seteuid?.(0);
      process.setegid?.(0);
    }
  });
});

describe('a stop that could not store everything', () => {
  test('every event named in the log and in a file beside the outbox, in a form replay reads', () => {
    const path = tempPath();
    const lines: Line[] = [];
    const events = [
      { endpoint: 'default', callId: 'p', event: 'newCall', body: 'event=newCall&callId=p', createdAt: 1 },
      { endpoint: 'acme', callId: 'q', event: 'hangup', body: 'event=hangup&callId=q', createdAt: 2 },
    ];
    const n = reportUnsaved(
      { events, journalCalls: ['q'], error: 'database or disk is full' },
      path,
      recordingLogger(lines),
      new Date('2026-01-02T03:04:05.678Z'),
    );
    assert.equal(n, 2);
    const file = `${path}.unsaved-2026-01-02T03-04-05-678Z.jsonl`;
    const written = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => UnsavedLine.parse(JSON.parse(l)));
    assert.deepEqual(written, events);
    const named = lines.filter((l) => l.message === UNSAVED_LINE).map((l) => UnsavedLine.parse(l.fields));
    assert.deepEqual(named, events);
    assert.ok(lines.some((l) => l.level === 'error' && l.fields['file'] === file && /replay/.test(l.message)));
    assert.ok(lines.some((l) => l.fields['callId'] === 'q' && /journal/.test(l.message)));
    assert.ok(readdirSync(join(path, '..')).includes(file.split('/').at(-1) ?? ''));
  });
});
