/** What a test or the demo gives the switch simulator (a scripted call) and what it gets back. */
import type * as net from 'node:net';

export interface ChannelSpec {
  /** Default crypto.randomUUID(). */
  uuid?: string;
  /** Caller-Caller-ID-Number / Caller-ANI / variable_sip_from_user. */
  callerNumber: string;
  /** Caller-Caller-ID-Name; default: the number (what mod_sofia does without a display name). */
  callerName?: string;
  /** Caller-Destination-Number. */
  destination: string;
  /** Caller-Context, default 'public'. */
  context?: string;
  /**
   * The dialplan transferred the channel before it ran `socket` (e.g. public -> the tenant's context):
   * its transfer_source ('<epoch>:<uuid>:bl_xfer:<dest>/<context>/XML'). The caller profile then carries
   * Transfer-Source and RDNIS (profile index 2), the variables transfer_source and transfer_history.
   */
  transferSource?: string;
  /** Caller-Privacy-Hide-Number: true (CLIR) – the real number is still delivered [F]. */
  hideNumber?: boolean;
  /** Caller-Privacy-Hide-Name: true. */
  hideName?: boolean;
  /** SIP caller leg (mod_sofia, template answered-normal-sip.txt) instead of mod_loopback (answered-normal.txt). */
  sip?: boolean;
  /**
   * Extra channel variables, sent as variable_<name> (as if `set` in the dialplan before `socket`):
   * e.g. zammad_direction, zammad_bridge, zammad_users, domain_name, sip_Privacy.
   * A name that already exists in the template is replaced in place.
   */
  variables?: Record<string, string>;
}

/**
 * Another phone acting on the call (uuid-bridge.ts, test/fixtures/esl/transfers/README.md): it picks a
 * ringing leg up, retrieves the parked caller or listens in.
 */
export interface PhoneAct {
  /** The phone's extension: its caller id; its name and domain come from the directory ('2003@test.local'). */
  phone: string;
  /** When (scaled; default 1000): after the leg started ringing, after the park, after the bridge. */
  afterMs?: number;
  /** The phone hangs up after this long (scaled); never if undefined. */
  talkMs?: number;
  /** The number the phone dialled (its Destination-Number), default a feature code ('*8', '*99', '*33'). */
  code?: string;
}

/**
 * The agent's phone transfers the caller after consulting another person (`att_xfer`, FusionPBX *4):
 * the target leg is originated and answers unseen by the caller's socket; then the agent completes.
 */
export interface AttXfer {
  /** The target's extension, dialled as user/<to>@<the agent's domain>. */
  to: string;
  /** When the agent starts the consultation (scaled, after the bridge; default 1000). */
  afterMs?: number;
  /** When the agent completes (scaled, after the consultation started; default 1500). */
  completeAfterMs?: number;
  /**
   * 'bye' (the agent's phone hangs up) and 'hangup-key' look the same to the caller: a uuid_bridge to the
   * target. 'bleg-killed' (uuid_kill of the agent's leg) loses the switch race: the caller's dialplan ends
   * and the caller is hung up. Default 'bye'.
   */
  complete?: 'bye' | 'hangup-key' | 'bleg-killed';
  /** The target hangs up after this long (scaled, after the completion); never if undefined. */
  talkMs?: number;
}

export type TargetBehaviour =
  /**
   * Rings ringMs (CHANNEL_PROGRESS on the caller if > 0), answers, hangs up after talkMs (never if undefined).
   * referTo: after referAfterMs of talk the phone sends a SIP REFER (blind transfer, like phone 2005 in
   * routing/README.md): the CALLER channel is transferred to that number in its current context [T routing obs. 7/8].
   * attXfer: the agent consults another person and hands the caller over [T transfers obs. 5].
   * eavesdroppedBy: a supervisor listens in; nothing of it reaches the caller's socket [T transfers obs. 7].
   */
  | {
      kind: 'answer';
      ringMs?: number;
      talkMs?: number;
      referTo?: string;
      referAfterMs?: number;
      attXfer?: AttXfer;
      eavesdroppedBy?: PhoneAct;
    }
  /** 486 / USER_BUSY after ringMs (default 0: no ringing). */
  | { kind: 'busy'; ringMs?: number }
  /**
   * Rings until the originate timeout or the caller cancels. pickedUpBy: another phone picks the call up
   * (`intercept -bleg <this leg>`, or with how 'intercept' `intercept <the caller>`) [T transfers obs. 4].
   */
  | { kind: 'ring'; pickedUpBy?: PhoneAct & { how?: 'intercept' | 'intercept-bleg' } }
  /** Fails with `cause` after ringMs (default 0), e.g. NO_ROUTE_DESTINATION, USER_NOT_REGISTERED, CALL_REJECTED. */
  | { kind: 'fail'; cause: string; ringMs?: number };

/** One action of a scripted dialplan extension (mod_dialplan_xml <action application=.. data=..>). */
export interface DialplanApp {
  /**
   * set, export, unset, answer, pre_answer, ring_ready, playback, sleep, bridge, voicemail, callcenter, hangup,
   * transfer — or any other application the switch knows (it then just takes a moment, see appDurationMs).
   */
  app: string;
  /** The action's data; ${var} is expanded when the app runs. */
  data?: string;
}

/** A mod_callcenter queue: its agents are rung together (ring-all) when a caller enters it. */
export interface QueueSpec {
  /** Agents as 'user@domain' (contact user/<user>@<domain>), rung together. Their behaviour comes from targets. */
  agents: string[];
  /** How long the caller hears music before the agents are offered the call (default 200 ms, scaled). */
  musicMs?: number;
}

export type Chunking = 'whole' | 'split' | 'bytewise-random';
export type LingerNoticeAt = 'after-hangup-complete' | 'after-hangup' | 'before-hangup';

export interface CallScript {
  channel: ChannelSpec;
  /**
   * Behaviour per bridge target, keyed by the extension/number a leg dials:
   * user/2003@dom -> '2003', sofia/gateway/x/491701@h -> '491701', loopback/2000/targets -> '2000'.
   * The full leg dial string (without [..] vars) is also accepted as a key.
   */
  targets?: Record<string, TargetBehaviour>;
  /** For targets not listed (default: answer immediately, never hang up). */
  defaultTarget?: TargetBehaviour;
  /**
   * The directory: 'user@domain' -> its effective_caller_id_name (a string), or -> its variables
   * ({ effective_caller_id_name: 'Bob Agent', zammad_user_id: '7' }), for `api user_data <user@domain> var <name>`.
   */
  directory?: Record<string, string | Record<string, string>>;
  /**
   * Routing by the dialplan: context -> destination number -> the extension's actions. Runs when the caller
   * channel is transferred (`transfer <dest> XML <ctx>` from the socket's sendmsg or an action, a REFER, a
   * uuid_transfer). A destination with no entry: hangup NO_ROUTE_DESTINATION. Matching is by exact number
   * (no regular expressions, no continue="true" chains: one extension per number).
   */
  dialplan?: Record<string, Record<string, DialplanApp[]>>;
  /** mod_callcenter queues by name ('support@test.local'), for the `callcenter` action. */
  queues?: Record<string, QueueSpec>;
  /** The caller hangs up (ORIGINATOR_CANCEL) this long after the bridge starts, if nobody answered yet. */
  callerCancelAfterMs?: number;
  /** The caller hangs up (NORMAL_CLEARING) this long after the bridge was answered. */
  callerHangupAfterAnswerMs?: number;
  /**
   * Ringing with nobody answering ends in NO_ANSWER after this (default 1000, scaled by timeScale; a stock
   * switch uses 60 s). {originate_timeout=N} (seconds) in the dial string or the channel variable wins.
   * (Transfers of an answered call: TargetBehaviour referTo, SwitchCall.uuidTransfer.)
   */
  originateTimeoutMs?: number;
  /** Multiplies every delay of the script (ringMs, talkMs, timeouts, linger N, ...). Default 1. */
  timeScale?: number;
  /** How the outgoing byte stream is cut into writes (reads are never aligned on a real switch). Default 'whole'. */
  chunking?: Chunking;
  /** Seed for the chunking PRNG (default 1). */
  seed?: number;
  /**
   * CHANNEL_PARK fires when the socket app parks the channel; its arrival is racy [T README obs. 4].
   * Default (unset): it fires right after the reply to the 3rd command following the connect reply, or
   * right after the reply to the first sendmsg, whichever comes first (most captures).
   * Set explicitly to N: right after the N-th reply (sendmsg's stay queued until then; at the latest
   * 100 ms after connect). 0 = before any command: then it is lost unless events are already enabled
   * (answered-normal-nolinger.txt).
   */
  parkAfterReplies?: number;
  /**
   * Where the linger/disconnect notice lands relative to the end-of-call events (racy [T obs. 6]).
   * Default: 'after-hangup' when the hangup came from outside the session (caller cancel, caller hangup,
   * uuid_kill, SwitchCall.hangup) as in caller-cancel*.txt, otherwise 'after-hangup-complete'.
   * Without linger the notice is the disconnect notice and events after it are lost.
   */
  lingerNoticeAt?: LingerNoticeAt;
  /** Latency of the park loop before queued sendmsg's run (real: ~20 ms, a media frame). Not scaled. Default 20. */
  parkTickMs?: number;
  /** read_packet() timeout for the first command (real: 25 s). Scaled. */
  firstCommandTimeoutMs?: number;
  /** When the socket goes away while the channel is up, the dialplan continues; we then hang up with this cause. */
  afterSocketHangupCause?: string;
  /** A phone retrieves the caller the dialplan `park`ed (its own channel runs uuid_bridge) [T transfers obs. 6]. */
  retrieve?: PhoneAct;
  /**
   * Whether a uuid_bridge shows CS_CONSUME_MEDIA before CS_EXCHANGE_MEDIA on the caller: racy on a real
   * switch (3 of the 6 captures in transfers/). Default true.
   */
  uuidBridgeConsumeMedia?: boolean;
}

export interface ReceivedCommand {
  raw: string;
  /** First word of the command, lower-cased: 'connect', 'myevents', 'sendmsg', 'api', ... */
  name: string;
  /** Rest of the first line. */
  args: string;
  headers: Record<string, string>;
  body?: string;
  /** ms since the connection was opened. */
  at: number;
}

export interface SentFrame {
  kind: 'connect-reply' | 'reply' | 'api-response' | 'event' | 'disconnect-notice';
  /** 'CHANNEL_PARK', 'reply:+OK', 'api-response', 'disconnect-notice:linger', ... (same as eventsSent). */
  label: string;
  eventName?: string;
  application?: string;
  hangupCause?: string;
  replyText?: string;
  at: number;
}

export interface SwitchCall {
  uuid: string;
  /** Every command the adapter sent, in order. */
  commands: ReceivedCommand[];
  /**
   * Names of the frames sent, in order: 'connect-reply', 'reply:+OK', 'CHANNEL_PARK',
   * 'disconnect-notice:linger', ...
   */
  eventsSent: string[];
  /** Same with details. */
  framesSent: SentFrame[];
  /** The caller hangs up now (default cause: ORIGINATOR_CANCEL before answer, NORMAL_CLEARING after). */
  hangup(cause?: string): void;
  /** Resolves when the TCP connection is closed (by either side). */
  closed: Promise<void>;
  /** Resolves with the Hangup-Cause once CHANNEL_HANGUP_COMPLETE has been fired. */
  channelDone: Promise<string>;
  socket: net.Socket;
  /** Current channel variables (decoded). */
  variables(): Record<string, string>;
  /** Hangup cause, null while up. */
  readonly hangupCause: string | null;
  /** True if the TCP connection went away while the channel was still up (the dialplan then continued). */
  readonly socketLostWhileUp: boolean;
  /** Dial strings bridged by this call, in order. */
  readonly bridges: string[];
  /** `uuid_transfer <this call> <dest> XML [context]` (default: the channel's current context). */
  uuidTransfer(dest: string, context?: string): void;
  /** Applications the caller channel ran (from the socket or the dialplan), in order, as 'app data'. */
  readonly appsRun: string[];
  /**
   * An inbound-ESL client (an operator panel) originates `dial` (`&park()`) and runs `uuid_bridge <that leg>
   * <this call>`: the caller leaves its bridge or park and talks to the new leg until it hangs up after talkMs.
   */
  uuidBridge(dial: string, opts?: { talkMs?: number }): void;
  /** What other phones did to the call, in order: 'intercept -bleg 2003', 'att_xfer 2004 2000', 'eavesdrop 2001'. */
  readonly phoneActs: string[];
}
