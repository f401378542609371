/**
 * The cluster primary's side of call taking (WORKERS > 1): forks the workers (cluster-worker.ts),
 * which share the event-socket port, and serves them what must be one per adapter: the outbox
 * (their posts, with the verdicts back), the registry of followed calls, the metrics. app.ts
 * drives it like the single process's listener (calls.ts CallFront).
 *
 * A worker that dies (crash, SIGKILL) is replaced; the calls it followed (known from its claims)
 * are handed to recovery.ts as if the adapter had restarted: watched to their end through
 * FreeSWITCH's inbound socket if configured, else closed in Zammad with what is known.
 */
import cluster, {} from 'node:cluster';
import { Batcher, readBatch, ROUTES_ENV, tableMessage, ToPrimary } from './ipc.js';
import { callCountsOf } from '../status/metrics.js';
/** A worker that dies this soon after it started is restarted after a growing pause (crash loop). */
const QUICK_DEATH_MS = 5000;
const MAX_RESTART_PAUSE_MS = 5000;
/** After the drain deadline, how long a worker may take to close its calls and exit before it is killed. */
const EXIT_GRACE_MS = 5000;
export const clusterFront = (ctx) => {
    const { config, log, sink, metrics } = ctx;
    const counts = callCountsOf(metrics);
    const size = config.WORKERS;
    const slots = new Array(size).fill(undefined);
    const quickDeaths = new Array(size).fill(0);
    const restartTimers = new Set();
    const claims = new Map();
    const recoveries = new Set();
    let address;
    let stopping = false;
    let starting;
    /** Re-checked whenever a worker says something or exits (startup, stop, drain). */
    let changed = () => { };
    const reply = (m, message) => {
        if (!m.exited && m.worker.isConnected())
            m.out.push(message);
    };
    const fork = (slot) => {
        const worker = cluster.fork({ [ROUTES_ENV]: JSON.stringify(tableMessage(ctx.routes())) });
        const member = {
            slot,
            worker,
            startedAt: Date.now(),
            listening: false,
            exited: false,
            open: 0,
            claims: new Set(),
            out: new Batcher((batch, done) => {
                if (!worker.isConnected())
                    return done?.();
                worker.send(batch, undefined, () => done?.());
            }),
        };
        slots[slot] = member;
        worker.on('error', (err) => log.debug('IPC with a worker failed', { worker: worker.id, error: err.message }));
        worker.on('message', (raw) => onMessage(member, raw));
        worker.on('exit', (code, signal) => onExit(member, code, signal));
    };
    const onMessage = (m, raw) => {
        const batch = readBatch(ToPrimary, raw);
        if (batch === undefined)
            return;
        for (const error of batch.errors)
            log.error('unreadable message from a worker: ignored', { worker: m.worker.id, error });
        for (const msg of batch.messages) {
            switch (msg.t) {
                case 'send': {
                    const { id } = msg;
                    const early = msg.early ? (verdict) => reply(m, { t: 'early', id, verdict }) : undefined;
                    void sink.send(msg.endpoint, msg.post, early).then((verdict) => reply(m, { t: 'verdict', id, verdict }));
                    break;
                }
                case 'claim': {
                    const granted = !claims.has(msg.callId);
                    if (granted) {
                        claims.set(msg.callId, m);
                        m.claims.add(msg.callId);
                    }
                    reply(m, { t: 'claimed', id: msg.id, granted });
                    break;
                }
                case 'release':
                    if (claims.get(msg.callId) === m)
                        claims.delete(msg.callId);
                    m.claims.delete(msg.callId);
                    break;
                case 'count': {
                    const c = msg.count;
                    if (c.op === 'opened') {
                        m.open++;
                        counts.opened();
                    }
                    else if (c.op === 'closed') {
                        m.open--;
                        counts.closed(c.reason);
                    }
                    else if (c.op === 'rejected')
                        counts.rejected();
                    else if (c.op === 'decided')
                        counts.decided(c.kind, c.seconds, c.endpoint);
                    else if (c.op === 'unrouted')
                        ctx.unrouted({ kind: 'none', why: c.why, detail: c.detail });
                    else
                        counts.ended(c.cause);
                    break;
                }
                case 'listening':
                    m.listening = true;
                    quickDeaths[m.slot] = 0;
                    address ??= { host: msg.host, port: msg.port };
                    if (!starting)
                        log.info('a replacement worker takes calls', { worker: m.worker.id, pid: m.worker.process.pid });
                    changed();
                    break;
                case 'failed':
                    log.error('a worker cannot listen for FreeSWITCH', { worker: m.worker.id, error: msg.error });
                    starting?.reject(new Error(msg.error));
                    break;
                case 'stopped':
                    m.listening = false;
                    m.stoppedCalls = msg.calls;
                    changed();
                    break;
                case 'drained':
                    m.drainedLeft = msg.callsLeft;
                    changed();
                    break;
            }
        }
    };
    const onExit = (m, code, signal) => {
        m.exited = true;
        m.listening = false;
        // Its connections are gone with it (the calls go on in the switch).
        if (m.open > 0)
            metrics.callsInProgress.dec(m.open);
        m.open = 0;
        const orphans = new Set(m.claims);
        for (const id of orphans)
            if (claims.get(id) === m)
                claims.delete(id);
        const fields = { worker: m.worker.id, pid: m.worker.process.pid, code, signal };
        if (stopping) {
            if (m.drainedLeft === undefined) {
                log.warn('a worker ended before it had drained: its calls are left to the next start', { ...fields, calls: orphans.size });
                m.drainedLeft = orphans.size;
            }
            changed();
            return;
        }
        if (starting) {
            starting.reject(new Error(`worker ${m.worker.id} ended before it listened (code ${code}, signal ${signal})`));
            return;
        }
        log.error('a worker ended: starting a replacement; its calls are closed in Zammad or watched, as after a restart', { ...fields, calls: orphans.size });
        if (orphans.size > 0) {
            ctx.recover(orphans).then((recovery) => {
                if (stopping)
                    recovery.stop();
                else if (recovery.watching > 0)
                    recoveries.add(recovery);
            }, (err) => log.error('recovery of a worker\'s calls failed: they stay in the journal for the next start', { error: String(err) }));
        }
        const quick = Date.now() - m.startedAt < QUICK_DEATH_MS;
        const deaths = (quickDeaths[m.slot] = quick ? (quickDeaths[m.slot] ?? 0) + 1 : 0);
        const pause = deaths === 0 ? 0 : Math.min(MAX_RESTART_PAUSE_MS, 100 * 2 ** (deaths - 1));
        const timer = setTimeout(() => {
            restartTimers.delete(timer);
            if (!stopping)
                fork(m.slot);
        }, pause);
        restartTimers.add(timer);
        changed();
    };
    const live = () => slots.filter((m) => m !== undefined && !m.exited);
    /** Resolves once `done()` holds, checked whenever a worker reports or exits. */
    const until = (done) => new Promise((resolve) => {
        const check = () => {
            if (!done())
                return;
            changed = () => { };
            resolve();
        };
        changed = check;
        check();
    });
    const stopRecoveries = () => {
        for (const r of recoveries)
            r.stop();
        recoveries.clear();
    };
    return {
        async listen() {
            const up = new Promise((resolve, reject) => (starting = { resolve, reject }));
            for (let slot = 0; slot < size; slot++)
                fork(slot);
            changed = () => {
                if (slots.every((m) => m?.listening))
                    starting?.resolve();
            };
            try {
                await up;
            }
            catch (err) {
                for (const m of live())
                    m.worker.process.kill('SIGKILL');
                throw err;
            }
            finally {
                starting = undefined;
                changed = () => { };
            }
            log.info('workers take calls', { workers: size, pids: Object.fromEntries(live().map((m) => [m.worker.id, m.worker.process.pid])) });
            return address;
        },
        listenerCheck() {
            if (stopping)
                return { ok: false, detail: 'stopping' };
            const down = slots
                .map((m, slot) => {
                if (m === undefined)
                    return `worker slot ${slot} is empty`;
                const who = `worker ${m.worker.id} (pid ${m.worker.process.pid})`;
                return m.exited ? `${who} ended; a replacement starts` : m.listening ? undefined : `${who} is not listening`;
            })
                .filter((d) => d !== undefined);
            return down.length === 0 ? { ok: true, detail: `${size} workers listening` } : { ok: false, detail: down.join('; ') };
        },
        async stopAccepting(deadline) {
            stopping = true;
            for (const t of restartTimers)
                clearTimeout(t);
            restartTimers.clear();
            const members = live();
            for (const m of members) {
                reply(m, { t: 'drain', deadline });
                m.out.flush();
            }
            await until(() => members.every((m) => m.exited || m.stoppedCalls !== undefined));
            return members.reduce((n, m) => n + (m.exited ? m.claims.size : (m.stoppedCalls ?? 0)), 0);
        },
        async drain(deadline) {
            const members = slots.filter((m) => m !== undefined);
            const kill = setTimeout(() => {
                for (const m of live()) {
                    log.warn('a worker did not finish its drain in time: killed', { worker: m.worker.id });
                    m.worker.process.kill('SIGKILL');
                }
            }, Math.max(0, deadline - Date.now()) + EXIT_GRACE_MS);
            await until(() => members.every((m) => m.exited || m.drainedLeft !== undefined));
            clearTimeout(kill);
            stopRecoveries();
            const left = members.reduce((n, m) => n + (m.drainedLeft ?? 0), 0);
            if (left > 0)
                log.warn('drain time over: leaving the calls still in progress to the next start', { calls: left });
            return left;
        },
        routesChanged(table) {
            for (const m of live())
                reply(m, tableMessage(table));
        },
        abort() {
            stopping = true;
            for (const t of restartTimers)
                clearTimeout(t);
            stopRecoveries();
            // The primary exits next; the workers follow at once when their IPC channel closes.
        },
    };
};
//# sourceMappingURL=cluster-primary.js.map