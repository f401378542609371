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
import { InboundEsl } from '../switch/inbound.js';
import type { Outbox } from '../zammad/outbox.js';
import type { OpenCall, OutboxStore } from '../zammad/store.js';

const OpenCallFacts = z.object({
  callId: z.string().min(1),
  direction: z.enum(['in', 'out']),
  from: z.string(),
  to: z.string(),
});
type OpenCallFacts = z.infer<typeof OpenCallFacts>;

export interface RecoveryDeps {
  store: OutboxStore;
  outbox: Outbox;
  config: Config;
  log: Logger;
}

/** What is still being watched; `stop()` leaves the rest for the next start. */
export interface Recovery {
  watching: number;
  stop(): void;
}

function closeUnknown(call: OpenCall, facts: OpenCallFacts, deps: RecoveryDeps, why: string): void {
  const cause = call.answered ? 'normalClearing' : 'noAnswer';
  deps.log.warn(`closing a call left open by an earlier run: ${why}; its real end is unknown`, { callId: call.callId, answered: call.answered, cause });
  void deps.outbox.send({ event: 'hangup', ...facts, cause, ...(call.answeringNumber ? { answeringNumber: call.answeringNumber } : {}) });
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
  const idle: Recovery = { watching: 0, stop: () => {} };
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
  const post = (p: CtiPost) => {
    void deps.outbox.send(p);
    if (p.event === 'answer') store.callAnswered(p.callId, p.answeringNumber);
    if (p.event === 'hangup') {
      store.callEnded(p.callId);
      watched.delete(p.callId);
      log.info('call watched after restart has ended', { callId: p.callId, cause: p.cause });
      if (watched.size === 0) inbound.close('all watched calls ended');
    }
  };
  for (const { call, facts } of calls) {
    let exists = false;
    try {
      exists = await inbound.exists(call.callId);
    } catch (err) {
      log.warn('could not ask the switch about a call', { callId: call.callId, error: String(err) });
    }
    if (!exists) {
      closeUnknown(call, facts, deps, 'the switch no longer has it');
      continue;
    }
    const full = { ...facts, callerName: '', callerRaw: facts.from, dialString: '', targets: [], explicitUsers: null };
    watched.set(call.callId, new ObservedCall(full, call.answered, call.answeringNumber ?? undefined, rules, post, log.child({ callId: call.callId })));
    log.info('re-attached to a call still in progress on the switch', { callId: call.callId, answered: call.answered });
  }
  if (watched.size === 0) {
    inbound.close('nothing to watch');
    return idle;
  }
  inbound.on('event', (e) => watched.get(e.get('Unique-ID') ?? '')?.onEvent(e));
  inbound.on('closed', (reason) => {
    for (const observed of [...watched.values()]) {
      log.warn('inbound event socket closed while watching a call', { reason });
      observed.lost();
    }
  });
  try {
    await inbound.follow([...watched.keys()]);
  } catch (err) {
    log.warn('could not subscribe to the watched calls', { error: String(err) });
    inbound.close('subscribe failed');
  }
  return {
    get watching() {
      return watched.size;
    },
    stop() {
      // Not 'lost': the calls stay in open_calls for the next start.
      inbound.removeAllListeners('closed');
      inbound.close('adapter stopping');
    },
  };
}
