/**
 * A cluster worker (WORKERS > 1): takes calls on the port it shares with the other workers, one
 * CallSession per connection, as the single process does. Everything durable or shared is the
 * primary's (cluster-primary.ts): posts go to its outbox, claims to its registry, counts to its
 * metrics, all over IPC (ipc.ts). Signals are the primary's to handle: it tells the worker when
 * to drain. Without the primary (it died) node's cluster module ends the worker at once; the
 * calls go on in the switch and the next start closes or re-attaches them (recovery.ts).
 */
import cluster from 'node:cluster';
import { takeCalls } from './calls.js';
import { Batcher, readBatch, ROUTES_ENV, tableOf, ToWorker } from './ipc.js';
import { routeOf, routeTable } from '../zammad/routing.js';
export function runWorker(config, log) {
    const initialRoutes = () => {
        const batch = readBatch(ToWorker, { cti: [JSON.parse(process.env[ROUTES_ENV] ?? 'null')] });
        const m = batch?.messages[0];
        if (m?.t === 'routes')
            return tableOf(m);
        log.error('no routes from the primary process: calls are not reported until it sends them', { errors: batch?.errors.join('; ') });
        return routeTable([]);
    };
    // A terminal's Ctrl-C reaches the whole process group; `docker stop` only PID 1. Either way the
    // primary decides, and tells each worker.
    process.on('SIGTERM', () => { });
    process.on('SIGINT', () => { });
    // SIGHUP re-reads the endpoints file in the primary, which sends the new routes.
    process.on('SIGHUP', () => { });
    const toPrimary = new Batcher((batch, done) => {
        if (!process.connected)
            return done?.();
        process.send(batch, undefined, {}, () => done?.());
    });
    const send = (m) => toPrimary.push(m);
    let nextId = 0;
    const verdicts = new Map();
    const claims = new Map();
    // Routing is decided here, where the call is (no round trip). The primary hands over its table
    // (names and domains, no URL) in the environment of the fork and sends every later version.
    let table = initialRoutes();
    const sink = {
        route(hints) {
            const route = routeOf(table, hints);
            if (route.kind === 'none')
                send({ t: 'count', count: { op: 'unrouted', why: route.why, detail: route.detail } });
            return route;
        },
        send(endpoint, post, early) {
            const id = nextId++;
            send({ t: 'send', id, endpoint, post, early: early !== undefined });
            return new Promise((settle) => verdicts.set(id, { settle, ...(early ? { early } : {}) }));
        },
    };
    const followed = {
        claim(callId) {
            const id = nextId++;
            send({ t: 'claim', id, callId });
            return new Promise((resolve) => claims.set(id, resolve));
        },
        release: (callId) => send({ t: 'release', callId }),
    };
    const counts = {
        opened: () => send({ t: 'count', count: { op: 'opened' } }),
        closed: (reason) => send({ t: 'count', count: { op: 'closed', reason } }),
        rejected: () => send({ t: 'count', count: { op: 'rejected' } }),
        decided: (kind, seconds, endpoint) => send({ t: 'count', count: { op: 'decided', kind, seconds, endpoint } }),
        ended: (cause) => send({ t: 'count', count: { op: 'ended', cause } }),
    };
    const taker = takeCalls(config, { sink, followed, counts, log });
    const listening = taker.listen().then((address) => {
        send({ t: 'listening', ...address });
        return true;
    }, (err) => {
        send({ t: 'failed', error: err instanceof Error ? err.message : String(err) });
        toPrimary.flush(() => process.exit(1));
        return false;
    });
    const drain = async (deadline) => {
        if (!(await listening))
            return;
        await taker.stopAccepting();
        send({ t: 'stopped', calls: taker.connections });
        const callsLeft = await taker.drain(deadline, (calls) => log.debug('drain time over in this worker', { calls }));
        send({ t: 'drained', callsLeft });
        // Exits once the last batch (the calls' last posts, then `drained`) is on the channel.
        toPrimary.flush(() => process.exit(0));
    };
    process.on('message', (raw) => {
        const batch = readBatch(ToWorker, raw);
        if (batch === undefined)
            return;
        for (const error of batch.errors)
            log.error('unreadable message from the primary process: ignored', { error });
        for (const m of batch.messages) {
            switch (m.t) {
                case 'verdict': {
                    const waiting = verdicts.get(m.id);
                    verdicts.delete(m.id);
                    waiting?.settle(m.verdict);
                    break;
                }
                case 'early':
                    verdicts.get(m.id)?.early?.(m.verdict);
                    break;
                case 'claimed': {
                    const waiting = claims.get(m.id);
                    claims.delete(m.id);
                    waiting?.(m.granted);
                    break;
                }
                case 'drain':
                    void drain(m.deadline);
                    break;
                case 'routes':
                    table = tableOf(m);
                    break;
            }
        }
    });
    cluster.worker?.on('disconnect', () => {
        if (!cluster.worker?.exitedAfterDisconnect)
            log.warn('the primary process is gone: this worker exits; its calls go on in the switch, the next start closes or re-attaches them');
    });
}
//# sourceMappingURL=cluster-worker.js.map