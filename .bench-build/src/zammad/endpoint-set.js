import { ZammadClient } from './client.js';
import { DEFAULT_ENDPOINT } from './endpoints-file.js';
import { safeUrl, tokenOf } from './endpoint-url.js';
import { Outbox } from './outbox.js';
import { routeOf, routeTable } from './routing.js';
/** One line per domain (or unknown name) and hour, not one per call. */
const UNROUTED_LOG_EVERY_MS = 3_600_000;
const UNROUTED_LOG_KEYS = 10_000;
const notConfigured = (name) => `endpoint "${name}" is not in the configuration (ZAMMAD_ENDPOINTS_FILE / ZAMMAD_CTI_URL)`;
/** Never asked: an outbox is given it only while suspended. */
const NOWHERE = { post: () => Promise.resolve({ kind: 'failure', code: 'NOT_CONFIGURED', error: 'endpoint not configured', sent: false }) };
export class EndpointSet {
    store;
    options;
    log;
    hooks;
    secrets;
    now;
    members = new Map();
    table = routeTable([]);
    unroutedLogged = new Map();
    constructor(store, options, log, hooks = {}, 
    /** Append-only list the logger redacts (log.ts): every token configured is added. */
    secrets = [], now = Date.now) {
        this.store = store;
        this.options = options;
        this.log = log;
        this.hooks = hooks;
        this.secrets = secrets;
        this.now = now;
    }
    /** The first configuration, then what an earlier run left on disk — also for endpoints no longer configured. */
    start(endpoints) {
        this.apply(endpoints);
        for (const name of this.store.endpoints())
            this.member(name);
        let restored = 0;
        for (const member of this.members.values())
            restored += member.outbox.restore();
        return restored;
    }
    /** A new configuration (SIGHUP): new endpoints start, changed URLs apply to the next request, removed ones hold their events. */
    reload(endpoints) {
        return this.apply(endpoints);
    }
    /** Where a call's events go; decided once per call. A call that has nowhere to go is logged (throttled) and counted. */
    route(hints) {
        const route = routeOf(this.table, hints);
        if (route.kind === 'none')
            this.noteUnrouted(route);
        return route;
    }
    /** The route table without URLs (for a process that only needs to route). */
    get routes() {
        return this.table;
    }
    send(endpoint, post, early) {
        return this.member(endpoint).outbox.send(post, early);
    }
    get depth() {
        let n = 0;
        for (const m of this.members.values())
            n += m.outbox.depth;
        return n;
    }
    oldestAgeMs() {
        let oldest = 0;
        for (const m of this.members.values())
            oldest = Math.max(oldest, m.outbox.oldestAgeMs());
        return oldest;
    }
    status() {
        return [...this.members].map(([name, m]) => {
            const events = m.outbox.depth;
            const fault = m.client ? m.outbox.configFault : undefined;
            const base = { name, configured: m.client !== undefined, ...(m.url !== undefined ? { url: safeUrl(m.url) } : {}), events, oldestAgeMs: m.outbox.oldestAgeMs(), configFault: fault !== undefined };
            if (!m.client)
                return { ...base, ok: true, detail: `not configured: ${events} events kept until it is again or OUTBOX_MAX_AGE_HOURS drops them` };
            if (fault)
                return { ...base, ok: false, detail: fault };
            const reachable = m.outbox.zammadReachable;
            if (reachable === false)
                return { ...base, ok: false, detail: 'Zammad did not answer the last request' };
            return { ...base, ok: true, detail: reachable === undefined ? 'no request yet' : 'answered' };
        });
    }
    /** Resolves true once no configured endpoint has events waiting, false after timeoutMs. Held events stay on disk. */
    async drain(timeoutMs) {
        const results = await Promise.all([...this.members.values()].filter((m) => m.client).map((m) => m.outbox.drain(timeoutMs)));
        return results.every(Boolean);
    }
    close() {
        for (const m of this.members.values())
            m.outbox.close();
    }
    async destroy() {
        this.close();
        await Promise.allSettled([...this.members.values()].map((m) => m.client?.destroy()));
    }
    apply(endpoints) {
        const added = [];
        const changed = [];
        const removed = [];
        const wanted = new Map(endpoints.map((e) => [e.name, e]));
        for (const e of endpoints) {
            const token = tokenOf(e.url);
            if (!this.secrets.includes(token))
                this.secrets.push(token);
            const m = this.members.get(e.name);
            if (m?.url === e.url)
                continue;
            const client = new ZammadClient({ url: e.url, maxConnections: this.options.outbox.concurrency, maxReplyBytes: this.options.maxReplyBytes });
            if (!m) {
                this.members.set(e.name, { outbox: this.outbox(e.name, client), client, url: e.url });
                added.push(e.name);
                continue;
            }
            const old = m.client;
            if (old)
                m.outbox.usePoster(client);
            else
                m.outbox.resume(client);
            m.client = client;
            m.url = e.url;
            (old ? changed : added).push(e.name);
            // Requests in flight finish on the old pool; then it closes.
            void old?.close().catch(() => { });
        }
        for (const [name, m] of this.members) {
            if (wanted.has(name) || !m.client)
                continue;
            m.outbox.suspend(notConfigured(name));
            void m.client.close().catch(() => { });
            delete m.client;
            delete m.url;
            removed.push(name);
        }
        this.table = routeTable(endpoints);
        return { added, changed, removed };
    }
    /** The endpoint's member; one not configured gets a held outbox, so its events are kept, never sent elsewhere. */
    member(name) {
        let m = this.members.get(name);
        if (!m) {
            m = { outbox: this.outbox(name, NOWHERE) };
            m.outbox.suspend(notConfigured(name));
            this.members.set(name, m);
        }
        return m;
    }
    outbox(name, poster) {
        return new Outbox(this.store.scoped(name), poster, this.options.outbox, this.log.child({ endpoint: name }), {
            posted: (event, result, seconds) => this.hooks.posted?.(name, event, result, seconds),
            dropped: (reason, events) => this.hooks.dropped?.(name, reason, events),
            held: (events) => this.hooks.held?.(name, events),
        }, this.now);
    }
    /** A call that goes to no Zammad: counted, and logged once per domain (or unknown name) and hour. */
    noteUnrouted(route) {
        this.hooks.unrouted?.(route.why);
        const detail = route.detail.slice(0, 100);
        const key = `${route.why}\0${detail}`;
        const last = this.unroutedLogged.get(key);
        const now = this.now();
        if (last !== undefined && now - last < UNROUTED_LOG_EVERY_MS)
            return;
        if (this.unroutedLogged.size >= UNROUTED_LOG_KEYS)
            this.unroutedLogged.clear();
        this.unroutedLogged.set(key, now);
        if (route.why === 'unknown-endpoint') {
            this.log.error(`zammad_endpoint "${detail}" names no endpoint of ZAMMAD_ENDPOINTS_FILE: calls with it are not reported to Zammad (logged once an hour)`, { endpoint: detail });
        }
        else {
            this.log.warn(`no Zammad endpoint for ${detail ? `domain "${detail}"` : 'calls without domain_name'}: not reported to Zammad (add the domain to an endpoint in ZAMMAD_ENDPOINTS_FILE or set ZAMMAD_CTI_URL; logged once an hour)`, { domain: detail });
        }
    }
}
export { DEFAULT_ENDPOINT };
//# sourceMappingURL=endpoint-set.js.map