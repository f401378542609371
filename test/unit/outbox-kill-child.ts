/**
 * The process that outbox-commit.test.ts kills with SIGKILL: an outbox on the file given as
 * argv[2], fed with whole calls turn after turn. Its Zammad answers every newCall on the next
 * turn and holds every answer for ever, so the answers and the calls' journal entries are what
 * a crash must keep. Each request is written to stdout, synchronously, at the moment it is
 * posted: the test then knows what left for Zammad before the kill.
 */
import { writeSync } from 'node:fs';
import type { Logger } from '../../src/process/log.js';
import type { HttpOutcome } from '../../src/zammad/client.js';
import { Outbox, type Poster } from '../../src/zammad/outbox.js';
import { OutboxStore } from '../../src/zammad/store.js';

const path = process.argv[2];
if (!path) throw new Error('usage: outbox-kill-child.ts OUTBOX_PATH');

const quiet: Logger = {
  error: () => {},
  warn: () => {},
  info: () => {},
  debug: () => {},
  child: () => quiet,
  isDebug: () => false,
};

const poster: Poster = {
  post(body: string): Promise<HttpOutcome> {
    writeSync(1, `POST ${body}\n`);
    const event = new URLSearchParams(body).get('event');
    if (event !== 'newCall') return new Promise(() => {}); // held: Zammad never answers it
    return new Promise((resolve) => setImmediate(() => resolve({ kind: 'response', status: 200, body: '{}' })));
  },
};

const store = new OutboxStore(path);
const outbox = new Outbox(
  store.scoped('default'),
  poster,
  {
    requestTimeoutMs: 60_000,
    retryBaseMs: 1000,
    retryMaxMs: 1000,
    maxAgeMs: 3_600_000,
    maxEvents: 1_000_000,
    concurrency: 100_000,
  },
  quiet,
);
let n = 0;
const base = (callId: string) => ({ callId, direction: 'in' as const, from: '493055571600', to: '4930777000' });
const tick = () => {
  // A few calls per turn, each at a different stage: a turn's group holds inserts, journal changes and deletes.
  for (let k = 0; k < 5; k++) {
    const id = `k${n++}`;
    void outbox.send({ event: 'newCall', ...base(id), users: ['Alice'] });
    void outbox.send({ event: 'answer', ...base(id), user: 'Alice', answeringNumber: '2000' });
    if (n % 3 === 0)
      void outbox.send({ event: 'hangup', ...base(id), cause: 'normalClearing', answeringNumber: '2000' });
  }
  setImmediate(tick);
};
writeSync(1, 'READY\n');
tick();
