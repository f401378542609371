/**
 * `npm run bench:drain`: how long a backlog takes to reach Zammad once Zammad is back after an
 * outage, and how long callers waited for Zammad's decision while it was down.
 *
 *   node --import tsx bench/drain.ts [--events 6000] [--outage S] [--in-flight N] [--adapter-root DIR]
 *
 * The real adapter (built with tsc, run with node, default settings: ZAMMAD_NEWCALL_TIMEOUT_MS 2 s,
 * RETRY_BASE_MS 0.5 s, RETRY_MAX_MS 60 s, 8 connections), the Zammad double refusing connections,
 * the switch double placing answered calls (3 events each) until `--events` wait in the outbox.
 * The outage lasts `--outage` seconds from the first call (default 120, what an operator saw),
 * then the double listens again and the outbox is polled (/metrics, every 20 ms) until it is
 * empty. Every call must reach Zammad complete, each event once, in order; the run fails if not.
 * `--adapter-root DIR` measures another checkout (e.g. the commit before, unpacked with
 * `git archive`, its node_modules linked to this one's). bench/README.md has the figures.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { placeCall, type CallScript, type SwitchCall } from '@freeswitch-zammad-cti/sim/switch';
import { ZammadDouble } from '@freeswitch-zammad-cti/sim/zammad';
import { build, startAdapter, type Adapter } from './processes.js';
import { log, percentile, round, sleep } from './util.js';

const EVENTS = ['newCall', 'answer', 'hangup'];

function option(argv: string[], name: string, fallback: number): number {
  const i = argv.indexOf(name);
  const value = i >= 0 ? Number(argv[i + 1]) : fallback;
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name}: a number, please`);
  return value;
}

function callOf(i: number): CallScript {
  return {
    channel: {
      uuid: randomUUID(),
      callerNumber: `030${String(1_000_000 + i)}`,
      destination: '4930998001',
      context: 'public',
      variables: { domain_name: 'pbx.example', zammad_users: 'Alice', zammad_bridge: 'user/2003@pbx.example' },
    },
    targets: { '2003': { kind: 'answer', ringMs: 5, talkMs: 5 } },
  };
}

/** ms from the channel data to the bridge: how long the caller waited for Zammad's decision. */
function waitedMs(call: SwitchCall): number {
  const connected = call.framesSent.find((f) => f.kind === 'connect-reply')?.at ?? 0;
  const bridge = call.commands.find((c) => c.headers['execute-app-name'] === 'bridge');
  return bridge ? bridge.at - connected : NaN;
}

async function outboxEvents(adapter: Adapter): Promise<number> {
  return (await adapter.metrics())['cti_outbox_events{endpoint="default"}'] ?? NaN;
}

export async function main(argv: string[]): Promise<void> {
  const target = option(argv, '--events', 6000);
  const outageMs = option(argv, '--outage', 120) * 1000;
  const inFlight = option(argv, '--in-flight', 200);
  const root = argv.includes('--adapter-root') ? argv[argv.indexOf('--adapter-root') + 1] : undefined;
  const main = build(root);
  log(`adapter: ${main}`);

  const zammad = new ZammadDouble({ token: `bench-${randomBytes(8).toString('hex')}` });
  await zammad.start();
  await zammad.refuseConnections();
  const bridge = 'user/${destination_number}@${domain_name}';
  const adapter = await startAdapter({
    main,
    zammadUrl: zammad.url,
    bridge,
    logLevel: 'warn',
    tag: 'drain',
    nodeOptions: [],
  });
  const calls: SwitchCall[] = [];
  try {
    const start = Date.now();
    const wanted = Math.ceil(target / EVENTS.length);
    let next = 0;
    const worker = async () => {
      while (next < wanted) {
        const call = await placeCall({ host: '127.0.0.1', port: adapter.eslPort }, callOf(next++));
        calls.push(call);
        await call.closed;
      }
    };
    await Promise.all(Array.from({ length: Math.min(inFlight, wanted) }, worker));
    const fedMs = Date.now() - start;
    const waiting = await outboxEvents(adapter);
    log(`${calls.length} calls placed in ${round(fedMs / 1000, 1)} s; ${waiting} events wait`);
    const waits = calls.map(waitedMs).sort((a, b) => a - b);
    await sleep(Math.max(0, outageMs - (Date.now() - start)));
    const linesBefore = adapter.logLines;

    await zammad.acceptConnections();
    const back = performance.now();
    let firstMs = NaN;
    let empty = NaN;
    for (const deadline = back + 300_000; performance.now() < deadline; ) {
      if (Number.isNaN(firstMs) && zammad.posts.length > 0) firstMs = performance.now() - back;
      if ((await outboxEvents(adapter)) === 0) {
        empty = performance.now() - back;
        break;
      }
      await sleep(20);
    }
    await sleep(500); // a stray repeat would show up now
    const once = (c: SwitchCall) => zammad.postsFor(c.uuid).filter((p) => p.status === 200).length === EVENTS.length;
    const bad = calls.filter((c) => zammad.acceptedEvents(c.uuid).join() !== EVENTS.join() || !once(c));
    const m = await adapter.metrics();
    const figures = {
      adapter: root ?? '.',
      calls: calls.length,
      eventsWaiting: waiting,
      outageS: round((back + performance.timeOrigin - start) / 1000, 1),
      callerWaitMs: {
        p50: round(percentile(waits, 0.5), 0),
        p99: round(percentile(waits, 0.99), 0),
        max: round(waits.at(-1) ?? NaN, 0),
      },
      warnLinesDuringOutage: linesBefore,
      verdictSkipped: m['cti_newcall_verdict_skipped_total{endpoint="default",reason="unreachable"}'] ?? 0,
      firstDeliveryMs: round(firstMs, 0),
      drainMs: round(empty, 0),
      eventsPerSecond: round(waiting / (empty / 1000), 0),
      callsIncomplete: bad.length,
    };
    process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
    if (Number.isNaN(empty)) throw new Error('the outbox did not empty within 300 s');
    if (bad.length > 0) {
      throw new Error(`${bad.length} calls did not reach Zammad complete, once, in order (e.g. ${bad[0]?.uuid})`);
    }
  } finally {
    await adapter.stop();
    await zammad.stop();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (err: unknown) => {
      log(String(err instanceof Error ? (err.stack ?? err.message) : err));
      process.exit(1);
    },
  );
}
