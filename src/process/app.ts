/**
 * The running adapter: outbox (disk + HTTP) → listener → one CallSession per connection,
 * plus the status server. main.ts only reads the environment and handles signals.
 */
import type { Config } from './config.js';
import type { Logger } from './log.js';
import { ZammadClient } from '../zammad/client.js';
import { Outbox } from '../zammad/outbox.js';
import { OutboxStore } from '../zammad/store.js';
import { Metrics } from '../status/metrics.js';
import { StatusServer, type Readiness } from '../status/server.js';
import { recoverOpenCalls } from './recovery.js';
import { localFront, type FrontFactory } from './calls.js';

export interface App {
  eslPort: number;
  statusPort: number;
  readiness(): Readiness;
  /** Graceful stop: no new calls, follow the current ones up to drainMs, flush the outbox. */
  shutdown(drainMs: number): Promise<{ callsLeft: number; eventsLeft: number }>;
  /** Immediate stop: whatever is not delivered stays on disk. */
  abort(): void;
}

/** `calls`: where calls are taken — this process (WORKERS=1) or cluster workers (cluster-primary.ts). */
export async function startApp(config: Config, log: Logger, calls: FrontFactory = localFront): Promise<App> {
  const metrics = new Metrics();
  const store = new OutboxStore(config.OUTBOX_PATH);
  const client = new ZammadClient({ url: config.ZAMMAD_CTI_URL, maxConnections: config.ZAMMAD_MAX_CONNECTIONS, maxReplyBytes: config.ZAMMAD_MAX_REPLY_BYTES });
  const outbox = new Outbox(
    store,
    client,
    {
      requestTimeoutMs: config.ZAMMAD_REQUEST_TIMEOUT_MS,
      retryBaseMs: config.RETRY_BASE_MS,
      retryMaxMs: config.RETRY_MAX_MS,
      maxAgeMs: config.OUTBOX_MAX_AGE_HOURS * 3_600_000,
      maxEvents: config.OUTBOX_MAX_EVENTS,
      // One request per pooled connection: a request queued inside undici could not be overtaken
      // by a fresh newCall; queued in the outbox it can.
      concurrency: config.ZAMMAD_MAX_CONNECTIONS,
    },
    log.child({ component: 'outbox' }),
    {
      posted: (event, status, seconds) => {
        metrics.posts.inc({ event, status });
        metrics.postSeconds.observe({ event }, seconds);
      },
      dropped: (reason, events) => metrics.dropped.inc({ reason }, events),
    },
  );
  outbox.restore();
  const recovery = await recoverOpenCalls({ store, outbox, config, log: log.child({ component: 'recovery' }) });

  const front = calls({
    config,
    log,
    sink: outbox,
    metrics,
    recover: (callIds) => recoverOpenCalls({ store, outbox, config, log: log.child({ component: 'recovery' }) }, callIds),
  });
  const esl = await front.listen();
  log.info('listening for FreeSWITCH', { host: esl.host, port: esl.port, zammad: client.safeUrl });

  const readiness = (): Readiness => {
    const fault = outbox.configFault;
    const reachable = outbox.zammadReachable;
    const checks = {
      listener: front.listenerCheck(),
      zammad: fault ? { ok: false, detail: fault } : reachable === false ? { ok: false, detail: 'Zammad did not answer the last request' } : { ok: true, detail: reachable === undefined ? 'no request yet' : 'answered' },
      backlog: { ok: outbox.depth < config.READY_MAX_BACKLOG, detail: `${outbox.depth} events waiting` },
    };
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  };
  const status = new StatusServer(metrics, readiness, () => {
    metrics.outboxDepth.set(outbox.depth);
    metrics.outboxAge.set(outbox.oldestAgeMs() / 1000);
    metrics.zammadConfigFault.set(outbox.configFault ? 1 : 0);
  });
  const statusPort = await status.listen(config.STATUS_HOST, config.STATUS_PORT);
  log.info('status endpoints up', { host: config.STATUS_HOST, port: statusPort, paths: '/healthz /readyz /metrics' });

  const closeAll = async () => {
    recovery.stop();
    outbox.close();
    await status.close();
    await client.destroy();
    store.close();
  };

  return {
    eslPort: esl.port,
    statusPort,
    readiness,
    async shutdown(drainMs) {
      const deadline = Date.now() + drainMs;
      const inProgress = await front.stopAccepting(deadline);
      log.info('stopped taking new calls; following the calls in progress', { calls: inProgress, drainMs });
      const callsLeft = await front.drain(deadline);
      const flushed = await outbox.drain(Math.max(0, deadline - Date.now()));
      const eventsLeft = outbox.depth;
      if (!flushed) log.warn('events not yet delivered stay in the outbox for the next start', { events: eventsLeft });
      await closeAll();
      return { callsLeft, eventsLeft };
    },
    abort() {
      recovery.stop();
      front.abort();
      outbox.close();
      store.close();
    },
  };
}
