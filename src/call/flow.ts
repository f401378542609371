/**
 * The per-call state machine: (state, input) → (state, effects). No I/O, no clock.
 *
 * Inputs are the switch's events (already read into ChannelSignal), Zammad's newCall decision
 * and the results of directory look-ups. Effects are switch commands and Zammad posts; the
 * session (session.ts) performs them and feeds the results back in.
 *
 * Both routing modes run through here and differ in one step, what follows Zammad's decision:
 * `bridge` (the adapter bridges the dial string) or `handBack` (the dialplan routes). After that
 * the call is followed the same way: a person answering is the caller channel's CHANNEL_BRIDGE, or
 * its CHANNEL_EXECUTE `uuid_bridge` when someone else bridged the caller (pickup, attended
 * transfer, retrieve from park) — again for each new person —, voicemail is an answer by
 * `voicemail`, and the end is one hangup.
 */
import { causeOfFailedBridge, type ZammadCause } from './causes.js';
import type { CallFacts, RoutingFacts } from './facts.js';
import type { NumberRules } from './numbers.js';
import { toE164Digits, safeCallerId } from './numbers.js';
import type { ChannelSignal } from './signals.js';
import type {
  AnswerPost,
  Answerer,
  CallState,
  Decision,
  Effect,
  HangupPost,
  Input,
  NewCallPost,
  PendingAnswer,
  PostBase,
  Step,
} from './state.js';

export type {
  AnswerPost,
  Answerer,
  CallState,
  CtiPost,
  Decision,
  Effect,
  HangupPost,
  Input,
  NewCallPost,
  Phase,
  Step,
} from './state.js';

export function initialState(facts: CallFacts, reportable: boolean): CallState {
  return {
    facts,
    reportable,
    phase: 'new',
    commanding: true,
    bridgeSent: false,
    reattached: false,
    answered: false,
    pendingAnswers: [],
    rejected: false,
    channelDown: false,
    transferSource: facts.transferSource,
    hangupPosted: false,
    exited: false,
  };
}

/** A call an earlier run was following, picked up again through the inbound socket: newCall went out long ago. */
export function reattachedState(facts: CallFacts, answered: boolean, answeringNumber: string | undefined): CallState {
  return {
    ...initialState(facts, true),
    phase: 'routing',
    commanding: false,
    bridgeSent: true,
    reattached: true,
    answered,
    ...(answeringNumber ? { answeringNumber } : {}),
  };
}

/** The fields every post of the call carries: those of its newCall, whatever the dialplan did since. */
function base(f: CallFacts): PostBase {
  return {
    callId: f.callId,
    direction: f.direction,
    from: f.from,
    to: f.to,
    ...(f.queue !== undefined ? { queue: f.queue } : {}),
  };
}

/** Values that mean "no real cause" in FreeSWITCH's originate variables. */
const NOT_A_CAUSE = new Set(['', 'SUCCESS', 'FAILURE', 'NONE', '_NONE_']);
const isCause = (c: string | undefined): c is string =>
  c !== undefined && !NOT_A_CAUSE.has(c.toUpperCase()) && /^[A-Z_]{3,40}$/.test(c);

/**
 * Zammad's hangup cause from everything known about the call. No transfer ever yields
 * `forwarded` (it would hide a missed call): a transferred call was answered or it was not.
 */
export function hangupCause(s: CallState): ZammadCause {
  if (s.rejected) return 'busy';
  if (s.answered) return 'normalClearing';
  const own = s.hangupCause?.toUpperCase();
  if (own === 'ORIGINATOR_CANCEL') return 'cancel';
  // The last failed bridge says why nobody answered (busy, no answer…), also when the dialplan
  // hung up after it (routing/: a bridge that timed out, then `hangup`).
  if (isCause(s.bridgeCause)) return causeOfFailedBridge(s.bridgeCause);
  // Caller left before any bridge result: during set-up, queue music or an IVR greeting.
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
  // Inbound in dialplan mode: whom the dialplan will ring is not known here.
  if (f.mode === 'dialplan') return [];
  const targets = f.targets.filter((t) => t.directoryId !== undefined);
  if (targets.length > 0) return targets.map((t, i) => names?.[i]?.trim() || t.number);
  return f.targets.length > 0 ? f.targets.map((t) => t.number) : [f.to];
}

function newCall(s: CallState, names: (string | undefined)[] | null): Step {
  const post: NewCallPost = { event: 'newCall', ...base(s.facts), users: usersForNewCall(s, names) };
  return { state: { ...s, phase: 'deciding' }, effects: [{ type: 'decide', post }] };
}

/** After the decision: the adapter bridges (bridge mode) or the dialplan routes (dialplan mode). */
function proceed(s: CallState, extra: Effect[] = []): Step {
  const routing: CallState = { ...s, phase: 'routing' };
  if (s.channelDown || !s.commanding) return { state: routing, effects: extra };
  if (s.facts.mode === 'dialplan')
    return { state: { ...routing, commanding: false }, effects: [...extra, { type: 'handBack' }] };
  return {
    state: { ...routing, bridgeSent: true },
    effects: [...extra, { type: 'bridge', dialString: s.facts.dialString }],
  };
}

/**
 * Why a call without a dial string cannot be handed back, if it cannot: only a call through the
 * gate (`zammad_handled` set before `socket`) is one — the hand-back's transfer would enter an
 * unguarded `socket` extension again. And `transfer ${destination_number} XML ${context}` must be
 * one destination and one context (facts.ts handBackSafe).
 */
function whyNotDialplan(f: Pick<CallFacts, 'gated' | 'handBackSafe'>): string | undefined {
  if (!f.gated)
    return (
      'the channel has neither zammad_handled (set by the gate: dialplan mode) ' +
      'nor zammad_bridge / DEFAULT_BRIDGE (bridge mode)'
    );
  if (!f.handBackSafe)
    return 'its destination or context holds a space, a quote, a brace or $: a transfer could reach another context';
  return undefined;
}

/**
 * Whether a call may be shed under overload (process/shedding.ts): handed back to the dialplan at
 * once, unreported, exactly as the hand-back after Zammad's decision would — only a dialplan-mode
 * call through the gate that can be handed back. A bridge-mode call has no routing of its own to
 * go back to, and an unguarded one would enter the socket again.
 */
export function sheddable(f: RoutingFacts): boolean {
  return f.mode === 'dialplan' && whyNotDialplan(f) === undefined;
}

/**
 * Not the adapter's call: nothing goes to Zammad, and `exit` returns the socket application, so
 * the dialplan goes on with the actions after it, as if the adapter were not there.
 */
function letGo(s: CallState, why: string): Step {
  return {
    state: { ...s, phase: 'ended', commanding: false, hangupPosted: true, exited: true },
    effects: [
      {
        type: 'log',
        level: 'warn',
        message:
          `not following this call: ${why}; ` +
          'the dialplan goes on without the adapter, nothing is reported to Zammad',
      },
      { type: 'exit' },
    ],
  };
}

function decide(s: CallState, d: Decision): Step {
  if (s.phase !== 'deciding') return { state: s, effects: [] };
  const f = s.facts;
  if (d.kind === 'reject') {
    if (f.direction !== 'in') {
      return proceed(s, [
        {
          type: 'log',
          level: 'warn',
          message: 'Zammad asked to reject an outbound call; only inbound calls can be rejected, going on',
        },
      ]);
    }
    const effects: Effect[] = [
      {
        type: 'log',
        level: 'info',
        message: 'Zammad rejected the caller: hanging up with USER_BUSY',
        fields: { reason: d.reason },
      },
    ];
    if (!s.channelDown && s.commanding) effects.push({ type: 'hangup', cause: 'USER_BUSY' });
    return { state: { ...s, phase: 'rejected', rejected: true }, effects };
  }
  if (d.kind === 'dial') {
    if (f.direction !== 'out') {
      return proceed(s, [
        { type: 'log', level: 'warn', message: 'Zammad sent a caller id for an inbound call; ignored' },
      ]);
    }
    const callerId = safeCallerId(d.callerId);
    if (callerId === null) {
      return proceed(s, [
        {
          type: 'log',
          level: 'warn',
          message: 'Zammad sent a caller id that is not an E.164 number; going on with the original caller id',
          fields: { callerId: typeof d.callerId === 'string' ? d.callerId.slice(0, 40) : typeof d.callerId },
        },
      ]);
    }
    const set: Effect[] = [{ type: 'setVariable', name: 'effective_caller_id_number', value: callerId }];
    // Routes that later `set effective_caller_id_number=${outbound_caller_id_number}` (FusionPBX,
    // most hand-written ones) would undo the first: the dialplan gets both.
    if (f.mode === 'dialplan') set.push({ type: 'setVariable', name: 'outbound_caller_id_number', value: callerId });
    return proceed(s, [
      { type: 'log', level: 'info', message: 'Zammad set the caller id', fields: { callerId } },
      ...set,
    ]);
  }
  return proceed(s);
}

function postHangup(s: CallState): Step {
  if (s.hangupPosted || !s.reportable) return { state: { ...s, hangupPosted: true }, effects: [] };
  const post: HangupPost = { event: 'hangup', ...base(s.facts), cause: hangupCause(s) };
  if (s.answeringNumber) post.answeringNumber = s.answeringNumber;
  if (s.pendingAnswers.length > 0) return { state: { ...s, hangupPosted: true, heldHangup: post }, effects: [] };
  return { state: { ...s, hangupPosted: true }, effects: [{ type: 'post', post }] };
}

function finish(s: CallState): Step {
  return exitWhenDone(postHangup({ ...s, phase: 'ended' }));
}

/**
 * The goodbye, once the call is over and no answer waits for a directory look-up: the look-ups
 * go over this socket, which FreeSWITCH keeps open after the hangup (linger) until `exit`.
 */
function exitWhenDone(step: Step): Step {
  const s = step.state;
  if (s.phase !== 'ended' || s.exited || s.reattached || s.pendingAnswers.length > 0) return step;
  return { state: { ...s, exited: true }, effects: [...step.effects, { type: 'exit' }] };
}

/** Sends the answers whose look-up is done, in order, then a hangup that waited for them. */
function flushAnswers(s: CallState): Step {
  const effects: Effect[] = [];
  let pending = s.pendingAnswers;
  while (pending[0]?.post) {
    effects.push({ type: 'post', post: pending[0].post });
    pending = pending.slice(1);
  }
  let next: CallState = { ...s, pendingAnswers: pending };
  if (pending.length === 0 && next.heldHangup) {
    // Its answering number is the one the look-ups found (dialed_user), not the leg's destination.
    const { answeringNumber } = next;
    effects.push({ type: 'post', post: answeringNumber ? { ...next.heldHangup, answeringNumber } : next.heldHangup });
    const { heldHangup: _sent, ...rest } = next;
    next = rest;
  }
  return { state: next, effects };
}

function answerPost(s: CallState, number: string, who: Answerer): AnswerPost {
  const f = s.facts;
  const only = f.explicitUsers?.length === 1 ? f.explicitUsers[0] : undefined;
  // A directory user without a display name is shown by their extension; a leg that is no
  // directory user (a gateway, sofia/…, loopback) by nothing but answeringNumber.
  const user = who.name?.trim() || only || who.number;
  return {
    event: 'answer',
    ...base(f),
    ...(user ? { user } : {}),
    ...(who.userId ? { userId: who.userId } : {}),
    answeringNumber: number,
  };
}

/**
 * A person has the caller: the first one, or a new one a transfer, a pickup or a retrieve
 * connected. A leg that called in (a phone dialling a pickup or park code) is its caller, not the
 * code it dialled.
 */
function onBridged(s: CallState, sig: Extract<ChannelSignal, { kind: 'bridged' }>, rules: NumberRules): Step {
  const leg = sig.otherUuid || sig.otherChannel || sig.otherNumber;
  const dialled = sig.phoneNumber ?? sig.otherNumber;
  const number = dialled ? toE164Digits(dialled, rules) : s.facts.to;
  // Re-attached after a restart, the person who answered is known by number only (the journal).
  const samePerson = s.person === leg || (s.person === undefined && s.reattached && number === s.answeringNumber);
  if (s.answered && samePerson) return { state: s, effects: [] };
  const next: CallState = { ...s, answered: true, person: leg, answeringNumber: number };
  if (!s.reportable) return { state: next, effects: [] };
  const f = s.facts;
  if (f.direction === 'out') {
    // The far end of an outbound call is a number, not one of ours: no directory look-up.
    return flushAnswers({
      ...next,
      pendingAnswers: [
        ...s.pendingAnswers,
        { leg, number, post: { event: 'answer', ...base(f), answeringNumber: number } },
      ],
    });
  }
  // Group ring: the adapter's own dial string names the leg that won — its directory entry, or
  // no directory user at all (a gateway, sofia/…). Anyone else (a transfer target, a queue
  // agent, a dialplan's bridge) is asked of the B-leg.
  const first = s.person === undefined && !sig.phoneNumber;
  const winner = first ? f.targets.find((t) => t.number === sig.otherNumber) : undefined;
  if (winner && winner.directoryId === undefined) {
    return flushAnswers({
      ...next,
      pendingAnswers: [...s.pendingAnswers, { leg, number, post: answerPost(s, number, {}) }],
    });
  }
  return {
    state: { ...next, pendingAnswers: [...s.pendingAnswers, { leg, number }] },
    effects: [
      {
        type: 'lookupAnswerer',
        leg,
        ...(winner?.directoryId ? { directoryId: winner.directoryId } : {}),
        ...(sig.phoneNumber ? { phone: sig.phoneNumber } : {}),
      },
    ],
  };
}

function onAnswerer(s: CallState, leg: string, who: Answerer, rules: NumberRules): Step {
  const i = s.pendingAnswers.findIndex((p) => p.leg === leg && p.post === undefined);
  if (i < 0) return { state: s, effects: [] };
  const entry = s.pendingAnswers[i] as PendingAnswer;
  const number = who.number ? toE164Digits(who.number, rules) : entry.number;
  const pendingAnswers = s.pendingAnswers.map((p, j) => (j === i ? { ...p, post: answerPost(s, number, who) } : p));
  const answeringNumber = s.person === leg ? number : s.answeringNumber;
  return flushAnswers({ ...s, pendingAnswers, ...(answeringNumber !== undefined ? { answeringNumber } : {}) });
}

/** `voicemail` before any person answered: Zammad keeps such a call to be called back. */
function onVoicemail(s: CallState, mailbox: string, rules: NumberRules): Step {
  if (s.answered) return { state: s, effects: [] };
  const number = mailbox ? toE164Digits(mailbox, rules) : s.facts.to;
  const next: CallState = { ...s, answered: true, person: 'voicemail', answeringNumber: number };
  if (!s.reportable) return { state: next, effects: [] };
  const post: AnswerPost = { event: 'answer', ...base(s.facts), user: 'voicemail', answeringNumber: number };
  return flushAnswers({ ...next, pendingAnswers: [...s.pendingAnswers, { leg: 'voicemail', number, post }] });
}

function onBridgeDone(s: CallState, sig: Extract<ChannelSignal, { kind: 'bridgeDone' }>): Step {
  const moved = sig.transferSource !== undefined && sig.transferSource !== s.transferSource;
  const next: CallState = {
    ...s,
    bridgeCause: isCause(sig.cause) ? sig.cause : s.bridgeCause,
    transferSource: sig.transferSource ?? s.transferSource,
  };
  if (next.channelDown || next.phase !== 'routing' || !next.commanding || !next.bridgeSent)
    return { state: next, effects: [] };
  if (moved) {
    // A REFER or uuid_transfer moved the caller while the adapter's bridge ran: the dialplan routes
    // it now (routing/ obs. 8). Hanging up here would cut the transferred call.
    return {
      state: { ...next, commanding: false },
      effects: [
        {
          type: 'log',
          level: 'info',
          message: 'the caller was transferred during the bridge: following the call without commanding it',
        },
      ],
    };
  }
  // FreeSWITCH leaves the caller up after an answered bridge and after NO_ANSWER & co.
  const cause = next.answered
    ? 'NORMAL_CLEARING'
    : isCause(next.bridgeCause)
      ? next.bridgeCause
      : 'NORMAL_TEMPORARY_FAILURE';
  return { state: next, effects: [{ type: 'hangup', cause }] };
}

function onSignal(s: CallState, sig: ChannelSignal, rules: NumberRules): Step {
  switch (sig.kind) {
    case 'bridged':
      return onBridged(s, sig, rules);
    case 'voicemail':
      return onVoicemail(s, sig.mailbox, rules);
    case 'bridgeDone':
      return onBridgeDone(s, sig);
    case 'socketReturned':
      return { state: { ...s, commanding: false }, effects: [] };
    case 'hangup':
    case 'hangupComplete': {
      const next: CallState = {
        ...s,
        channelDown: true,
        hangupCause: s.hangupCause ?? sig.cause,
        bridgeCause: isCause(sig.bridgeCause) ? sig.bridgeCause : s.bridgeCause,
      };
      return sig.kind === 'hangupComplete' ? finish(next) : { state: next, effects: [] };
    }
  }
}

export function step(s: CallState, input: Input, rules: NumberRules): Step {
  if (s.phase === 'ended' && input.type !== 'answererResolved') return { state: s, effects: [] };
  switch (input.type) {
    case 'start': {
      if (s.phase !== 'new') return { state: s, effects: [] };
      const refused = s.facts.mode === 'dialplan' ? whyNotDialplan(s.facts) : undefined;
      if (refused !== undefined) return letGo(s, refused);
      if (!s.reportable) return proceed(s);
      const ids =
        s.facts.explicitUsers || s.facts.direction === 'out'
          ? []
          : s.facts.targets.flatMap((t) => (t.directoryId ? [t.directoryId] : []));
      if (ids.length > 0)
        return { state: { ...s, phase: 'resolving' }, effects: [{ type: 'lookupUsers', directoryIds: ids }] };
      return newCall(s, null);
    }
    case 'usersResolved':
      return s.phase === 'resolving' ? newCall(s, input.names) : { state: s, effects: [] };
    case 'decision':
      return decide(s, input.decision);
    case 'answererResolved':
      return exitWhenDone(onAnswerer(s, input.leg, input.answerer, rules));
    case 'signal':
      return onSignal(s, input.signal, rules);
    case 'connectionLost': {
      // The switch went away before the call's end reached us: report what is known, once.
      // Answers still waiting for a look-up go out as they are, before the hangup.
      const unresolved = s.pendingAnswers.map((p) => p.post ?? answerPost(s, p.number, {}));
      const lost = postHangup({ ...s, pendingAnswers: [], phase: 'ended', exited: true });
      const warn: Effect = {
        type: 'log',
        level: 'warn',
        message: 'connection to FreeSWITCH lost before the call ended; reporting the hangup with what is known',
        fields: { cause: hangupCause(s) },
      };
      // Zammad answers 500 to a hangup of a call it never saw: lost before newCall went out, send it first.
      const early: Effect[] =
        s.reportable && (s.phase === 'new' || s.phase === 'resolving') && !s.hangupPosted
          ? [{ type: 'post', post: { event: 'newCall', ...base(s.facts), users: usersForNewCall(s, null) } }]
          : [];
      const answers: Effect[] = s.reportable ? unresolved.map((post) => ({ type: 'post', post })) : [];
      const held: Effect[] = s.heldHangup ? [{ type: 'post', post: s.heldHangup }] : [];
      const { heldHangup: _held, ...state } = lost.state;
      return { state, effects: [warn, ...early, ...answers, ...held, ...lost.effects] };
    }
  }
}
