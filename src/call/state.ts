/**
 * The records of one call as flow.ts steps it: the posts for Zammad, Zammad's decision, the
 * effects a step asks for, the inputs it takes and the state it keeps between them.
 */
import type { ZammadCause } from './causes.js';
import type { CallFacts, Direction } from './facts.js';
import type { ChannelSignal } from './signals.js';

export interface PostBase {
  callId: string;
  direction: Direction;
  from: string;
  to: string;
  /** `zammad_queue`: Zammad's caller-log filter; stored with the call by newCall. */
  queue?: string;
}
export interface NewCallPost extends PostBase {
  event: 'newCall';
  users: string[];
}
export interface AnswerPost extends PostBase {
  event: 'answer';
  /** The person's display name (Zammad shows it as "to"), or `voicemail`. */
  user?: string;
  /** A Zammad user id from the directory's `zammad_user_id`: the screen pop goes to that agent. */
  userId?: string;
  answeringNumber: string;
}
export interface HangupPost extends PostBase {
  event: 'hangup';
  cause: ZammadCause;
  answeringNumber?: string;
}
export type CtiPost = NewCallPost | AnswerPost | HangupPost;

/** What Zammad's newCall reply (or its absence) tells the switch to do. */
export type Decision =
  | { kind: 'reject'; reason: string }
  | { kind: 'dial'; callerId: unknown }
  /** overload: the adapter is behind and routes callers without waiting (process/overload.ts). */
  | { kind: 'continue'; why: 'reply' | 'timeout' | 'error' | 'not-reportable' | 'overload' };

/** Who answered, as the directory knows them (each part may be unknown). */
export interface Answerer {
  name?: string;
  userId?: string;
  /** The directory user's number (`dialed_user`), when the leg was dialled as `user/`. */
  number?: string;
}

export type Effect =
  | { type: 'lookupUsers'; directoryIds: string[] }
  | { type: 'decide'; post: NewCallPost }
  /** Posts are handed to the outbox in the order effects come out. */
  | { type: 'post'; post: CtiPost }
  /**
   * Who is on the leg `leg` (the B-leg's uuid); `directoryId` when the dial string already says;
   * `phone`: the leg called in (a pickup, a retrieve), this is its caller id number.
   */
  | { type: 'lookupAnswerer'; leg: string; directoryId?: string; phone?: string }
  | { type: 'setVariable'; name: string; value: string }
  | { type: 'bridge'; dialString: string }
  /** Hand the call back to the dialplan: `transfer ${destination_number} XML ${context}`. */
  | { type: 'handBack' }
  | { type: 'hangup'; cause: string }
  | { type: 'exit' }
  | { type: 'log'; level: 'info' | 'warn'; message: string; fields?: Record<string, unknown> };

export type Input =
  | { type: 'start' }
  | { type: 'usersResolved'; names: (string | undefined)[] }
  | { type: 'decision'; decision: Decision }
  | { type: 'signal'; signal: ChannelSignal }
  | { type: 'answererResolved'; leg: string; answerer: Answerer }
  | { type: 'connectionLost' };

export type Phase = 'new' | 'resolving' | 'deciding' | 'routing' | 'rejected' | 'ended';

/** An answer waiting for its directory look-up; answers go out in the order people picked up. */
export interface PendingAnswer {
  readonly leg: string;
  readonly number: string;
  readonly post?: AnswerPost;
}

export interface CallState {
  readonly facts: CallFacts;
  readonly reportable: boolean;
  readonly phase: Phase;
  /**
   * The adapter may still command the call. False once the call is the dialplan's again: after the
   * hand-back, after a transfer moved the caller away from the adapter's bridge, once the socket
   * application returned, and for a call re-attached after a restart.
   */
  readonly commanding: boolean;
  readonly bridgeSent: boolean;
  /** A person (or voicemail) answered. */
  readonly answered: boolean;
  /** The B-leg uuid of the person who has the call now, or `voicemail`. */
  readonly person?: string;
  readonly answeringNumber?: string;
  readonly pendingAnswers: readonly PendingAnswer[];
  /** Zammad rejected the caller: hung up with USER_BUSY, never routed. */
  readonly rejected: boolean;
  readonly channelDown: boolean;
  /** The caller channel's own Hangup-Cause, once known. */
  readonly hangupCause?: string;
  /** The last bridge's own result (originate_disposition / failed cause), once known. */
  readonly bridgeCause?: string;
  readonly transferSource: string;
  readonly hangupPosted: boolean;
  /** The hangup, held until the answers before it are out. */
  readonly heldHangup?: HangupPost;
  readonly exited: boolean;
  /** Re-attached after a restart: only report, never command the switch (its dialplan has moved on). */
  readonly reattached: boolean;
}

export interface Step {
  state: CallState;
  effects: Effect[];
}
