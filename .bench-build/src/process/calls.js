import { CallSession } from '../call/session.js';
import { EslListener } from '../switch/listener.js';
import { callCountsOf } from '../status/metrics.js';
export function takeCalls(config, deps) {
    const rules = {
        defaultCountryCode: config.DEFAULT_COUNTRY_CODE,
        extensionMaxDigits: config.EXTENSION_MAX_DIGITS,
        inboundContexts: config.INBOUND_CONTEXTS,
        defaultBridge: config.DEFAULT_BRIDGE,
    };
    const callLog = deps.log.child({ component: 'call' });
    const sessions = new Set();
    const { counts } = deps;
    const listener = new EslListener({
        host: config.ESL_HOST,
        port: config.ESL_PORT,
        allow: config.ESL_ALLOW,
        maxFrameBytes: config.ESL_MAX_FRAME_BYTES,
        handshakeTimeoutMs: config.ESL_IDLE_TIMEOUT_MS,
    }, (conn) => {
        counts.opened();
        conn.once('closed', (reason) => counts.closed(reason));
        const session = new CallSession(conn, {
            rules,
            zammad: deps.sink,
            log: callLog,
            newCallTimeoutMs: config.ZAMMAD_NEWCALL_TIMEOUT_MS,
            followed: deps.followed,
            metrics: { decided: counts.decided, ended: counts.ended },
        });
        const running = session.run().catch((err) => callLog.error('call session failed', { error: String(err) }));
        sessions.add(running);
        void running.finally(() => sessions.delete(running));
    }, deps.log.child({ component: 'esl' }), { rejected: () => counts.rejected() });
    return {
        listen: () => listener.listen(),
        get listening() {
            return listener.listening;
        },
        get connections() {
            return listener.connections;
        },
        stopAccepting: () => listener.stopAccepting(),
        async drain(deadline, over) {
            while (listener.connections > 0 && Date.now() < deadline)
                await new Promise((r) => setTimeout(r, 50));
            const left = listener.connections;
            if (left > 0) {
                over(left);
                listener.closeAll();
            }
            await Promise.allSettled([...sessions]);
            return left;
        },
        closeAll: () => listener.closeAll(),
    };
}
/** WORKERS=1: calls are taken in this process, as they always were. */
export const localFront = (ctx) => {
    const followedIds = new Set();
    const followed = {
        claim(id) {
            if (followedIds.has(id))
                return false;
            followedIds.add(id);
            return true;
        },
        release: (id) => void followedIds.delete(id),
    };
    const taker = takeCalls(ctx.config, { sink: ctx.sink, followed, counts: callCountsOf(ctx.metrics), log: ctx.log });
    return {
        listen: () => taker.listen(),
        listenerCheck: () => ({ ok: taker.listening }),
        async stopAccepting() {
            await taker.stopAccepting();
            return taker.connections;
        },
        drain: (deadline) => taker.drain(deadline, (calls) => ctx.log.warn('drain time over: leaving the calls still in progress to the next start', { calls })),
        abort: () => taker.closeAll(),
        // This process's sink is the EndpointSet itself: it routes by the new table already.
        routesChanged: () => { },
    };
};
//# sourceMappingURL=calls.js.map