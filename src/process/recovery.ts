/**
 * Calls that were in progress when an earlier run of the adapter stopped (crash, SIGKILL,
 * drain time over). Zammad must not show them ringing for ever.
 *  - With FreeSWITCH's inbound event socket configured (FS_INBOUND_*), each call that still
 *    exists on the switch is re-attached and followed to its real end (answer, hangup with its real cause).
 *  - A call the switch says it no longer has, or every call when the inbound socket is not
 *    configured, is closed with a hangup whose cause says what is known: `normalClearing` if it
 *    had been answered, else `noAnswer` — with a log line saying its real end is unknown.
 *  - While the switch cannot be asked (unreachable, refusing the login, not answering in time,
 *    closing the socket), no call is closed on a guess: they stay in the journal and the switch
 *    is asked again with a bounded backoff, in the background, and at the next start.
 * It runs beside the call listener and never holds it up (docs/operations.md, "When the switch
 * does not answer").
 */
import { z } from 'zod';
import type { Config } from './config.js';
import type { Logger } from './log.js';
import type { CtiPost } from '../call/flow.js';
import { ReattachedCall } from '../call/reattached.js';
import type { ZammadSink } from '../call/session.js';
import { InboundEsl } from '../switch/inbound.js';
import type { OpenCall, OutboxStore } from '../zammad/store.js';

/** The bound on the inbound socket's connect and login, and on each command and api. */
export const INBOUND_TIMEOUT_MS = 5000;
/** The pause after a failed try, doubled each time up to the longest. */
export const RECOVERY_RETRY_FIRST_MS = 1000;
export const RECOVERY_RETRY_MAX_MS = 60_000;

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

/**
 * Where recovery stands: `none` (no call was left open), `running` (asking the switch),
 * `waiting` (a try failed; the next one is due), `following` (every call asked; re-attached calls
 * are followed to their end), `done`, `stopped` (the adapter stops; the calls stay in the journal).
 */
export type RecoveryState = 'none' | 'running' | 'waiting' | 'following' | 'done' | 'stopped';

export interface Recovery {
  readonly state: RecoveryState;
  /** One line for /readyz: the state, the calls left, the last failure and the next try. */
  readonly detail: string;
  /** The calls not yet ended stay in the journal for the next start. */
  stop(): void;
}

interface Pending {
  call: OpenCall;
  facts: OpenCallFacts;
  live: ReattachedCall;
  reattached: boolean;
}

function closeUnknown(call: OpenCall, facts: OpenCallFacts, deps: RecoveryDeps, why: string): void {
  // A journal the disk could not keep whole may have lost the answer: normalClearing is not wrong
  // either way (Zammad tells missed from answered by the answer it got), noAnswer would be.
  const cause = call.answered || !call.trusted ? 'normalClearing' : 'noAnswer';
  const doubt = call.trusted ? '' : ' (the disk failed in the earlier run, so whether it was answered is not known)';
  const fields = { callId: call.callId, answered: call.answered, cause };
  deps.log.warn(`closing a call left open by an earlier run: ${why}; its real end is unknown${doubt}`, fields);
  const answering = call.answeringNumber ? { answeringNumber: call.answeringNumber } : {};
  void deps.zammad.send(call.endpoint, { event: 'hangup', ...facts, cause, ...answering });
  deps.store.callEnded(call.callId);
}

/** Reads the journal now (before any new call is taken); asks the switch in the background. */
export function recoverOpenCalls(deps: RecoveryDeps): Recovery {
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
  const settled = (state: RecoveryState, detail: string): Recovery => ({ state, detail, stop: () => {} });
  if (calls.length === 0) return settled('none', 'no call left open by an earlier run');

  if (!config.FS_INBOUND_HOST) {
    const why = 'FS_INBOUND_HOST is not set, so the switch cannot be asked';
    for (const { call, facts } of calls) closeUnknown(call, facts, deps, why);
    const closed = `${calls.length} calls left open by an earlier run closed with what is known`;
    return settled('done', `done: ${closed} (FS_INBOUND_HOST is not set)`);
  }

  const rules = { defaultCountryCode: config.DEFAULT_COUNTRY_CODE, extensionMaxDigits: config.EXTENSION_MAX_DIGITS };
  const pending = new Map<string, Pending>();
  const post = (p: CtiPost) => {
    // The store journals answer and hangup with the event itself (store.ts add()).
    const entry = pending.get(p.callId);
    if (entry === undefined) {
      return log.error('an event of a call that is not re-attached: not sent', { callId: p.callId, event: p.event });
    }
    void deps.zammad.send(entry.call.endpoint, p);
    if (p.event === 'hangup') {
      pending.delete(p.callId);
      log.info('call re-attached after restart has ended', { callId: p.callId, cause: p.cause });
      if (pending.size === 0) finished();
    }
  };
  for (const { call, facts } of calls) {
    const { queue, ...rest } = facts;
    const full = {
      ...rest,
      ...(queue !== undefined ? { queue } : {}),
      callerName: '',
      callerRaw: facts.from,
      dialString: '',
      targets: [],
      explicitUsers: null,
      mode: 'dialplan' as const,
      gated: true,
      transferSource: '',
      handBackSafe: false,
    };
    const callLog = log.child({ callId: call.callId });
    const live = new ReattachedCall(full, call.answered, call.answeringNumber ?? undefined, rules, post, callLog);
    pending.set(call.callId, { call, facts, live, reattached: false });
  }

  let state: RecoveryState = 'running';
  let lastFailure = '';
  let tries = 0;
  let nextTryAt = 0;
  let timer: NodeJS.Timeout | undefined;
  let inbound: InboundEsl | undefined;

  /** Lets go of the inbound socket without reporting anything (its 'closed' is ours). */
  const release = (reason: string) => {
    const conn = inbound;
    inbound = undefined;
    conn?.removeAllListeners('closed');
    conn?.close(reason);
  };
  const finished = () => {
    if (state === 'done' || state === 'stopped') return;
    state = 'done';
    clearTimeout(timer);
    release('no call left to follow');
    log.info('recovery done: every call left open by an earlier run has ended in Zammad', { calls: calls.length });
  };
  /** The switch ends the following before the call ends: report what is known. */
  const notOnSwitch = (entry: Pending) => {
    // Events seen since the restart know more (answer, the switch's own cause) than the journal.
    if (entry.live.seenEvents) entry.live.lost();
    else {
      pending.delete(entry.call.callId);
      closeUnknown(entry.call, entry.facts, deps, 'the switch no longer has it');
      if (pending.size === 0) finished();
    }
  };
  const failed = (reason: string) => {
    if (state === 'done' || state === 'stopped') return;
    release('recovery could not finish');
    const delayMs = Math.min(RECOVERY_RETRY_FIRST_MS * 2 ** tries, RECOVERY_RETRY_MAX_MS);
    tries++;
    state = 'waiting';
    lastFailure = reason;
    nextTryAt = Date.now() + delayMs;
    log.warn('recovery could not finish: the calls left open stay in the journal and the switch is asked again', {
      reason,
      calls: pending.size,
      retryInMs: delayMs,
    });
    timer = setTimeout(() => void attempt(), delayMs);
  };

  const attempt = async (): Promise<void> => {
    state = 'running';
    const target = { host: config.FS_INBOUND_HOST, port: config.FS_INBOUND_PORT };
    const fields = { ...target, calls: pending.size, try: tries + 1 };
    log.info('recovery: asking the switch about the calls left open by an earlier run', fields);
    let conn: InboundEsl;
    try {
      const login = { ...target, password: config.FS_INBOUND_PASSWORD, timeoutMs: INBOUND_TIMEOUT_MS };
      conn = await InboundEsl.connect(login);
    } catch (err) {
      return failed(err instanceof Error ? err.message : String(err));
    }
    if (state !== 'running') return conn.close('adapter stopping');
    inbound = conn;
    // Watch first, ask second: a call that ends between the question and the subscription would
    // otherwise never be seen ending, and stay open in Zammad.
    conn.on('event', (e) => pending.get(e.get('Unique-ID') ?? '')?.live.onEvent(e));
    conn.on('closed', (reason) => failed(`the inbound event socket closed (${reason})`));
    try {
      await conn.follow([...pending.keys()]);
      for (const callId of [...pending.keys()]) {
        const exists = await conn.exists(callId);
        const entry = pending.get(callId);
        if (entry === undefined || inbound !== conn) continue; // ended meanwhile, or the socket went away
        if (!exists) notOnSwitch(entry);
        else if (!entry.reattached) {
          entry.reattached = true;
          log.info('re-attached to a call still in progress on the switch', { callId, answered: entry.call.answered });
        }
      }
    } catch (err) {
      // A timeout or a close has been handled by 'closed' above; an -ERR answer is handled here.
      if (inbound === conn) failed(err instanceof Error ? err.message : String(err));
      return;
    }
    if (inbound !== conn) return;
    tries = 0;
    if (pending.size > 0) state = 'following';
  };

  log.info('recovery started: calls left open by an earlier run', { calls: calls.length });
  void attempt();
  return {
    get state() {
      return state;
    },
    get detail() {
      const left = `${pending.size} of ${calls.length} calls left open by an earlier run`;
      if (state === 'done') return `done: ${calls.length} calls left open by an earlier run have ended`;
      if (state === 'running') return `running: asking the switch about ${left}`;
      if (state === 'following') return `following ${left} to their end`;
      if (state === 'stopped') return `stopped: ${left} stay in the journal`;
      const next = Math.max(0, Math.round((nextTryAt - Date.now()) / 1000));
      return `could not finish: ${lastFailure}; ${left} stay in the journal; next try in ${next} s`;
    },
    stop() {
      if (state === 'done' || state === 'none') return;
      // Not 'lost': the calls stay in open_calls for the next start.
      state = 'stopped';
      clearTimeout(timer);
      release('adapter stopping');
    },
  };
}
