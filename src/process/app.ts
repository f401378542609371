/**
 * The running adapter: outbox (disk + HTTP) → listener → one CallSession per connection,
 * plus the status server. main.ts only reads the environment and handles signals.
 */
import type { Config } from './config.js';
import type { Logger } from './log.js';
import { CallSession } from '../call/session.js';
import { EslListener } from '../switch/listener.js';
import { EndpointSet } from '../zammad/endpoint-set.js';
import { EndpointsFileError } from '../zammad/endpoints-file.js';
import { OutboxStore } from '../zammad/store.js';
import { configuredEndpoints } from './endpoints.js';
import { Metrics } from '../status/metrics.js';
import { StatusServer, type Readiness } from '../status/server.js';
import { recoverOpenCalls } from './recovery.js';

export interface App {
  eslPort: number;
  statusPort: number;
  readiness(): Readiness;
  /** SIGHUP: reads ZAMMAD_ENDPOINTS_FILE again; a bad file keeps the endpoints in use (and says why). */
  reload(): boolean;
  /** Graceful stop: no new calls, follow the current ones up to drainMs, flush the outbox. */
  shutdown(drainMs: number): Promise<{ callsLeft: number; eventsLeft: number }>;
  /** Immediate stop: whatever is not delivered stays on disk. */
  abort(): void;
}

/** `secrets`: the logger's redaction list; every endpoint's token is added to it (log.ts). */
export async function startApp(config: Config, log: Logger, secrets: string[] = []): Promise<App> {
  const metrics = new Metrics();
  const endpointList = configuredEndpoints(config);
  const store = new OutboxStore(config.OUTBOX_PATH);
  const zammad = new EndpointSet(
    store,
    {
      maxReplyBytes: config.ZAMMAD_MAX_REPLY_BYTES,
      outbox: {
      requestTimeoutMs: config.ZAMMAD_REQUEST_TIMEOUT_MS,
      retryBaseMs: config.RETRY_BASE_MS,
      retryMaxMs: config.RETRY_MAX_MS,
      maxAgeMs: config.OUTBOX_MAX_AGE_HOURS * 3_600_000,
      maxEvents: config.OUTBOX_MAX_EVENTS,
      // One request per pooled connection: a request queued inside undici could not be overtaken
      // by a fresh newCall; queued in the outbox it can.
      // Per endpoint: each tenant's Zammad has a pool of its own.
      concurrency: config.ZAMMAD_MAX_CONNECTIONS,
      },
    },
    log.child({ component: 'outbox' }),
    {
      posted: (endpoint, event, status, seconds) => {
        metrics.posts.inc({ endpoint, event, status });
        metrics.postSeconds.observe({ endpoint, event }, seconds);
      },
      dropped: (endpoint, reason, events) => metrics.dropped.inc({ endpoint, reason }, events),
      held: (endpoint, events) => metrics.held.inc({ endpoint }, events),
      unrouted: (reason) => metrics.callsUnrouted.inc({ reason }),
    },
    secrets,
  );
  zammad.start(endpointList);
  const recovery = await recoverOpenCalls({ store, zammad, config, log: log.child({ component: 'recovery' }) });

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
        zammad,
        log: callLog,
        newCallTimeoutMs: config.ZAMMAD_NEWCALL_TIMEOUT_MS,
        followed,
        metrics: {
          decided: (kind, seconds, endpoint) => metrics.decisionSeconds.observe({ endpoint, decision: kind }, seconds),
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
  const shown = zammad.status().filter((e) => e.configured);
  log.info('listening for FreeSWITCH', { host: esl.host, port: esl.port, zammad: shown.length === 1 && shown[0]?.name === 'default' ? shown[0].url : shown.map((e) => `${e.name} ${e.url ?? ''}`).join(', ') });

  const readiness = (): Readiness => {
    const endpoints = zammad.status();
    const configured = endpoints.filter((e) => e.configured);
    const bad = configured.filter((e) => !e.ok);
    const single = configured.length === 1 && configured[0]?.name === 'default' ? configured[0] : undefined;
    const checks: Readiness['checks'] = {
      listener: { ok: listener.listening },
      // One endpoint: its own state, as before tenants. Several: which of them are not ready.
      zammad: single
        ? { ok: single.ok, detail: single.detail }
        : { ok: bad.length === 0, detail: configured.length === 0 ? 'no endpoint configured' : bad.length === 0 ? `${configured.length} endpoints ready` : `not ready: ${bad.map((e) => `${e.name} (${e.detail})`).join('; ')}` },
      backlog: { ok: zammad.depth < config.READY_MAX_BACKLOG, detail: `${zammad.depth} events waiting` },
    };
    if (!single) for (const e of endpoints) checks[`zammad:${e.name}`] = { ok: e.ok, detail: e.detail };
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  };
  const status = new StatusServer(metrics, readiness, () => {
    for (const e of zammad.status()) {
      metrics.outboxDepth.set({ endpoint: e.name }, e.events);
      metrics.zammadConfigFault.set({ endpoint: e.name }, e.configFault ? 1 : 0);
      metrics.outboxAge.set({ endpoint: e.name }, e.oldestAgeMs / 1000);
    }
  });
  const statusPort = await status.listen(config.STATUS_HOST, config.STATUS_PORT);
  log.info('status endpoints up', { host: config.STATUS_HOST, port: statusPort, paths: '/healthz /readyz /metrics' });

  const closeAll = async () => {
    recovery.stop();
    await status.close();
    await zammad.destroy();
    store.close();
  };

  return {
    eslPort: esl.port,
    statusPort,
    readiness,
    reload() {
      if (config.ZAMMAD_ENDPOINTS_FILE === undefined) {
        log.info('SIGHUP: no ZAMMAD_ENDPOINTS_FILE to read again; nothing changed');
        return true;
      }
      let next;
      try {
        next = configuredEndpoints(config);
      } catch (err) {
        const why = err instanceof EndpointsFileError ? err.problems.join('; ') : String(err);
        log.error('SIGHUP: the endpoints file is not usable; keeping the endpoints in use', { file: config.ZAMMAD_ENDPOINTS_FILE, problems: why });
        return false;
      }
      const { added, changed, removed } = zammad.reload(next);
      log.info('SIGHUP: endpoints read again', { endpoints: next.map((e) => e.name).join(','), added: added.join(','), changed: changed.join(','), removed: removed.join(',') });
      return true;
    },
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
      const flushed = await zammad.drain(Math.max(0, deadline - Date.now()));
      const eventsLeft = zammad.depth;
      if (!flushed) log.warn('events not yet delivered stay in the outbox for the next start', { events: eventsLeft });
      await closeAll();
      return { callsLeft, eventsLeft };
    },
    abort() {
      recovery.stop();
      listener.closeAll();
      zammad.close();
      store.close();
    },
  };
}
