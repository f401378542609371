/**
 * Taking calls: the event-socket listener and one CallSession per connection. The same code runs
 * in the single process (WORKERS=1) and in each cluster worker; what differs is where the posts,
 * the claims and the counts go (this process, or the primary over IPC: cluster-worker.ts).
 */
import type { Config } from './config.js';
import type { Logger } from './log.js';
import type { Recovery } from './recovery.js';
import { CallSession, type FollowedCalls, type ZammadSink } from '../call/session.js';
import { EslListener } from '../switch/listener.js';
import { callCountsOf, type CallCounts, type Metrics } from '../status/metrics.js';
import type { Route, RouteTable } from '../zammad/routing.js';

/** Where a call's posts go: the endpoints' outboxes (zammad/endpoint-set.ts), or a proxy of them in a worker. */
export type CallSink = ZammadSink;

export interface CallTakerDeps {
  sink: CallSink;
  followed: FollowedCalls;
  counts: CallCounts;
  log: Logger;
}

export interface CallTaker {
  listen(): Promise<{ host: string; port: number }>;
  readonly listening: boolean;
  readonly connections: number;
  stopAccepting(): Promise<void>;
  /**
   * Follows the calls in progress until none is left or `deadline` (epoch ms); what is left then is
   * closed ('shutdown': the call goes on in the switch, the next start closes it in Zammad), after
   * `over(calls)`. Resolves, with how many were left, once every session has finished.
   */
  drain(deadline: number, over: (calls: number) => void): Promise<number>;
  closeAll(): void;
}

export function takeCalls(config: Config, deps: CallTakerDeps): CallTaker {
  const rules = {
    defaultCountryCode: config.DEFAULT_COUNTRY_CODE,
    extensionMaxDigits: config.EXTENSION_MAX_DIGITS,
    inboundContexts: config.INBOUND_CONTEXTS,
    defaultBridge: config.DEFAULT_BRIDGE,
  };
  const callLog = deps.log.child({ component: 'call' });
  const sessions = new Set<Promise<void>>();
  const { counts } = deps;
  const listener = new EslListener(
    {
      host: config.ESL_HOST,
      port: config.ESL_PORT,
      allow: config.ESL_ALLOW,
      maxFrameBytes: config.ESL_MAX_FRAME_BYTES,
      handshakeTimeoutMs: config.ESL_IDLE_TIMEOUT_MS,
    },
    (conn) => {
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
      const running = session.run().catch((err: unknown) => callLog.error('call session failed', { error: String(err) }));
      sessions.add(running);
      void running.finally(() => sessions.delete(running));
    },
    deps.log.child({ component: 'esl' }),
    { rejected: () => counts.rejected() },
  );
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
      while (listener.connections > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
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

/** What app.ts gives the call-taking side: the durable, shared parts live in app.ts's process. */
export interface FrontContext {
  config: Config;
  log: Logger;
  sink: CallSink;
  metrics: Metrics;
  /** Closes in Zammad, or watches to their end, the calls of `callIds` still open in the journal (recovery.ts). */
  recover(callIds: ReadonlySet<string>): Promise<Recovery>;
  /** The route table in force (names and domains): a new worker starts with it. */
  routes(): RouteTable;
  /** A worker's call that no endpoint takes: logged (once per domain and hour) and counted here. */
  unrouted(route: Extract<Route, { kind: 'none' }>): void;
}

/** The call-taking side as app.ts drives it: in this process, or in cluster workers (cluster-primary.ts). */
export interface CallFront {
  /** Resolves once calls are taken (every worker listens), with the one address they share. */
  listen(): Promise<{ host: string; port: number }>;
  /** For /readyz. */
  listenerCheck(): { ok: boolean; detail?: string };
  /** No new calls; resolves with the calls still in progress. `deadline` (epoch ms) ends the drain that follows. */
  stopAccepting(deadline: number): Promise<number>;
  /** See CallTaker.drain; logs when the drain time is over; resolves with the calls left. */
  drain(deadline: number): Promise<number>;
  /** Immediate stop (a second signal): whatever is open is left to the next start. */
  abort(): void;
  /** SIGHUP read the endpoints file again: where the calls taken from now on go. */
  routesChanged(table: RouteTable): void;
}

export type FrontFactory = (ctx: FrontContext) => CallFront;

/** WORKERS=1: calls are taken in this process, as they always were. */
export const localFront: FrontFactory = (ctx) => {
  const followedIds = new Set<string>();
  const followed: FollowedCalls = {
    claim(id) {
      if (followedIds.has(id)) return false;
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
    routesChanged: () => {},
  };
};
