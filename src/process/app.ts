/**
 * The running adapter: outbox (disk + HTTP) → listener → one CallSession per connection,
 * plus the status server. main.ts only reads the environment and handles signals.
 */
import type { Config } from './config.js';
import type { Logger } from './log.js';
import { EndpointSet, type EndpointStatus } from '../zammad/endpoint-set.js';
import { DEFAULT_ENDPOINT, EndpointsFileError, type Endpoint } from '../zammad/endpoints-file.js';
import { OutboxStore } from '../zammad/store.js';
import { reportUnsaved } from '../zammad/unsaved.js';
import { configuredEndpoints } from './endpoints.js';
import { Metrics } from '../status/metrics.js';
import { StatusServer, type Readiness } from '../status/server.js';
import { recoverOpenCalls } from './recovery.js';
import { takeCalls } from './calls.js';

export interface App {
  eslPort: number;
  statusPort: number;
  readiness(): Readiness;
  /** SIGHUP: reads ZAMMAD_ENDPOINTS_FILE again; a bad file keeps the endpoints in use (and says why). */
  reload(): boolean;
  /**
   * Graceful stop: no new calls, follow the current ones up to drainMs, flush the outbox. `unsaved`: events neither
   * delivered nor stored.
   */
  shutdown(drainMs: number): Promise<{ callsLeft: number; eventsLeft: number; unsaved: number }>;
  /** Immediate stop: whatever is not delivered stays on disk. */
  abort(): void;
}

/**
 * ZAMMAD_CTI_URL's endpoint when it is the only one: logs and /readyz then name no endpoint (one Zammad needs no
 * name).
 */
function soleDefault(configured: readonly EndpointStatus[]): EndpointStatus | undefined {
  return configured.length === 1 && configured[0]?.name === DEFAULT_ENDPOINT ? configured[0] : undefined;
}

/**
 * `endpoints`: configuredEndpoints(config), read by the caller (once; reload() reads the file again).
 * `secrets`: the logger's redaction list; every endpoint's token is added to it (log.ts).
 */
export async function startApp(
  config: Config,
  log: Logger,
  endpoints: readonly Endpoint[],
  secrets: string[] = [],
): Promise<App> {
  const metrics = new Metrics();
  // Throws OutboxOpenError when the file cannot be written: main.ts refuses to start.
  const store = new OutboxStore(config.OUTBOX_PATH, { writeFailed: () => metrics.writeFailures.inc() });
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
        // by a fresh newCall; queued in the outbox it can. Per endpoint: each tenant's Zammad has a
        // pool of its own.
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
      skipped: (endpoint, reason) => metrics.verdictSkipped.inc({ endpoint, reason }),
      unrouted: (reason) => metrics.callsUnrouted.inc({ reason }),
    },
    secrets,
  );
  zammad.start(endpoints);
  // Reads the journal before the first new call, then asks the switch in the background: nothing
  // the switch does (unreachable, wedged) keeps the call port or the status port shut.
  const recovery = recoverOpenCalls({ store, zammad, config, log: log.child({ component: 'recovery' }) });

  const calls = takeCalls(config, { sink: zammad, metrics, log });
  const esl = await calls.listen();
  const shown = zammad.status().filter((e) => e.configured);
  log.info('listening for FreeSWITCH', {
    host: esl.host,
    port: esl.port,
    zammad: soleDefault(shown)?.url ?? shown.map((e) => `${e.name} ${e.url ?? ''}`).join(', '),
  });

  const readiness = (): Readiness => {
    const endpoints = zammad.status();
    const configured = endpoints.filter((e) => e.configured);
    const bad = configured.filter((e) => !e.ok);
    const single = soleDefault(configured);
    const checks: Readiness['checks'] = {
      listener: { ok: calls.listening },
      // One endpoint: its own state, unnamed. Several: which of them are not ready.
      zammad: single
        ? { ok: single.ok, detail: single.detail }
        : {
            ok: bad.length === 0,
            detail:
              configured.length === 0
                ? 'no endpoint configured'
                : bad.length === 0
                  ? `${configured.length} endpoints ready`
                  : `not ready: ${bad.map((e) => `${e.name} (${e.detail})`).join('; ')}`,
          },
      backlog: { ok: zammad.depth < config.READY_MAX_BACKLOG, detail: `${zammad.depth} events waiting` },
      // The disk's own check: a disk fault is never shown as Zammad's.
      outbox: store.failure
        ? {
            ok: false,
            detail:
              `cannot write ${config.OUTBOX_PATH} (${store.failure.message}): ` +
              'events are delivered from memory, a crash would lose them',
          }
        : { ok: true, detail: `writes to ${config.OUTBOX_PATH}` },
      // Not ready while refusing calls for overload: a balancer or the HA gate's next entry takes them.
      load: calls.load.readiness(),
      // Shown, never failing: new calls are taken and reported whatever the switch's inbound socket does.
      recovery: { ok: true, detail: recovery.detail },
    };
    if (!single) for (const e of endpoints) checks[`zammad:${e.name}`] = { ok: e.ok, detail: e.detail };
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  };
  const status = new StatusServer(metrics, readiness, () => {
    calls.load.refresh();
    const unstored = store.unstoredByEndpoint();
    for (const e of zammad.status()) {
      metrics.outboxUnstored.set({ endpoint: e.name }, unstored.get(e.name) ?? 0);
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
    return reportUnsaved(store.close(), config.OUTBOX_PATH, log.child({ component: 'outbox' }));
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
      let next: Endpoint[];
      try {
        next = configuredEndpoints(config);
      } catch (err) {
        const why = err instanceof EndpointsFileError ? err.problems.join('; ') : String(err);
        log.error('SIGHUP: the endpoints file is not usable; keeping the endpoints in use', {
          file: config.ZAMMAD_ENDPOINTS_FILE,
          problems: why,
        });
        return false;
      }
      const { added, changed, removed } = zammad.reload(next);
      log.info('SIGHUP: endpoints read again', {
        endpoints: next.map((e) => e.name).join(','),
        added: added.join(','),
        changed: changed.join(','),
        removed: removed.join(','),
      });
      return true;
    },
    async shutdown(drainMs) {
      const deadline = Date.now() + drainMs;
      const inProgress = await calls.stopAccepting();
      log.info('stopped taking new calls; following the calls in progress', { calls: inProgress, drainMs });
      const callsLeft = await calls.drain(deadline);
      const flushed = await zammad.drain(Math.max(0, deadline - Date.now()));
      const eventsLeft = zammad.depth;
      let inMemory = 0;
      for (const n of store.unstoredByEndpoint().values()) inMemory += n;
      if (!flushed && eventsLeft > inMemory)
        log.warn('events not yet delivered stay in the outbox for the next start', { events: eventsLeft - inMemory });
      const unsaved = await closeAll();
      return { callsLeft, eventsLeft, unsaved };
    },
    abort() {
      recovery.stop();
      calls.abort();
      zammad.close();
      reportUnsaved(store.close(), config.OUTBOX_PATH, log.child({ component: 'outbox' }));
    },
  };
}
