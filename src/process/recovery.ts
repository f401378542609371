/**
 * Calls that were in progress when an earlier run of the adapter stopped (crash, SIGKILL,
 * drain time over). Zammad must not show them ringing for ever.
 *  - With FreeSWITCH's inbound event socket configured (FS_INBOUND_*), each call that still
 *    exists on the switch is watched to its real end (answer, hangup with its real cause).
 *  - A call the switch no longer has, or every call when the inbound socket is not configured
 *    or not reachable, is closed with a hangup whose cause says what is known: `normalClearing`
 *    if it had been answered, else `noAnswer` — with a log line saying its real end is unknown.
 */
import { z } from 'zod';
import type { Config } from './config.js';
import type { Logger } from './log.js';
import type { CtiPost } from '../call/flow.js';
import { ObservedCall } from '../call/observer.js';
import type { ZammadSink } from '../call/session.js';
import { InboundEsl } from '../switch/inbound.js';
import type { OpenCall, OutboxStore } from '../zammad/store.js';

const OpenCallFacts = z.object({
  callId: z.string().min(1),
  direction: z.enum(['in', 'out']),
  from: z.string(),
  to: z.string(),
  queue: z.string().optional(),
});
type OpenCallFacts = z.infer<typeof OpenCallFacts>;

export interface RecoveryDeps {
  store: OutboxStore;
  /** Each call's events go to the endpoint its journal names. */
  zammad: Pick<ZammadSink, 'send'>;
  config: Config;
  log: Logger;
}

/** The calls still being watched; `stop()` leaves them for the next start. */
export interface Recovery {
  stop(): void;
}

function closeUnknown(call: OpenCall, facts: OpenCallFacts, deps: RecoveryDeps, why: string): void {
  // A journal the disk could not keep whole may have lost the answer: normalClearing is not wrong
  // either way (Zammad tells missed from answered by the answer it got), noAnswer would be.
  const cause = call.answered || !call.trusted ? 'normalClearing' : 'noAnswer';
  const doubt = call.trusted ? '' : ' (the disk failed in the earlier run, so whether it was answered is not known)';
  deps.log.warn(`closing a call left open by an earlier run: ${why}; its real end is unknown${doubt}`, { callId: call.callId, answered: call.answered, cause });
  void deps.zammad.send(call.endpoint, { event: 'hangup', ...facts, cause, ...(call.answeringNumber ? { answeringNumber: call.answeringNumber } : {}) });
  deps.store.callEnded(call.callId);
}

export async function recoverOpenCalls(deps: RecoveryDeps): Promise<Recovery> {
  const { store, config, log } = deps;
  const calls: { call: OpenCall; facts: OpenCallFacts }[] = [];
  for (const call of store.openCalls()) {
    let facts: OpenCallFacts | undefined;
    try {
      const parsed = OpenCallFacts.safeParse(JSON.parse(call.facts));
      if (parsed.success) facts = parsed.data;
    } catch {
      /* reported below */
    }
    if (facts) calls.push({ call, facts });
    else {
      log.error('unreadable open-call record; cannot close this call in Zammad', { callId: call.callId });
      store.callEnded(call.callId);
    }
  }
  const idle: Recovery = { stop: () => {} };
  if (calls.length === 0) return idle;

  if (!config.FS_INBOUND_HOST) {
    for (const { call, facts } of calls) closeUnknown(call, facts, deps, 'FS_INBOUND_HOST is not set, so the switch cannot be asked');
    return idle;
  }

  let inbound: InboundEsl;
  try {
    inbound = await InboundEsl.connect({ host: config.FS_INBOUND_HOST, port: config.FS_INBOUND_PORT, password: config.FS_INBOUND_PASSWORD, timeoutMs: 5000 });
  } catch (err) {
    const why = `FreeSWITCH's inbound event socket is not usable (${err instanceof Error ? err.message : String(err)})`;
    for (const { call, facts } of calls) closeUnknown(call, facts, deps, why);
    return idle;
  }

  const rules = { defaultCountryCode: config.DEFAULT_COUNTRY_CODE, extensionMaxDigits: config.EXTENSION_MAX_DIGITS };
  const watched = new Map<string, ObservedCall>();
  const endpoints = new Map(calls.map(({ call }) => [call.callId, call.endpoint]));
  const post = (p: CtiPost) => {
    // The store journals answer and hangup with the event itself (store.ts add()).
    const endpoint = endpoints.get(p.callId);
    if (endpoint === undefined) return log.error('an event of a call that is not watched: not sent', { callId: p.callId, event: p.event });
    void deps.zammad.send(endpoint, p);
    if (p.event === 'hangup') {
      watched.delete(p.callId);
      log.info('call watched after restart has ended', { callId: p.callId, cause: p.cause });
      if (watched.size === 0) inbound.close('no call left to watch');
    }
  };
  // Watch first, ask second: a call that ends between the question and the subscription would
  // otherwise never be seen ending, and stay open in Zammad.
  for (const { call, facts } of calls) {
    const { queue, ...rest } = facts;
    const full = { ...rest, ...(queue !== undefined ? { queue } : {}), callerName: '', callerRaw: facts.from, dialString: '', targets: [], explicitUsers: null, mode: 'dialplan' as const, gated: true, transferSource: '', handBackSafe: false };
    watched.set(call.callId, new ObservedCall(full, call.answered, call.answeringNumber ?? undefined, rules, post, log.child({ callId: call.callId })));
  }
  inbound.on('event', (e) => watched.get(e.get('Unique-ID') ?? '')?.onEvent(e));
  const records = new Map(calls.map((c) => [c.call.callId, c]));
  /** The watch ends before the call does: report the call with what is known. */
  const giveUp = (callId: string, why: string) => {
    const observed = watched.get(callId);
    const record = records.get(callId);
    if (!observed || !record) return;
    watched.delete(callId);
    // Events seen since the restart know more (answer, the switch's own cause) than the journal.
    if (observed.seenEvents) observed.lost();
    else closeUnknown(record.call, record.facts, deps, why);
  };
  inbound.on('closed', (reason) => {
    for (const callId of [...watched.keys()]) giveUp(callId, `the inbound event socket closed (${reason}) while watching it`);
  });
  try {
    await inbound.follow([...watched.keys()]);
  } catch (err) {
    log.warn('could not subscribe to the watched calls', { error: String(err) });
    inbound.close('subscribe failed'); // 'closed' reports each call with what is known
    return idle;
  }
  for (const { call } of calls) {
    if (!watched.has(call.callId)) continue; // already ended, or the socket went away
    let exists = false;
    try {
      exists = await inbound.exists(call.callId);
    } catch (err) {
      log.warn('could not ask the switch about a call', { callId: call.callId, error: String(err) });
    }
    if (!watched.has(call.callId)) continue;
    if (exists) {
      log.info('re-attached to a call still in progress on the switch', { callId: call.callId, answered: call.answered });
      continue;
    }
    giveUp(call.callId, 'the switch no longer has it');
  }
  if (watched.size === 0) {
    inbound.close('nothing to watch');
    return idle;
  }
  return {
    stop() {
      // Not 'lost': the calls stay in open_calls for the next start.
      inbound.removeAllListeners('closed');
      inbound.close('adapter stopping');
    },
  };
}
