/** Entry point: environment → config → logger → app; SIGTERM/SIGINT drain, a second signal exits at once. */
import 'dotenv/config';
import { ConfigError, loadConfig, retiredVariables, type Config } from './process/config.js';
import { configuredEndpoints } from './process/endpoints.js';
import { EndpointsFileError, type Endpoint } from './zammad/endpoints-file.js';
import { tokenOf } from './zammad/endpoint-url.js';
import { createLogger } from './process/log.js';
import { startApp, type App } from './process/app.js';
import { OutboxOpenError } from './zammad/store-open.js';

async function main(): Promise<void> {
  let config: Config;
  let endpoints: Endpoint[];
  try {
    config = loadConfig(process.env);
    // A bad endpoints file stops the start here, with every problem named.
    endpoints = configuredEndpoints(config);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof EndpointsFileError) {
      process.stderr.write(`${err.message}\nSee .env.example and the README's configuration table.\n`);
      process.exit(2);
    }
    throw err;
  }
  // Grows with every endpoint's token (app.ts): the logger redacts all of them.
  const secrets = [config.zammadToken, ...endpoints.map((e) => tokenOf(e.url))];
  const log = createLogger({ level: config.LOG_LEVEL, format: config.LOG_FORMAT, secrets });
  for (const warning of retiredVariables(process.env)) log.warn(warning);
  process.on('uncaughtException', (err) => {
    log.error('uncaught exception: exiting (undelivered events stay in the outbox)', {
      error: err.stack ?? String(err),
    });
    process.exit(1);
  });

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
      ({ callsLeft, eventsLeft, unsaved }) => {
        // Events neither delivered nor stored (named in the log above): not a clean stop.
        if (unsaved > 0)
          log.error('stopped; events were lost to Zammad unless replayed', { callsLeft, eventsLeft, unsaved });
        else log.info('stopped', { callsLeft, eventsLeft });
        process.exit(unsaved > 0 ? 1 : 0);
      },
      (err: unknown) => {
        log.error('shutdown failed: exiting (undelivered events stay in the outbox)', {
          error: err instanceof Error ? err.message : String(err),
        });
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
    app = await startApp(config, log, endpoints, secrets);
  } catch (err) {
    if (err instanceof OutboxOpenError) {
      // Like a bad configuration: the operator must fix the file or OUTBOX_PATH.
      log.error(`cannot start: ${err.message}`, { path: err.path });
      process.exit(2);
    }
    log.error('cannot start', { error: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  }
  if (stopping) drain(app, stopping);
}

void main();
