/**
 * The per-call state machine: (state, input) → (state, effects). No I/O, no clock.
 *
 * Inputs are the switch's events (already read into ChannelSignal), Zammad's newCall decision
 * and the results of directory look-ups. Effects are switch commands and Zammad posts; the
 * session (session.ts) performs them and feeds the results back in.
 */
import { causeOfFailedBridge, type ZammadCause } from './causes.js';
import type { CallFacts, Direction } from './facts.js';
import type { NumberRules } from './numbers.js';
import { toE164Digits, safeCallerId } from './numbers.js';
import type { ChannelSignal } from './signals.js';

export interface NewCallPost {
  event: 'newCall';
  callId: string;
  direction: Direction;
  from: string;
  to: string;
  users: string[];
}
export interface AnswerPost {
  event: 'answer';
  callId: string;
  direction: Direction;
  from: string;
  to: string;
  user?: string;
  answeringNumber: string;
}
export interface HangupPost {
  event: 'hangup';
  callId: string;
  direction: Direction;
  from: string;
  to: string;
  cause: ZammadCause;
  answeringNumber?: string;
}
export type CtiPost = NewCallPost | AnswerPost | HangupPost;

/** What Zammad's newCall reply (or its absence) tells the switch to do. */
export type Decision =
  | { kind: 'reject'; reason: string }
  | { kind: 'dial'; callerId: unknown }
  | { kind: 'continue'; why: 'reply' | 'timeout' | 'error' | 'not-reportable' };

export type Effect =
  | { type: 'lookupUsers'; directoryIds: string[] }
  | { type: 'decide'; post: NewCallPost }
  | { type: 'post'; post: CtiPost }
  | { type: 'lookupAnswerer'; directoryId: string }
  | { type: 'setVariable'; name: string; value: string }
  | { type: 'bridge'; dialString: string }
  | { type: 'hangup'; cause: string }
  | { type: 'exit' }
  | { type: 'log'; level: 'info' | 'warn'; message: string; fields?: Record<string, unknown> };

export type Input =
  | { type: 'start' }
  | { type: 'usersResolved'; names: (string | undefined)[] }
  | { type: 'decision'; decision: Decision }
  | { type: 'signal'; signal: ChannelSignal }
  | { type: 'answererResolved'; name: string | undefined }
  | { type: 'connectionLost' };

export type Phase = 'new' | 'resolving' | 'deciding' | 'bridging' | 'rejected' | 'ended';

export interface CallState {
  readonly facts: CallFacts;
  readonly reportable: boolean;
  readonly phase: Phase;
  readonly bridgeSent: boolean;
  readonly answered: boolean;
  readonly answeringNumber?: string;
  /** Answer lookup in flight: the hangup waits for it so that answer goes out first. */
  readonly answerPending: boolean;
  readonly transferred: boolean;
  /** Zammad rejected the caller: hung up with USER_BUSY, never bridged. */
  readonly rejected: boolean;
  readonly channelDown: boolean;
  /** The caller channel's own Hangup-Cause, once known. */
  readonly hangupCause?: string;
  /** The bridge's own result (originate_disposition / failed cause), once known. */
  readonly bridgeCause?: string;
  readonly hangupPosted: boolean;
  readonly heldHangup?: HangupPost;
  readonly exited: boolean;
  /** Re-attached after a restart: only report, never command the switch (its dialplan has moved on). */
  readonly observing: boolean;
}

export interface Step {
  state: CallState;
  effects: Effect[];
}

export function initialState(facts: CallFacts, reportable: boolean): CallState {
  return {
    facts,
    reportable,
    phase: 'new',
    bridgeSent: false,
    observing: false,
    answered: false,
    answerPending: false,
    transferred: false,
    rejected: false,
    channelDown: false,
    hangupPosted: false,
    exited: false,
  };
}

/** A call an earlier run was following, picked up again through the inbound socket: newCall went out long ago. */
export function observedState(facts: CallFacts, answered: boolean, answeringNumber: string | undefined): CallState {
  return {
    ...initialState(facts, true),
    phase: 'bridging',
    bridgeSent: true,
    observing: true,
    answered,
    ...(answeringNumber ? { answeringNumber } : {}),
  };
}

const base = (f: CallFacts) => ({ callId: f.callId, direction: f.direction, from: f.from, to: f.to });

/** Values that mean "no real cause" in FreeSWITCH's originate variables. */
const NOT_A_CAUSE = new Set(['', 'SUCCESS', 'FAILURE', 'NONE', '_NONE_']);
const isCause = (c: string | undefined): c is string => c !== undefined && !NOT_A_CAUSE.has(c.toUpperCase()) && /^[A-Z_]{3,40}$/.test(c);

/** Zammad's hangup cause from everything known about the call. */
export function hangupCause(s: CallState): ZammadCause {
  if (s.rejected) return 'busy';
  if (s.transferred) return 'forwarded';
  if (s.answered) return 'normalClearing';
  const own = s.hangupCause?.toUpperCase();
  if (own === 'ORIGINATOR_CANCEL') return 'cancel';
  if (isCause(s.bridgeCause)) return causeOfFailedBridge(s.bridgeCause);
  // Caller left before any bridge result: they gave up while we were still setting up.
  if (!isCause(own) || own === 'NORMAL_CLEARING') return 'cancel';
  return causeOfFailedBridge(own);
}

function usersForNewCall(s: CallState, names: (string | undefined)[] | null): string[] {
  const f = s.facts;
  if (f.explicitUsers) return [...f.explicitUsers];
  if (f.direction === 'out') {
    const name = f.callerName.trim();
    return [name && name !== f.callerRaw ? name : f.callerRaw || f.from];
  }
  const targets = f.targets.filter((t) => t.directoryId !== undefined);
  if (targets.length > 0) return targets.map((t, i) => names?.[i]?.trim() || t.number);
  return f.targets.length > 0 ? f.targets.map((t) => t.number) : [f.to];
}

function newCall(s: CallState, names: (string | undefined)[] | null): Step {
  const post: NewCallPost = { event: 'newCall', ...base(s.facts), users: usersForNewCall(s, names) };
  return { state: { ...s, phase: 'deciding' }, effects: [{ type: 'decide', post }] };
}

function bridge(s: CallState, extra: Effect[] = []): Step {
  if (s.channelDown) return { state: { ...s, phase: 'bridging' }, effects: extra };
  return {
    state: { ...s, phase: 'bridging', bridgeSent: true },
    effects: [...extra, { type: 'bridge', dialString: s.facts.dialString }],
  };
}

function decide(s: CallState, d: Decision): Step {
  if (s.phase !== 'deciding') return { state: s, effects: [] };
  const f = s.facts;
  if (d.kind === 'reject') {
    if (f.direction !== 'in') {
      return bridge(s, [{ type: 'log', level: 'warn', message: 'Zammad asked to reject an outbound call; only inbound calls can be rejected, bridging' }]);
    }
    const effects: Effect[] = [{ type: 'log', level: 'info', message: 'Zammad rejected the caller: hanging up with USER_BUSY', fields: { reason: d.reason } }];
    if (!s.channelDown) effects.push({ type: 'hangup', cause: 'USER_BUSY' });
    return { state: { ...s, phase: 'rejected', rejected: true }, effects };
  }
  if (d.kind === 'dial') {
    if (f.direction !== 'out') {
      return bridge(s, [{ type: 'log', level: 'warn', message: 'Zammad sent a caller id for an inbound call; ignored' }]);
    }
    const callerId = safeCallerId(d.callerId);
    if (callerId === null) {
      return bridge(s, [{ type: 'log', level: 'warn', message: 'Zammad sent a caller id that is not an E.164 number; bridging with the original caller id', fields: { callerId: typeof d.callerId === 'string' ? d.callerId.slice(0, 40) : typeof d.callerId } }]);
    }
    return bridge(s, [
      { type: 'log', level: 'info', message: 'Zammad set the caller id', fields: { callerId } },
      { type: 'setVariable', name: 'effective_caller_id_number', value: callerId },
    ]);
  }
  return bridge(s);
}

function postHangup(s: CallState): Step {
  if (s.hangupPosted || !s.reportable) return { state: { ...s, hangupPosted: true }, effects: [] };
  const post: HangupPost = { event: 'hangup', ...base(s.facts), cause: hangupCause(s) };
  if (s.answeringNumber) post.answeringNumber = s.answeringNumber;
  if (s.answerPending) return { state: { ...s, hangupPosted: true, heldHangup: post }, effects: [] };
  return { state: { ...s, hangupPosted: true }, effects: [{ type: 'post', post }] };
}

function finish(s: CallState): Step {
  const posted = postHangup({ ...s, phase: 'ended' });
  if (posted.state.exited || s.observing) return posted;
  return { state: { ...posted.state, exited: true }, effects: [...posted.effects, { type: 'exit' }] };
}

function onBridged(s: CallState, otherNumber: string, rules: NumberRules): Step {
  if (s.answered) return { state: s, effects: [] };
  const answeringNumber = otherNumber ? toE164Digits(otherNumber, rules) : s.facts.to;
  const next: CallState = { ...s, answered: true, answeringNumber };
  if (!s.reportable) return { state: next, effects: [] };
  const f = s.facts;
  if (f.direction === 'out') {
    return { state: next, effects: [{ type: 'post', post: { event: 'answer', ...base(f), answeringNumber } }] };
  }
  // Group ring: the caller's CHANNEL_BRIDGE names the leg that won; its name lives in the directory.
  const winner = f.targets.find((t) => t.number === otherNumber && t.directoryId !== undefined);
  if (winner?.directoryId) {
    return { state: { ...next, answerPending: true }, effects: [{ type: 'lookupAnswerer', directoryId: winner.directoryId }] };
  }
  return answerWith(next, undefined);
}

function answerWith(s: CallState, directoryName: string | undefined): Step {
  const f = s.facts;
  const only = f.explicitUsers?.length === 1 ? f.explicitUsers[0] : undefined;
  const user = directoryName?.trim() || only || s.answeringNumber || f.to;
  const post: AnswerPost = { event: 'answer', ...base(f), user, answeringNumber: s.answeringNumber ?? f.to };
  const effects: Effect[] = [{ type: 'post', post }];
  if (s.heldHangup) effects.push({ type: 'post', post: s.heldHangup });
  const { heldHangup: _held, ...rest } = s;
  return { state: { ...rest, answerPending: false }, effects };
}

function onSignal(s: CallState, sig: ChannelSignal, rules: NumberRules): Step {
  switch (sig.kind) {
    case 'bridged':
      return onBridged(s, sig.otherNumber, rules);
    case 'transferred':
      return { state: { ...s, transferred: true }, effects: [] };
    case 'bridgeDone': {
      const next: CallState = {
        ...s,
        bridgeCause: isCause(sig.cause) ? sig.cause : s.bridgeCause,
        transferred: s.transferred || sig.transferred,
      };
      if (next.channelDown || next.phase !== 'bridging' || next.transferred || next.observing) return { state: next, effects: [] };
      // FreeSWITCH leaves the caller up after an answered bridge and after NO_ANSWER & co.
      const cause = next.answered ? 'NORMAL_CLEARING' : isCause(next.bridgeCause) ? next.bridgeCause : 'NORMAL_TEMPORARY_FAILURE';
      return { state: next, effects: [{ type: 'hangup', cause }] };
    }
    case 'hangup':
      return {
        state: {
          ...s,
          channelDown: true,
          hangupCause: s.hangupCause ?? sig.cause,
          bridgeCause: isCause(sig.bridgeCause) ? sig.bridgeCause : s.bridgeCause,
          transferred: s.transferred || sig.transferred,
        },
        effects: [],
      };
    case 'hangupComplete': {
      const next: CallState = {
        ...s,
        channelDown: true,
        hangupCause: s.hangupCause ?? sig.cause,
        bridgeCause: isCause(sig.bridgeCause) ? sig.bridgeCause : s.bridgeCause,
        transferred: s.transferred || sig.transferred,
      };
      return finish(next);
    }
  }
}

export function step(s: CallState, input: Input, rules: NumberRules): Step {
  if (s.phase === 'ended' && input.type !== 'answererResolved') return { state: s, effects: [] };
  switch (input.type) {
    case 'start': {
      if (s.phase !== 'new') return { state: s, effects: [] };
      if (!s.reportable) return bridge(s);
      const ids = s.facts.explicitUsers || s.facts.direction === 'out' ? [] : s.facts.targets.flatMap((t) => (t.directoryId ? [t.directoryId] : []));
      if (ids.length > 0) return { state: { ...s, phase: 'resolving' }, effects: [{ type: 'lookupUsers', directoryIds: ids }] };
      return newCall(s, null);
    }
    case 'usersResolved':
      return s.phase === 'resolving' ? newCall(s, input.names) : { state: s, effects: [] };
    case 'decision':
      return decide(s, input.decision);
    case 'answererResolved':
      return s.answerPending ? answerWith(s, input.name) : { state: s, effects: [] };
    case 'signal':
      return onSignal(s, input.signal, rules);
    case 'connectionLost': {
      // The switch went away before the call's end reached us: report what is known, once.
      const lost = postHangup({ ...s, phase: 'ended', exited: true });
      const warn: Effect = { type: 'log', level: 'warn', message: 'connection to FreeSWITCH lost before the call ended; reporting the hangup with what is known', fields: { cause: hangupCause(s) } };
      // Zammad answers 500 to a hangup of a call it never saw: lost before newCall went out, send it first.
      const early: Effect[] =
        s.reportable && (s.phase === 'new' || s.phase === 'resolving') && !s.hangupPosted
          ? [{ type: 'post', post: { event: 'newCall', ...base(s.facts), users: usersForNewCall(s, null) } }]
          : [];
      return { state: lost.state, effects: [warn, ...early, ...lost.effects] };
    }
  }
}
