/**
 * Taking calls: the event-socket listener, one CallSession per connection, the registry of the
 * calls followed, and the call figures of /metrics.
 */
import type { Config } from './config.js';
import type { Logger } from './log.js';
import type { Socket } from 'node:net';
import { CallSession, type FollowedCalls, type ZammadSink } from '../call/session.js';
import { routingFacts } from '../call/facts.js';
import { sheddable } from '../call/flow.js';
import type { CloseReason } from '../switch/esl-connection.js';
import { EslListener } from '../switch/listener.js';
import { handBackAndGo, peekChannelData, type PeekFailure } from '../switch/shed.js';
import type { Metrics } from '../status/metrics.js';
import { overloadLimits } from './overload.js';
import { Shedding } from './shedding.js';

export interface CallTakerDeps {
  sink: ZammadSink;
  metrics: Metrics;
  log: Logger;
}

export interface CallTaker {
  listen(): Promise<{ host: string; port: number }>;
  readonly listening: boolean;
  /** No new calls; resolves with the calls still in progress. */
  stopAccepting(): Promise<number>;
  /**
   * Follows the calls in progress until none is left or `deadline` (epoch ms); what is left then is
   * closed ('shutdown': the call goes on in the switch, the next start closes it in Zammad).
   * Resolves, with how many were left, once every session has finished.
   */
  drain(deadline: number): Promise<number>;
  /** Immediate stop (a second signal): whatever is open is left to the next start. */
  abort(): void;
  /** Overload protection: the level, the /readyz check and the gauges. */
  readonly load: Shedding;
}

export function takeCalls(config: Config, deps: CallTakerDeps): CallTaker {
  const { metrics, log } = deps;
  const rules = {
    defaultCountryCode: config.DEFAULT_COUNTRY_CODE,
    extensionMaxDigits: config.EXTENSION_MAX_DIGITS,
    inboundContexts: config.INBOUND_CONTEXTS,
    defaultBridge: config.DEFAULT_BRIDGE,
  };
  const callLog = log.child({ component: 'call' });
  const sessions = new Set<Promise<void>>();
  const followedIds = new Set<string>();
  const followed: FollowedCalls = {
    claim(id) {
      if (followedIds.has(id)) return false;
      followedIds.add(id);
      return true;
    },
    release: (id) => void followedIds.delete(id),
  };
  const eslLog = log.child({ component: 'esl' });
  const peekFailures: Record<PeekFailure, CloseReason | undefined> = {
    closed: undefined,
    timeout: 'handshake-timeout',
    'too-large': 'frame-too-large',
    'not-channel-data': 'malformed-frame',
  };

  /**
   * Overload: a connection the load did not admit. Handed back to the dialplan at once when the
   * dialplan routes it by itself (flow.ts sheddable), else taken as a call after all.
   */
  async function shed(socket: Socket, take: () => void): Promise<void> {
    const peek = await peekChannelData(socket, {
      timeoutMs: config.ESL_IDLE_TIMEOUT_MS,
      maxBytes: config.ESL_MAX_FRAME_BYTES,
    });
    if ('failure' in peek) {
      const reason = peekFailures[peek.failure];
      if (reason !== undefined) {
        metrics.eslErrors.inc({ reason });
        eslLog.warn('event socket closed before the channel data of a call to shed', { reason });
      }
      return;
    }
    const facts = routingFacts((h) => {
      const v = peek.data.get(h);
      return v === undefined ? undefined : String(v);
    }, rules);
    if (!sheddable(facts) || followedIds.has(facts.callId)) {
      take();
      return;
    }
    // Counted, and summed up in the overload lines (shedding.ts): a log line per call would cost
    // what shedding saves.
    load.shed();
    await handBackAndGo(socket);
  }

  const listener: EslListener = new EslListener(
    {
      host: config.ESL_HOST,
      port: config.ESL_PORT,
      allow: config.ESL_ALLOW,
      maxFrameBytes: config.ESL_MAX_FRAME_BYTES,
      handshakeTimeoutMs: config.ESL_IDLE_TIMEOUT_MS,
    },
    (conn) => {
      metrics.callsInProgress.inc();
      load.accepted();
      conn.once('closed', (reason) => {
        metrics.callsInProgress.dec();
        if (reason !== 'exit' && reason !== 'peer-closed') metrics.eslErrors.inc({ reason });
      });
      const session = new CallSession(conn, {
        rules,
        zammad: deps.sink,
        log: callLog,
        newCallTimeoutMs: config.ZAMMAD_NEWCALL_TIMEOUT_MS,
        followed,
        load,
        metrics: {
          decided: (kind, seconds, endpoint) => metrics.decisionSeconds.observe({ endpoint, decision: kind }, seconds),
          skipped: (endpoint, reason) => metrics.verdictSkipped.inc({ endpoint, reason }),
          ended: (cause) => metrics.callsTotal.inc({ cause }),
        },
      });
      const running = session.run().catch((err: unknown) => {
        callLog.error('call session failed', { error: String(err) });
      });
      sessions.add(running);
      void running.finally(() => sessions.delete(running));
    },
    eslLog,
    {
      rejected: () => metrics.rejectedConnections.inc(),
      admit: (): boolean => load.admit(),
      surplus: shed,
    },
  );
  const load: Shedding = new Shedding(
    overloadLimits(config.ZAMMAD_NEWCALL_TIMEOUT_MS, config.ZAMMAD_MAX_CONNECTIONS),
    (): number | undefined => listener.queued(),
    metrics,
    log.child({ component: 'load' }),
  );
  return {
    load,
    async listen() {
      const address = await listener.listen();
      load.start();
      return address;
    },
    get listening() {
      return listener.listening;
    },
    async stopAccepting() {
      load.stop();
      await listener.stopAccepting();
      return listener.connections;
    },
    async drain(deadline) {
      while (listener.connections > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const left = listener.connections;
      if (left > 0) {
        log.warn('drain time over: leaving the calls still in progress to the next start', { calls: left });
        listener.closeAll();
      }
      await Promise.allSettled([...sessions]);
      return left;
    },
    abort() {
      load.stop();
      listener.closeAll();
    },
  };
}
