/**
 * The running adapter: outbox (disk + HTTP) → listener → one CallSession per connection,
 * plus the status server. main.ts only reads the environment and handles signals.
 */
import type { Config } from './config.js';
import type { Logger } from './log.js';
import { CallSession } from '../call/session.js';
import { EslListener } from '../switch/listener.js';
import { ZammadClient } from '../zammad/client.js';
import { Outbox } from '../zammad/outbox.js';
import { OutboxStore } from '../zammad/store.js';
import { Metrics } from '../status/metrics.js';
import { StatusServer, type Readiness } from '../status/server.js';
import { recoverOpenCalls } from './recovery.js';

export interface App {
  eslPort: number;
  statusPort: number;
  readiness(): Readiness;
  /** Graceful stop: no new calls, follow the current ones up to drainMs, flush the outbox. */
  shutdown(drainMs: number): Promise<{ callsLeft: number; eventsLeft: number }>;
  /** Immediate stop: whatever is not delivered stays on disk. */
  abort(): void;
}

export async function startApp(config: Config, log: Logger): Promise<App> {
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

  const rules = {
    defaultCountryCode: config.DEFAULT_COUNTRY_CODE,
    extensionMaxDigits: config.EXTENSION_MAX_DIGITS,
    inboundContexts: config.INBOUND_CONTEXTS,
    defaultBridge: config.DEFAULT_BRIDGE,
  };
  const callLog = log.child({ component: 'call' });
  const sessions = new Set<Promise<void>>();
  const followedIds = new Set<string>();
  const followed = {
    claim(id: string): boolean {
      if (followedIds.has(id)) return false;
      followedIds.add(id);
      return true;
    },
    release: (id: string) => void followedIds.delete(id),
  };
  const listener = new EslListener(
    {
      host: config.ESL_HOST,
      port: config.ESL_PORT,
      allow: config.ESL_ALLOW,
      maxFrameBytes: config.ESL_MAX_FRAME_BYTES,
      handshakeTimeoutMs: config.ESL_IDLE_TIMEOUT_MS,
    },
    (conn) => {
      metrics.callsInProgress.inc();
      conn.once('closed', (reason) => {
        metrics.callsInProgress.dec();
        if (reason !== 'exit' && reason !== 'peer-closed') metrics.eslErrors.inc({ reason });
      });
      const session = new CallSession(conn, {
        rules,
        outbox,
        log: callLog,
        newCallTimeoutMs: config.ZAMMAD_NEWCALL_TIMEOUT_MS,
        followed,
        metrics: {
          decided: (kind, seconds) => metrics.decisionSeconds.observe({ decision: kind }, seconds),
          ended: (cause) => metrics.callsTotal.inc({ cause }),
        },
      });
      const running = session.run().catch((err: unknown) => callLog.error('call session failed', { error: String(err) }));
      sessions.add(running);
      void running.finally(() => sessions.delete(running));
    },
    log.child({ component: 'esl' }),
    { rejected: () => metrics.rejectedConnections.inc() },
  );
  const esl = await listener.listen();
  log.info('listening for FreeSWITCH', { host: esl.host, port: esl.port, zammad: client.safeUrl });

  const readiness = (): Readiness => {
    const fault = outbox.configFault;
    const reachable = outbox.zammadReachable;
    const checks = {
      listener: { ok: listener.listening },
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
      await listener.stopAccepting();
      log.info('stopped taking new calls; following the calls in progress', { calls: listener.connections, drainMs });
      while (listener.connections > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const callsLeft = listener.connections;
      if (callsLeft > 0) {
        log.warn('drain time over: leaving the calls still in progress to the next start', { calls: callsLeft });
        listener.closeAll();
      }
      await Promise.allSettled([...sessions]);
      const flushed = await outbox.drain(Math.max(0, deadline - Date.now()));
      const eventsLeft = outbox.depth;
      if (!flushed) log.warn('events not yet delivered stay in the outbox for the next start', { events: eventsLeft });
      await closeAll();
      return { callsLeft, eventsLeft };
    },
    abort() {
      recovery.stop();
      listener.closeAll();
      outbox.close();
      store.close();
    },
  };
}
