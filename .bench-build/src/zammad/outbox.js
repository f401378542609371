import { formBody } from './form.js';
import { atMostOnce, verdictOf } from './verdict.js';
/** Calls whose newCall was dropped: their later events would only earn a 500 for ever. */
const FORGET_LIMIT = 10_000;
export class Outbox {
    store;
    poster;
    options;
    log;
    hooks;
    now;
    lanes = new Map();
    ready = [];
    parked = new Set();
    forgotten = new Map();
    inFlight = 0;
    size = 0;
    fault;
    faultSince = 0;
    probeDelay = 0;
    probeTimer;
    sweepTimer;
    closed = false;
    idleWaiters = new Set();
    /** Last answer from Zammad, for readiness: true = it answered 2xx, false = unreachable. */
    reachable;
    backlogLimit;
    /** Why nothing is sent (the endpoint left the endpoints file), while it lasts. */
    held;
    /** Lanes whose next event is not on disk yet: they go once its commit is done. */
    uncommitted = new Set();
    /** The disk refuses writes (full, I/O error): logged once, until a commit passes again. */
    storeFault;
    constructor(store, poster, options, log, hooks = {}, now = Date.now) {
        this.store = store;
        this.poster = poster;
        this.options = options;
        this.log = log;
        this.hooks = hooks;
        this.now = now;
        const reserve = options.reserve ?? (options.concurrency >= 2 ? Math.max(1, Math.floor(options.concurrency / 4)) : 0);
        this.backlogLimit = Math.max(1, options.concurrency - reserve);
        this.sweepTimer = setInterval(() => this.sweep(), Math.min(60_000, Math.max(1000, options.maxAgeMs / 10)));
        this.sweepTimer.unref();
        store.onCommit((error, unstored) => this.committed(error, unstored));
    }
    /** Picks up what an earlier run left on disk. */
    restore() {
        const rows = this.store.pending();
        let restored = 0;
        for (const row of rows) {
            const once = atMostOnce(row.event, row.body);
            if (once && row.sent) {
                // The earlier run stopped while this hangup was on its way: Zammad may have it.
                this.log.warn('not sending again a hangup that was on its way to Zammad when the adapter stopped: a second one would mark a missed call done', { callId: row.callId, event: row.event });
                this.hooks.dropped?.('unconfirmed', 1);
                this.store.remove(row.id);
                continue;
            }
            this.lane(row.callId).items.push({ id: row.id, callId: row.callId, event: row.event, body: row.body, createdAt: row.createdAt, attempts: 0, once, sent: false });
            restored++;
        }
        this.size += restored;
        if (restored > 0 && this.held !== undefined) {
            this.log.warn(`events left from an earlier run kept, not sent: ${this.held}`, { events: restored, calls: this.lanes.size });
            this.hooks.held?.(restored);
        }
        else if (restored > 0)
            this.log.info('delivering events left from an earlier run', { events: restored, calls: this.lanes.size });
        this.sweep();
        for (const lane of this.lanes.values())
            this.schedule(lane);
        return restored;
    }
    /**
     * Stores the event, then delivers it in its call's order. Settles when Zammad has it or it is
     * dropped. `early` hears of a configuration fault (wrong token, integration off) the moment
     * Zammad reports it, while the event waits in the outbox until the fault is mended: a ringing
     * caller need not wait for an answer that will not come.
     */
    send(post, early) {
        if (this.closed) {
            this.log.error('event after the outbox was closed: not stored', { callId: post.callId, event: post.event });
            return Promise.resolve({ kind: 'retry', reason: 'outbox closed' });
        }
        const forgotten = this.forgotten.get(post.callId);
        if (forgotten !== undefined && post.event !== 'newCall') {
            this.log.error('dropping an event of a call whose newCall was dropped: Zammad would refuse it', { callId: post.callId, event: post.event, because: forgotten });
            this.hooks.dropped?.(forgotten, 1);
            return Promise.resolve({ kind: 'refused', reason: `the call's newCall was dropped (${forgotten})` });
        }
        if (this.size >= this.options.maxEvents)
            this.dropOldestCall();
        const createdAt = this.now();
        const body = formBody(post);
        // The journal takes its fields from the post itself, not from the body.
        const id = this.store.add(post, body, createdAt);
        this.size++;
        if (this.held !== undefined) {
            this.hooks.held?.(1);
            const lane = this.lane(post.callId);
            if (!lane.heldLogged)
                this.log.warn(`event kept, not sent: ${this.held}`, { callId: post.callId, event: post.event });
            lane.heldLogged = true;
        }
        return new Promise((settle) => {
            const lane = this.lane(post.callId);
            lane.items.push({ id, callId: post.callId, event: post.event, body, createdAt, attempts: 0, once: atMostOnce(post.event, body), sent: false, settle, ...(early ? { early } : {}) });
            this.schedule(lane);
        });
    }
    get depth() {
        return this.size;
    }
    oldestAgeMs() {
        let oldest = Infinity;
        for (const lane of this.lanes.values())
            oldest = Math.min(oldest, lane.items[0]?.createdAt ?? Infinity);
        return oldest === Infinity ? 0 : this.now() - oldest;
    }
    /** A configuration fault Zammad reported (wrong token, integration off), while it lasts. */
    get configFault() {
        return this.fault;
    }
    get zammadReachable() {
        return this.reachable;
    }
    /** Why this outbox sends nothing (suspend()), or undefined. */
    get suspended() {
        return this.held;
    }
    /**
     * The endpoint is gone from the configuration: its events stay on disk and in their lanes,
     * counted, and nothing is sent — never to another endpoint — until resume() or the age bound
     * (sweep) drops them. A ringing caller waiting for a decision from it goes on at once.
     */
    suspend(reason) {
        if (this.held !== undefined)
            return;
        this.held = reason;
        clearTimeout(this.probeTimer);
        this.probeTimer = undefined;
        for (const lane of this.ready.splice(0)) {
            lane.queued = false;
            this.park(lane);
        }
        for (const lane of this.lanes.values()) {
            const head = lane.items[0];
            if (head?.early) {
                head.early({ kind: 'configFault', reason });
                delete head.early;
            }
        }
        if (this.size > 0)
            this.log.warn(`events kept, not sent: ${reason}`, { events: this.size, calls: this.lanes.size });
    }
    /** The endpoint is configured again (perhaps at another URL): what waited goes out, in order. */
    resume(poster) {
        this.poster = poster;
        if (this.held === undefined)
            return;
        this.held = undefined;
        this.reachable = undefined;
        if (this.size > 0)
            this.log.info('endpoint configured again: delivering the events kept for it', { events: this.size });
        for (const lane of this.lanes.values())
            lane.heldLogged = false;
        this.unpark();
    }
    /** The endpoint's URL changed (a new token): the next requests use the new one; those in flight finish on the old. */
    usePoster(poster) {
        this.poster = poster;
        this.reachable = undefined;
        // A fault of the old URL (401 for a revoked token) says nothing about the new one.
        if (this.fault !== undefined)
            this.unpark();
    }
    /** Resolves true once nothing is pending, false if that takes longer than timeoutMs. */
    drain(timeoutMs) {
        if (this.size === 0)
            return Promise.resolve(true);
        return new Promise((resolve) => {
            const done = () => {
                clearTimeout(timer);
                this.idleWaiters.delete(done);
                resolve(true);
            };
            const timer = setTimeout(() => {
                this.idleWaiters.delete(done);
                resolve(false);
            }, timeoutMs);
            this.idleWaiters.add(done);
        });
    }
    close() {
        this.closed = true;
        clearInterval(this.sweepTimer);
        clearTimeout(this.probeTimer);
        for (const lane of this.lanes.values())
            clearTimeout(lane.timer);
    }
    /** Drops calls whose events waited longer than OUTBOX_MAX_AGE_HOURS: logged and counted, never silent. Runs on a timer. */
    sweep() {
        const limit = this.now() - this.options.maxAgeMs;
        for (const lane of [...this.lanes.values()]) {
            const head = lane.items[0];
            if (!head || lane.busy || head.createdAt >= limit)
                continue;
            this.log.error('dropping events older than OUTBOX_MAX_AGE_HOURS', { callId: lane.callId, events: lane.items.length, ageMs: this.now() - head.createdAt });
            this.hooks.dropped?.('age', lane.items.length);
            this.dropLane(lane, 'age');
        }
    }
    lane(callId) {
        let lane = this.lanes.get(callId);
        if (!lane) {
            lane = { callId, items: [], busy: false, queued: false, parked: false, warned: false };
            this.lanes.set(callId, lane);
        }
        return lane;
    }
    /** A caller is ringing and the switch may be waiting for this: a newCall on its first try. */
    urgent(lane) {
        const head = lane.items[0];
        return head !== undefined && head.event === 'newCall' && head.attempts === 0 && head.settle !== undefined;
    }
    schedule(lane) {
        if (this.closed || lane.busy || lane.queued || lane.parked || lane.timer || lane.items.length === 0)
            return;
        if (this.held !== undefined)
            return this.park(lane);
        if (!this.onDisk(lane))
            return;
        const urgent = this.urgent(lane);
        if (this.fault !== undefined && !urgent)
            return this.park(lane);
        if (this.inFlight >= (urgent ? this.options.concurrency : this.backlogLimit)) {
            lane.queued = true;
            // A fresh newCall holds a ringing caller: it goes before any backlog.
            if (urgent)
                this.ready.splice(this.ready.findIndex((l) => !this.urgent(l)) >>> 0, 0, lane);
            else
                this.ready.push(lane);
            return;
        }
        void this.run(lane);
    }
    next() {
        while (this.ready.length > 0) {
            const lane = this.ready[0];
            if (!lane)
                break;
            if (this.inFlight >= (this.urgent(lane) ? this.options.concurrency : this.backlogLimit))
                break;
            this.ready.shift();
            lane.queued = false;
            this.schedule(lane);
        }
    }
    async run(lane) {
        const item = lane.items[0];
        if (!item || !this.onDisk(lane))
            return;
        lane.busy = true;
        this.inFlight++;
        const started = performance.now();
        const onSend = item.once
            ? () => {
                // On disk before the first byte leaves: after a crash, this hangup is not sent again.
                // Committed at once (not with the turn's group); if that fails it throws, and the client
                // does not send (client.ts onConnect).
                this.store.markSent(item.id, true);
                item.sent = true;
            }
            : undefined;
        const outcome = await this.poster.post(item.body, this.options.requestTimeoutMs, onSend);
        const verdict = verdictOf(item.event, outcome, { atMostOnce: item.once });
        this.inFlight--;
        lane.busy = false;
        this.hooks.posted?.(item.event, outcome.kind === 'response' ? String(outcome.status) : outcome.code, (performance.now() - started) / 1000);
        if (!this.closed) {
            if (item.sent && (verdict.kind === 'retry' || verdict.kind === 'configFault')) {
                // Zammad provably did not take it: the next try is not a repeat.
                this.store.markSent(item.id, false);
                item.sent = false;
            }
            this.handle(lane, item, verdict);
        }
        this.next();
    }
    handle(lane, item, verdict) {
        const log = this.log.child({ callId: item.callId, event: item.event });
        switch (verdict.kind) {
            case 'delivered':
                this.reachable = true;
                if (this.fault !== undefined)
                    this.clearFault();
                if (lane.warned)
                    log.info('delivered to Zammad after retrying', { attempts: item.attempts + 1 });
                lane.warned = false;
                this.done(lane, item, verdict);
                break;
            case 'retry': {
                this.reachable = false;
                item.attempts++;
                const delay = this.backoff(item.attempts);
                if (!lane.warned)
                    log.warn('Zammad did not take the event; it stays in the outbox and is retried', { reason: verdict.reason, retryInMs: Math.round(delay) });
                lane.warned = true;
                lane.timer = setTimeout(() => {
                    lane.timer = undefined;
                    this.schedule(lane);
                }, delay);
                break;
            }
            case 'configFault':
                this.reachable = true;
                item.attempts++;
                item.early?.(verdict);
                delete item.early;
                this.setFault(verdict.reason);
                this.park(lane);
                break;
            case 'unconfirmed':
                this.reachable = false;
                log.warn('no confirmation from Zammad for the hangup of a missed call; it is not sent again, because a second hangup would mark the call done. Zammad shows it missed, or ringing if the hangup was lost; either way not done', { reason: verdict.reason });
                this.hooks.dropped?.('unconfirmed', 1);
                lane.warned = false;
                this.done(lane, item, verdict);
                break;
            case 'refused': {
                this.reachable = true;
                log.error('Zammad refused the event; it cannot be delivered as it is and is dropped', { reason: verdict.reason });
                this.hooks.dropped?.('refused', 1);
                if (item.event !== 'newCall') {
                    this.done(lane, item, verdict);
                    break;
                }
                // Without its newCall, Zammad would answer 500 to the rest of this call for ever.
                if (lane.items.length > 1) {
                    log.error('dropping the rest of the call too: Zammad never stored its newCall', { events: lane.items.length - 1 });
                    this.hooks.dropped?.('refused', lane.items.length - 1);
                }
                // The newCall's own settle gets Zammad's reason; dropLane settles the rest.
                lane.items.shift();
                this.store.remove(item.id);
                this.size--;
                item.settle?.(verdict);
                this.dropLane(lane, 'refused');
                break;
            }
        }
    }
    done(lane, item, verdict) {
        this.store.remove(item.id);
        lane.items.shift();
        this.size--;
        item.settle?.(verdict);
        if (lane.items.length === 0) {
            this.lanes.delete(lane.callId);
            if (this.size === 0)
                for (const idle of [...this.idleWaiters])
                    idle();
        }
        else {
            this.schedule(lane);
        }
    }
    /** Whether the lane's next event is on disk; if not, the lane waits for the commit. */
    onDisk(lane) {
        const head = lane.items[0];
        if (!head || this.store.stored(head.id))
            return true;
        this.uncommitted.add(lane);
        return false;
    }
    /** The store committed a group (error undefined) or could not. */
    committed(error, unstored) {
        if (error) {
            if (this.closed) {
                this.log.error('could not write the last events to disk while stopping: they are lost', { events: unstored, error: error.message });
                return;
            }
            if (this.storeFault === undefined) {
                this.log.error('cannot write the outbox to disk: new events wait in memory and are not sent to Zammad until they are on disk (a crash would lose them); retrying', { events: unstored, error: error.message });
            }
            this.storeFault = error.message;
            // A ringing caller need not wait for a decision that cannot come before the disk works.
            const verdict = { kind: 'retry', reason: `the outbox cannot write to disk (${error.message})` };
            for (const lane of this.uncommitted) {
                for (const item of lane.items) {
                    if (this.store.stored(item.id) || !item.early)
                        continue;
                    item.early(verdict);
                    delete item.early;
                }
            }
            return;
        }
        if (this.storeFault !== undefined) {
            this.log.info('the outbox writes to disk again', { pending: this.size });
            this.storeFault = undefined;
        }
        const lanes = [...this.uncommitted];
        this.uncommitted.clear();
        for (const lane of lanes)
            this.schedule(lane);
    }
    backoff(attempt) {
        const ceiling = Math.min(this.options.retryMaxMs, this.options.retryBaseMs * 2 ** Math.min(attempt - 1, 20));
        return ceiling / 2 + Math.random() * (ceiling / 2); // "equal jitter"
    }
    setFault(reason) {
        if (this.fault === reason)
            return;
        const first = this.fault === undefined;
        this.fault = reason;
        if (first)
            this.faultSince = this.now();
        // One line for the fault, not one per event.
        this.log.error(`Zammad refuses all events: ${reason}. Events are kept and delivered once this is fixed.`);
        this.probeDelay = this.options.retryBaseMs;
        this.armProbe();
    }
    clearFault() {
        this.log.info('Zammad accepts events again', { faultLastedMs: this.now() - this.faultSince, pending: this.size });
        this.unpark();
    }
    /** Every parked lane goes back to the schedule (which parks it again while the endpoint is held). */
    unpark() {
        this.fault = undefined;
        clearTimeout(this.probeTimer);
        this.probeTimer = undefined;
        const lanes = [...this.parked];
        this.parked.clear();
        for (const lane of lanes) {
            lane.parked = false;
            this.schedule(lane);
        }
    }
    park(lane) {
        lane.parked = true;
        this.parked.add(lane);
        this.armProbe();
    }
    /** While Zammad refuses everything, one lane at a time asks again, less and less often. */
    armProbe() {
        if (this.probeTimer || this.closed || this.fault === undefined || this.held !== undefined)
            return;
        this.probeTimer = setTimeout(() => {
            this.probeTimer = undefined;
            this.probeDelay = Math.min(this.options.retryMaxMs, this.probeDelay * 2);
            const lane = this.parked.values().next().value;
            if (!lane)
                return this.armProbe();
            this.parked.delete(lane);
            lane.parked = false;
            if (this.inFlight >= this.backlogLimit) {
                this.park(lane);
                return;
            }
            void this.run(lane);
            this.armProbe();
        }, this.probeDelay);
        this.probeTimer.unref();
    }
    dropLane(lane, reason) {
        clearTimeout(lane.timer);
        if (lane.items.some((i) => i.event === 'newCall') || reason === 'refused')
            this.forget(lane.callId, reason);
        for (const item of lane.items) {
            this.store.remove(item.id);
            item.settle?.({ kind: 'refused', reason });
        }
        this.size -= lane.items.length;
        lane.items = [];
        this.parked.delete(lane);
        this.uncommitted.delete(lane);
        const queued = this.ready.indexOf(lane);
        if (queued >= 0)
            this.ready.splice(queued, 1);
        lane.queued = false;
        this.lanes.delete(lane.callId);
        if (this.size === 0)
            for (const idle of [...this.idleWaiters])
                idle();
    }
    /** Zammad will never have this call: later events of it are dropped at once, and a restart does not close it. */
    forget(callId, reason) {
        this.forgotten.set(callId, reason);
        if (this.forgotten.size > FORGET_LIMIT)
            this.forgotten.delete(this.forgotten.keys().next().value ?? '');
        this.store.callEnded(callId);
    }
    dropOldestCall() {
        let oldest;
        for (const lane of this.lanes.values()) {
            if (!lane.busy) {
                oldest = lane;
                break;
            }
        }
        if (!oldest)
            return;
        this.log.error('outbox full (OUTBOX_MAX_EVENTS): dropping the oldest call', { callId: oldest.callId, events: oldest.items.length });
        this.hooks.dropped?.('full', oldest.items.length);
        this.dropLane(oldest, 'full');
    }
}
//# sourceMappingURL=outbox.js.map