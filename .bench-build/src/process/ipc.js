/**
 * The messages between the cluster primary and its workers (cluster-primary.ts, cluster-worker.ts),
 * as zod schemas: what crosses the process boundary is checked on arrival. Messages leave in
 * batches, one IPC message per event-loop turn and direction: a call's posts, claims and counts
 * made in one turn share one write and one JSON parse.
 */
import { z } from 'zod';
import { ZAMMAD_CAUSES } from '../call/causes.js';
const postBase = {
    callId: z.string().min(1),
    direction: z.enum(['in', 'out']),
    from: z.string(),
    to: z.string(),
    queue: z.string().optional(),
};
const CtiPostSchema = z.discriminatedUnion('event', [
    z.object({ event: z.literal('newCall'), ...postBase, users: z.array(z.string()) }),
    z.object({ event: z.literal('answer'), ...postBase, user: z.string().optional(), userId: z.string().optional(), answeringNumber: z.string() }),
    z.object({ event: z.literal('hangup'), ...postBase, cause: z.enum(ZAMMAD_CAUSES), answeringNumber: z.string().optional() }),
]);
const VerdictSchema = z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('delivered'), body: z.string(), note: z.string().optional() }),
    z.object({ kind: z.enum(['retry', 'configFault', 'refused', 'unconfirmed']), reason: z.string() }),
]);
const CountSchema = z.discriminatedUnion('op', [
    z.object({ op: z.literal('opened') }),
    z.object({ op: z.literal('closed'), reason: z.string() }),
    z.object({ op: z.literal('rejected') }),
    z.object({ op: z.literal('decided'), kind: z.string(), seconds: z.number().nonnegative(), endpoint: z.string() }),
    /** A call no endpoint takes (the primary logs it once per domain and hour). */
    z.object({ op: z.literal('unrouted'), why: z.enum(['unknown-endpoint', 'no-match']), detail: z.string() }),
    z.object({ op: z.literal('ended'), cause: z.string() }),
]);
const id = z.number().int().nonnegative();
export const ToPrimary = z.discriminatedUnion('t', [
    z.object({ t: z.literal('listening'), host: z.string(), port: z.number().int() }),
    z.object({ t: z.literal('failed'), error: z.string() }),
    z.object({ t: z.literal('send'), id, endpoint: z.string().min(1), post: CtiPostSchema, early: z.boolean() }),
    z.object({ t: z.literal('claim'), id, callId: z.string().min(1) }),
    z.object({ t: z.literal('release'), callId: z.string().min(1) }),
    z.object({ t: z.literal('count'), count: CountSchema }),
    /** Took no new calls since; `calls` were in progress then. */
    z.object({ t: z.literal('stopped'), calls: z.number().int().nonnegative() }),
    z.object({ t: z.literal('drained'), callsLeft: z.number().int().nonnegative() }),
]);
export const ToWorker = z.discriminatedUnion('t', [
    z.object({ t: z.literal('verdict'), id, verdict: VerdictSchema }),
    /** A configuration fault, told at once (outbox.ts send's `early`); the verdict follows later. */
    z.object({ t: z.literal('early'), id, verdict: VerdictSchema }),
    z.object({ t: z.literal('claimed'), id, granted: z.boolean() }),
    /** Stop taking calls, follow those in progress until `deadline` (epoch ms), then exit. */
    z.object({ t: z.literal('drain'), deadline: z.number() }),
    /** Where calls go from now on (SIGHUP read the endpoints file again): names and domains, no URL. */
    z.object({ t: z.literal('routes'), names: z.array(z.string()), domains: z.array(z.tuple([z.string(), z.string()])), hasDefault: z.boolean() }),
]);
// The schemas describe the product's own types, no more and no less.
const samePost = (p) => p;
const sameVerdict = (v) => v;
void samePost;
void sameVerdict;
/** The environment variable a worker finds its first route table in (a `routes` message as JSON). */
export const ROUTES_ENV = 'CTI_WORKER_ROUTES';
/** A route table as it crosses the process boundary (Sets and Maps do not). */
export function tableMessage(table) {
    return { t: 'routes', names: [...table.names], domains: [...table.byDomain], hasDefault: table.hasDefault };
}
export function tableOf(m) {
    return { names: new Set(m.names), byDomain: new Map(m.domains), hasDefault: m.hasDefault };
}
/** The envelope: anything else on the channel (node's own, a library's) is not ours. */
const KEY = 'cti';
/**
 * The messages of the batch in `raw`, each checked on its own (one bad message costs only itself,
 * not the other calls' messages beside it), with what was wrong with the others; `undefined` if
 * `raw` is someone else's message.
 */
export function readBatch(schema, raw) {
    if (typeof raw !== 'object' || raw === null || !(KEY in raw))
        return undefined;
    const batch = raw[KEY];
    const messages = [];
    const errors = [];
    for (const item of Array.isArray(batch) ? batch : [batch]) {
        const parsed = schema.safeParse(item);
        if (parsed.success)
            messages.push(parsed.data);
        else
            errors.push(z.prettifyError(parsed.error));
    }
    return { messages, errors };
}
/**
 * Collects messages and sends them as one batch at the end of the event-loop turn
 * (setImmediate: after the I/O callbacks that produced them).
 */
export class Batcher {
    write;
    queue = [];
    scheduled = false;
    constructor(write) {
        this.write = write;
    }
    push(message) {
        this.queue.push(message);
        if (this.scheduled)
            return;
        this.scheduled = true;
        setImmediate(() => this.flush());
    }
    /** Sends what is queued now; `done` once it is written to the channel. */
    flush(done) {
        this.scheduled = false;
        if (this.queue.length === 0) {
            done?.();
            return;
        }
        const batch = this.queue;
        this.queue = [];
        this.write({ [KEY]: batch }, done);
    }
}
//# sourceMappingURL=ipc.js.map