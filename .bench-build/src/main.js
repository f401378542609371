/** Entry point: environment → config → logger → app; SIGTERM/SIGINT drain, a second signal exits at once. */
import 'dotenv/config';
import { ConfigError, loadConfig } from './process/config.js';
import { configuredEndpoints } from './process/endpoints.js';
import { EndpointsFileError } from './zammad/endpoints-file.js';
import { createLogger } from './process/log.js';
import { startApp } from './process/app.js';
async function main() {
    let config;
    try {
        config = loadConfig(process.env);
        configuredEndpoints(config); // a bad endpoints file stops the start here, with every problem named
    }
    catch (err) {
        if (err instanceof ConfigError || err instanceof EndpointsFileError) {
            process.stderr.write(`${err.message}\nSee .env.example and the README's configuration table.\n`);
            process.exit(2);
        }
        throw err;
    }
    // Grows with every endpoint's token (app.ts): the logger redacts all of them.
    const secrets = [config.zammadToken];
    const log = createLogger({ level: config.LOG_LEVEL, format: config.LOG_FORMAT, secrets });
    process.on('uncaughtException', (err) => {
        log.error('uncaught exception: exiting (undelivered events stay in the outbox)', { error: err.stack ?? String(err) });
        process.exit(1);
    });
    // Signals are handled from the start: one that arrives while the app starts drains it once it is up.
    let app;
    let stopping;
    const stop = (signal) => {
        if (stopping) {
            log.warn(`${signal} again: exiting now; undelivered events stay in the outbox`);
            app?.abort();
            process.exit(1);
        }
        stopping = signal;
        if (app)
            drain(app, signal);
    };
    const drain = (running, signal) => {
        log.info(`${signal}: draining`, { drainMs: config.SHUTDOWN_DRAIN_MS });
        running.shutdown(config.SHUTDOWN_DRAIN_MS).then(({ callsLeft, eventsLeft }) => {
            log.info('stopped', { callsLeft, eventsLeft });
            process.exit(0);
        }, (err) => {
            log.error('shutdown failed: exiting (undelivered events stay in the outbox)', { error: err instanceof Error ? err.message : String(err) });
            process.exit(1);
        });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    // Re-reads ZAMMAD_ENDPOINTS_FILE; calls in progress go on (app.ts reload()).
    process.on('SIGHUP', () => {
        if (app && !stopping)
            app.reload();
    });
    try {
        app = await startApp(config, log, secrets);
    }
    catch (err) {
        log.error('cannot start', { error: err instanceof Error ? err.message : String(err) });
        process.exit(1);
    }
    if (stopping)
        drain(app, stopping);
}
void main();
//# sourceMappingURL=main.js.map