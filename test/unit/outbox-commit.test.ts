/**
 * Group commit (store.ts): one transaction per event-loop turn, and nothing leaves for Zammad
 * before the transaction that holds it has committed. "On disk" is checked the hard way: a
 * second connection to the same file must see the row at the moment the request is posted.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { HttpOutcome } from '../../src/zammad/client.js';
import { Outbox, type OutboxOptions } from '../../src/zammad/outbox.js';
import { OutboxStore } from '../../src/zammad/store.js';
import { formBody } from '../../src/zammad/form.js';
import type { Verdict } from '../../src/zammad/verdict.js';
import { childEnv } from '../child-env.js';
import {
  answer,
  answeredHangup,
  base,
  FakePoster,
  type Line,
  missedHangup,
  newCall,
  OK,
  recordingLogger,
  tempPath,
  turn,
  until,
} from './outbox-kit.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const OPTIONS: OutboxOptions = {
  requestTimeoutMs: 100,
  retryBaseMs: 4,
  retryMaxMs: 16,
  maxAgeMs: 60_000,
  maxEvents: 10_000,
  concurrency: 1000,
};

describe('group commit', () => {
  test(
    'one transaction per turn: 40 calls sent in one turn ' + 'are stored by one commit, their deletes by one more',
    async () => {
      const store = new OutboxStore(':memory:');
      const zammad = new FakePoster();
      zammad.answer = () => 'hold';
      const outbox = new Outbox(store.scoped('default'), zammad, OPTIONS, recordingLogger([]));
      const before = store.commits;
      const ids = Array.from({ length: 40 }, (_, i) => `c${i}`);
      const verdicts = ids.map((id) => outbox.send(newCall(id)));
      assert.equal(store.commits, before, 'nothing is committed inside the turn');
      assert.equal(zammad.requests.length, 0, 'nothing leaves before the commit');
      await until(() => zammad.requests.length === 40, 'all 40 newCalls posted');
      assert.equal(store.commits, before + 1, 'the 40 inserts and journal entries: one transaction');
      for (const p of zammad.requests) p.reply(OK);
      await Promise.all(verdicts);
      // The replies (one turn) queue 40 deletes and each lane's next event; a group carries them all.
      await turn();
      assert.equal(store.commits, before + 2, 'the 40 deletes: one transaction');
      assert.equal(store.count(), 0);
      assert.deepEqual(
        store
          .openCalls()
          .map((c) => c.callId)
          .sort(),
        [...ids].sort(),
      );
      outbox.close();
      store.close();
    },
  );

  test('whole calls: far fewer commits than the six per call of one transaction per write', async () => {
    const store = new OutboxStore(':memory:');
    const zammad = new FakePoster();
    const outbox = new Outbox(store.scoped('default'), zammad, OPTIONS, recordingLogger([]));
    const before = store.commits;
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => `w${i}`).flatMap((id) => [
        outbox.send(newCall(id)),
        outbox.send(answer(id)),
        outbox.send(answeredHangup(id)),
      ]),
    );
    await turn();
    // 3 events per call, each after the previous one's reply: about 2 commits per stage, for all 50 calls.
    const commits = store.commits - before;
    assert.ok(commits <= 8, `${commits} commits for 150 events`);
    assert.equal(store.count(), 0);
    assert.deepEqual(store.openCalls(), []);
    outbox.close();
    store.close();
  });

  test(
    'no request leaves before its row (and its journal ' + 'entry) is on disk, seen from a second connection',
    async () => {
      const path = tempPath();
      const store = new OutboxStore(path);
      const reader = new Database(path, { readonly: true });
      const row = reader.prepare<[string], { sent: number }>('SELECT sent FROM outbox WHERE body = ?');
      const open = reader.prepare<[string], { answered: number }>('SELECT answered FROM open_calls WHERE call_id = ?');
      const hangup = reader.prepare<[string], { id: number }>(
        "SELECT id FROM outbox WHERE call_id = ? AND event = 'hangup'",
      );
      const zammad = new FakePoster();
      let checked = 0;
      const wrong: string[] = [];
      zammad.check = (body) => {
        checked++;
        const form = new URLSearchParams(body);
        const callId = form.get('callId') ?? '';
        if (!row.get(body)) wrong.push(`not on disk when posted: ${body}`);
        // The call is in the journal before Zammad hears of it, or already closed by its stored hangup.
        const journal = open.get(callId);
        if (!journal && !hangup.get(callId)) wrong.push(`posted while the journal does not know the call: ${body}`);
        if (form.get('event') === 'answer' && journal && journal.answered !== 1)
          wrong.push(`answer posted before the journal has it: ${body}`);
      };
      let n = 0;
      zammad.answer = () => (n++ % 4 === 0 ? { kind: 'response', status: 503, body: '' } : OK); // some retries too
      const outbox = new Outbox(store.scoped('default'), zammad, OPTIONS, recordingLogger([]));
      const all: Promise<Verdict>[] = [];
      // Calls spread over several turns, each turn also carrying replies and deletes of earlier ones.
      for (let t = 0; t < 10; t++) {
        for (let k = 0; k < 5; k++) {
          const id = `t${t}-${k}`;
          all.push(
            outbox.send(newCall(id)),
            outbox.send(answer(id)),
            outbox.send(k % 2 ? answeredHangup(id) : missedHangup(id)),
          );
        }
        await turn();
      }
      const verdicts = await Promise.all(all);
      assert.ok(verdicts.every((v) => v.kind === 'delivered' || v.kind === 'unconfirmed'));
      assert.ok(checked >= 150, `every request checked (${checked})`);
      assert.deepEqual(wrong, []);
      outbox.close();
      store.close();
      reader.close();
    },
  );

  test(
    "a missed call's hangup is marked sent on disk before " + 'onSend returns, together with what the turn had queued',
    async () => {
      const path = tempPath();
      const store = new OutboxStore(path);
      const reader = new Database(path, { readonly: true });
      const sent = reader.prepare<[string], { sent: number }>(
        "SELECT sent FROM outbox WHERE call_id = ? AND event = 'hangup'",
      );
      const stored = reader.prepare<[string], { n: number }>('SELECT count(*) AS n FROM outbox WHERE call_id = ?');
      const zammad = new FakePoster();
      const outbox = new Outbox(store.scoped('default'), zammad, OPTIONS, recordingLogger([]));
      await outbox.send(newCall('m'));
      let seen: { before?: number; after?: number; queuedOnDisk?: number } = {};
      zammad.post = (_body: string, _t: number, onSend?: () => void): Promise<HttpOutcome> => {
        // Something else is queued in this turn when the request connects.
        void outbox.send(newCall('other'));
        seen = { before: sent.get('m')?.sent };
        onSend?.();
        seen.after = sent.get('m')?.sent;
        seen.queuedOnDisk = stored.get('other')?.n;
        return Promise.resolve({ kind: 'failure', code: 'ECONNRESET', error: 'reset after writing', sent: true });
      };
      const v = await outbox.send(missedHangup('m'));
      assert.deepEqual(seen, { before: 0, after: 1, queuedOnDisk: 1 });
      assert.equal(v.kind, 'unconfirmed', 'not sent again');
      outbox.close();
      store.close();
      reader.close();
    },
  );

  test(
    'a mark that cannot be written stops the request; while commits ' +
      'fail, events leave from memory and are never written afterwards',
    async () => {
      const path = tempPath();
      const store = new OutboxStore(path);
      const admin = new Database(path);
      const lines: Line[] = [];
      const zammad = new FakePoster();
      const reader = new Database(path, { readonly: true });
      const row = reader.prepare<[string], { id: number }>('SELECT id FROM outbox WHERE body = ?');
      const notOnDisk: string[] = [];
      zammad.check = (body) => void (row.get(body) || notOnDisk.push(body));
      const outbox = new Outbox(store.scoped('default'), zammad, OPTIONS, recordingLogger(lines));
      await outbox.send(newCall('m'));

      // The disk refuses the mark: the hangup must not go out, and is tried again (it provably did not leave).
      admin.exec(
        'CREATE TRIGGER no_mark BEFORE UPDATE OF sent ON outbox ' +
          "BEGIN SELECT RAISE(ABORT, 'disk I/O error (test)'); END",
      );
      const hangup = outbox.send(missedHangup('m'));
      await until(() => zammad.requests.length >= 3, 'the hangup tried, aborted, tried again');
      admin.exec('DROP TRIGGER no_mark');
      assert.equal((await hangup).kind, 'delivered', 'sent once the mark could be written');

      // The disk refuses inserts: the events leave from memory, not waiting; one error line for the fault.
      admin.exec(
        'CREATE TRIGGER no_insert BEFORE INSERT ON outbox ' +
          "BEGIN SELECT RAISE(ABORT, 'database or disk is full (test)'); END",
      );
      const early: Verdict[] = [];
      const ringing = outbox.send(newCall('full'), (v) => early.push(v));
      const other = outbox.send(newCall('full-2'));
      assert.equal((await ringing).kind, 'delivered', "the ringing caller gets Zammad's verdict, from memory");
      assert.equal((await other).kind, 'delivered');
      assert.deepEqual(early, [], 'no early "no verdict" for a disk fault');
      assert.equal(lines.filter((l) => l.level === 'error').length, 1, lines.map((l) => l.message).join('\n'));
      assert.match(
        lines.find((l) => l.level === 'error')?.message ?? '',
        /cannot write the outbox to disk.*from memory/,
      );
      assert.deepEqual(
        notOnDisk.sort(),
        [formBody(newCall('full')), formBody(newCall('full-2'))].sort(),
        'only those two left from memory',
      );

      admin.exec('DROP TRIGGER no_insert');
      const keep = setInterval(() => {}, 1000); // the retry timer does not hold the process open
      try {
        await until(
          () => lines.some((l) => l.message === 'the outbox writes to disk again'),
          'the disk takes writes again',
          6000,
        );
      } finally {
        clearInterval(keep);
      }
      assert.equal(
        lines.find((l) => l.message === 'the outbox writes to disk again')?.fields['deliveredFromMemory'],
        2,
      );
      assert.equal(store.count(), 0, 'events delivered from memory are never written afterwards');
      assert.deepEqual(
        store
          .openCalls()
          .map((c) => c.callId)
          .sort(),
        ['full', 'full-2'],
        'their journal changes are',
      );
      outbox.close();
      store.close();
      admin.close();
      reader.close();
    },
  );

  test('ids stay above every id the file used, so a restart keeps the order', () => {
    const path = tempPath();
    const first = new OutboxStore(path);
    for (let i = 0; i < 3; i++) first.add('default', { ...base(`r${i}`), event: 'newCall' }, `b${i}`, i);
    const ids = first.pending('default').map((e) => e.id);
    for (const id of ids) first.remove(id);
    first.close();
    const second = new OutboxStore(path);
    const id = second.add('default', { ...base('r9'), event: 'newCall' }, 'b9', 9);
    assert.ok(id > Math.max(...ids), `${id} after ${ids.join(',')}`);
    assert.deepEqual(
      second.pending('default').map((e) => e.body),
      ['b9'],
    );
    second.close();
  });

  test('SIGKILL: every request that left for Zammad, and every call it opened, is on disk after the kill', async () => {
    const path = tempPath();
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/unit/outbox-kill-child.ts', path], {
      cwd: ROOT,
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const posts: string[] = [];
    let buf = '';
    const enough = new Promise<void>((resolve, reject) => {
      child.on('exit', (code, signal) => reject(new Error(`child ended early: ${code ?? signal}`)));
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        buf += chunk;
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.startsWith('POST ')) posts.push(line.slice(5));
        }
        if (posts.length >= 600) resolve();
      });
    });
    await enough;
    const exited = new Promise((r) => child.removeAllListeners('exit').on('exit', r));
    child.kill('SIGKILL');
    await exited;

    const db = new Database(path, { readonly: true });
    const rows = new Set(
      db
        .prepare<[], { body: string }>('SELECT body FROM outbox')
        .all()
        .map((r) => r.body),
    );
    const open = new Set(
      db
        .prepare<[], { call_id: string }>('SELECT call_id FROM open_calls')
        .all()
        .map((r) => r.call_id),
    );
    const hungUp = new Set(
      db
        .prepare<[], { call_id: string }>("SELECT call_id FROM outbox WHERE event = 'hangup'")
        .all()
        .map((r) => r.call_id),
    );
    db.close();
    const answers = posts.filter((b) => b.startsWith('event=answer'));
    const newCalls = posts.filter((b) => b.startsWith('event=newCall'));
    assert.ok(
      answers.length > 100 && newCalls.length > 100,
      `${answers.length} answers, ${newCalls.length} newCalls posted`,
    );
    // Zammad never answered the answers: each must be on disk, to be sent again.
    for (const b of answers) assert.ok(rows.has(b), `posted, unanswered, and lost: ${b}`);
    // Every call Zammad heard of is closed after a restart: open in the journal, or its hangup stored.
    for (const b of newCalls) {
      const callId = new URLSearchParams(b).get('callId') ?? '';
      assert.ok(open.has(callId) || hungUp.has(callId), `call ${callId} would ring for ever in Zammad`);
    }
  });
});
