/**
 * Entry point: environment → config → logger → app; SIGTERM/SIGINT drain, a second signal exits at once.
 * With WORKERS > 1 this process is the cluster primary, and each worker runs this file too.
 */
import 'dotenv/config';
import { ConfigError, loadConfig } from './process/config.js';
import { configuredEndpoints } from './process/endpoints.js';
import { EndpointsFileError, type Endpoint } from './zammad/endpoints-file.js';
import { tokenOf } from './zammad/endpoint-url.js';
import { createLogger } from './process/log.js';
import cluster from 'node:cluster';
import { startApp, type App } from './process/app.js';
import { clusterFront } from './process/cluster-primary.js';
import { runWorker } from './process/cluster-worker.js';

async function main(): Promise<void> {
  let config;
  // Read once, here: a bad endpoints file stops the start with every problem named. Not in a
  // worker: the file may have changed since the primary read it (SIGHUP keeps the old set when
  // it is bad), and the primary hands it the routes (cluster-worker.ts).
  let endpoints: Endpoint[] = [];
  try {
    config = loadConfig(process.env);
    if (!cluster.isWorker) endpoints = configuredEndpoints(config);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof EndpointsFileError) {
      process.stderr.write(`${err.message}\nSee .env.example and the README's configuration table.\n`);
      process.exit(2);
    }
    throw err;
  }
  const worker = config.WORKERS > 1 && cluster.isWorker ? cluster.worker : undefined;
  // Grows with every endpoint's token (app.ts): the logger redacts all of them.
  const secrets = [config.zammadToken, ...endpoints.map((e) => tokenOf(e.url))];
  const root = createLogger({ level: config.LOG_LEVEL, format: config.LOG_FORMAT, secrets });
  const log = worker ? root.child({ worker: worker.id }) : root;
  process.on('uncaughtException', (err) => {
    log.error('uncaught exception: exiting (undelivered events stay in the outbox)', { error: err.stack ?? String(err) });
    process.exit(1);
  });

  if (worker) {
    // Takes calls for the primary; it handles the signals (process/cluster-worker.ts).
    runWorker(config, log);
    return;
  }

  // Signals are handled from the start: one that arrives while the app starts drains it once it is up.
  let app: App | undefined;
  let stopping: string | undefined;
  const stop = (signal: string) => {
    if (stopping) {
      log.warn(`${signal} again: exiting now; undelivered events stay in the outbox`);
      app?.abort();
      process.exit(1);
    }
    stopping = signal;
    if (app) drain(app, signal);
  };
  const drain = (running: App, signal: string) => {
    log.info(`${signal}: draining`, { drainMs: config.SHUTDOWN_DRAIN_MS });
    running.shutdown(config.SHUTDOWN_DRAIN_MS).then(
      ({ callsLeft, eventsLeft }) => {
        log.info('stopped', { callsLeft, eventsLeft });
        process.exit(0);
      },
      (err: unknown) => {
        log.error('shutdown failed: exiting (undelivered events stay in the outbox)', { error: err instanceof Error ? err.message : String(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // Re-reads ZAMMAD_ENDPOINTS_FILE; calls in progress go on (app.ts reload()).
  process.on('SIGHUP', () => {
    if (app && !stopping) app.reload();
  });

  try {
    app = await startApp(config, log, endpoints, secrets, config.WORKERS > 1 ? clusterFront : undefined);
  } catch (err) {
    log.error('cannot start', { error: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  }
  if (stopping) drain(app, stopping);
}

void main();
