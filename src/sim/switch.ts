/**
 * FreeSWITCH switch double: plays the part of FreeSWITCH 1.10.12 running
 *   <action application="socket" data="127.0.0.1:8084 async full"/>
 * i.e. it CONNECTS to the adapter's TCP listener (outbound event socket) and speaks the real wire
 * protocol, then simulates the caller's channel (the "A-leg" the socket controls) and the
 * originate/bridge of the adapter's dial strings.
 *
 * Facts it relies on (each with its source):
 *  [T]  /work/shared/esl-transcripts/*.txt (real captures, FreeSWITCH 1.10.12) and README.md there
 *  [F]  /work/shared/spec/freeswitch-facts.md (group rings, privacy, causes on a real switch)
 *  [ES] mod_event_socket.c (1.10): parse_command(), read_packet(), listener_run(), socket_function(),
 *       event_handler() – command replies, myevents/event/linger semantics, disconnect handling
 *  [OR] switch_ivr_originate.c (1.10): DIALSTATUS mapping, originate_causes, LOSE_RACE for losers,
 *       private events parsed while ringing (switch_ivr_parse_all_events in the ring loop),
 *       `|` failover stops on timeout unless continue_on_timeout
 *  [DP] mod_dptools.c: user/ endpoint sets dialed_user/dialed_domain on the caller channel per leg
 *  [MC] mod_commands.c: user_data writes nothing for an unknown user -> api_exec answers "-ERR no reply\n"
 *  [EV] switch_event.c / switch_utils.c: serialisation, switch_url_encode (see esl-wire.ts)
 *
 * Not modelled (see the report): B-leg events (an outbound socket with myevents never sees them),
 * CHANNEL_CALLSTATE/HEARTBEAT/other system events for `event ... ALL` listeners, attended/blind
 * transfer of an answered call, media, `failure_causes`, enterprise originate (:_:).
 */
import * as net from 'node:net';
import { randomUUID } from 'node:crypto';
import {
  CommandParser,
  GOODBYE,
  type EventFormat,
  type Header,
  type ParsedCommand,
  apiResponse,
  bgapiReply,
  commandReply,
  connectReply,
  disconnectNotice,
  eventFrame,
  getHeader,
  lingerNotice,
  plainHeaderLine,
  plainTail,
  serializeJson,
  serializeXml,
} from './esl-wire.js';

// ===========================================================================
// Public types
// ===========================================================================

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

export type TargetBehaviour =
  /** Rings ringMs (CHANNEL_PROGRESS on the caller if > 0), answers, hangs up after talkMs (never if undefined). */
  | { kind: 'answer'; ringMs?: number; talkMs?: number }
  /** 486 / USER_BUSY after ringMs (default 0: no ringing). */
  | { kind: 'busy'; ringMs?: number }
  /** Rings until the originate timeout or the caller cancels. */
  | { kind: 'ring' }
  /** Fails with `cause` after ringMs (default 0), e.g. NO_ROUTE_DESTINATION, USER_NOT_REGISTERED, CALL_REJECTED. */
  | { kind: 'fail'; cause: string; ringMs?: number };

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
  /** 'user@domain' -> effective_caller_id_name, for `api user_data <user@domain> var effective_caller_id_name`. */
  directory?: Record<string, string>;
  /** The caller hangs up (ORIGINATOR_CANCEL) this long after the bridge starts, if nobody answered yet. */
  callerCancelAfterMs?: number;
  /** The caller hangs up (NORMAL_CLEARING) this long after the bridge was answered. */
  callerHangupAfterAnswerMs?: number;
  /**
   * Ringing with nobody answering ends in NO_ANSWER after this (default 1000, scaled by timeScale; a stock
   * switch uses 60 s). {originate_timeout=N} (seconds) in the dial string or the channel variable wins.
   * (There is deliberately no transferAfterAnswerMs: no capture shows how a transfer looks on the caller channel.)
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
  /** Names of the frames sent, in order: 'connect-reply', 'reply:+OK', 'CHANNEL_PARK', 'disconnect-notice:linger', ... */
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
}

// ===========================================================================
// Constants / small helpers
// ===========================================================================

/** Q.850 codes of switch_call_cause_t (switch_types.h); > 127 is reported as 16 in hangup_cause_q850. */
const CAUSE_CODES: Record<string, number> = {
  NONE: 0, UNALLOCATED_NUMBER: 1, NO_ROUTE_TRANSIT_NET: 2, NO_ROUTE_DESTINATION: 3, CHANNEL_UNACCEPTABLE: 6,
  CALL_AWARDED_DELIVERED: 7, NORMAL_CLEARING: 16, USER_BUSY: 17, NO_USER_RESPONSE: 18, NO_ANSWER: 19,
  SUBSCRIBER_ABSENT: 20, CALL_REJECTED: 21, NUMBER_CHANGED: 22, REDIRECTION_TO_NEW_DESTINATION: 23,
  EXCHANGE_ROUTING_ERROR: 25, DESTINATION_OUT_OF_ORDER: 27, INVALID_NUMBER_FORMAT: 28, FACILITY_REJECTED: 29,
  RESPONSE_TO_STATUS_ENQUIRY: 30, NORMAL_UNSPECIFIED: 31, NORMAL_CIRCUIT_CONGESTION: 34, NETWORK_OUT_OF_ORDER: 38,
  NORMAL_TEMPORARY_FAILURE: 41, SWITCH_CONGESTION: 42, ACCESS_INFO_DISCARDED: 43, REQUESTED_CHAN_UNAVAIL: 44,
  PRE_EMPTED: 45, FACILITY_NOT_SUBSCRIBED: 50, OUTGOING_CALL_BARRED: 52, INCOMING_CALL_BARRED: 54,
  BEARERCAPABILITY_NOTAUTH: 57, BEARERCAPABILITY_NOTAVAIL: 58, SERVICE_UNAVAILABLE: 63, BEARERCAPABILITY_NOTIMPL: 65,
  CHAN_NOT_IMPLEMENTED: 66, FACILITY_NOT_IMPLEMENTED: 69, SERVICE_NOT_IMPLEMENTED: 79, INVALID_CALL_REFERENCE: 81,
  INCOMPATIBLE_DESTINATION: 88, INVALID_MSG_UNSPECIFIED: 95, MANDATORY_IE_MISSING: 96, MESSAGE_TYPE_NONEXIST: 97,
  WRONG_MESSAGE: 98, IE_NONEXIST: 99, INVALID_IE_CONTENTS: 100, WRONG_CALL_STATE: 101, RECOVERY_ON_TIMER_EXPIRE: 102,
  MANDATORY_IE_LENGTH_ERROR: 103, PROTOCOL_ERROR: 111, INTERWORKING: 127, SUCCESS: 142, ORIGINATOR_CANCEL: 487,
  CRASH: 700, SYSTEM_SHUTDOWN: 701, LOSE_RACE: 502, MANAGER_REQUEST: 503, BLIND_TRANSFER: 600,
  ATTENDED_TRANSFER: 601, ALLOTTED_TIMEOUT: 602, USER_CHALLENGE: 603, MEDIA_TIMEOUT: 604, PICKED_OFF: 605,
  USER_NOT_REGISTERED: 606, PROGRESS_TIMEOUT: 607, GATEWAY_DOWN: 609,
};

/** switch_channel_str2cause(): name (case-insensitive) or number; unknown -> NONE. */
function normalizeCause(c: string | undefined): string {
  if (c === undefined || c.trim() === '') return 'NORMAL_CLEARING';
  const t = c.trim().toUpperCase();
  if (t in CAUSE_CODES) return t;
  if (/^\d+$/.test(t)) {
    const n = parseInt(t, 10);
    for (const [k, v] of Object.entries(CAUSE_CODES)) if (v === n) return k;
  }
  return 'NONE';
}

function q850(cause: string): number {
  const n = CAUSE_CODES[cause] ?? 0;
  return n <= 127 ? n : 16;
}

/** DIALSTATUS after a failed originate [OR]. */
function dialStatus(cause: string): string {
  switch (cause) {
    case 'ORIGINATOR_CANCEL': return 'CANCEL';
    case 'USER_BUSY': return 'BUSY';
    case 'NO_ANSWER': return 'NOANSWER';
    case 'DESTINATION_OUT_OF_ORDER':
    case 'INVALID_PROFILE': return 'INVALIDARGS';
    case 'CALL_REJECTED': return 'DONTCALL';
    default: return cause;
  }
}

/** SIP status a sofia far end answers for a cause (used for sip_invite_failure_status & proto-specific cause). */
const SIP_FOR_CAUSE: Record<string, [number, string]> = {
  USER_BUSY: [486, 'Busy Here'],
  NO_ROUTE_DESTINATION: [404, 'Not Found'],
  UNALLOCATED_NUMBER: [404, 'Not Found'],
  CALL_REJECTED: [603, 'Decline'],
  NO_USER_RESPONSE: [408, 'Request Timeout'],
  NO_ANSWER: [480, 'Temporarily Unavailable'],
  SUBSCRIBER_ABSENT: [480, 'Temporarily Unavailable'],
  NORMAL_TEMPORARY_FAILURE: [503, 'Service Unavailable'],
  SERVICE_UNAVAILABLE: [503, 'Service Unavailable'],
  DESTINATION_OUT_OF_ORDER: [502, 'Bad Gateway'],
  INVALID_NUMBER_FORMAT: [484, 'Address Incomplete'],
  INCOMPATIBLE_DESTINATION: [488, 'Not Acceptable Here'],
  RECOVERY_ON_TIMER_EXPIRE: [408, 'Request Timeout'],
  NORMAL_UNSPECIFIED: [480, 'Temporarily Unavailable'],
};

/** Causes after which mod_dptools never hangs the caller up itself [T README obs. 8]. */
const NEVER_AUTO_HANGUP = new Set(['NO_ANSWER', 'NO_USER_RESPONSE', 'ORIGINATOR_CANCEL']);

/** Applications that exist on a stock switch and return immediately. */
const INSTANT_APPS = new Set([
  'set', 'export', 'unset', 'multiset', 'multiunset', 'push', 'unshift', 'set_global', 'log', 'info', 'event',
  'hash', 'db', 'presence', 'privacy', 'set_name', 'set_user', 'set_profile_var', 'bind_meta_app', 'unbind_meta_app',
  'bind_digit_action', 'clear_digit_action', 'digit_action_set_realm', 'limit', 'send_dtmf', 'flush_dtmf',
  'start_dtmf', 'stop_dtmf', 'record_session', 'stop_record_session', 'sched_hangup', 'sched_transfer',
  'sched_broadcast', 'sched_cancel', 'set_audio_level', 'set_mute', 'enable_heartbeat', 'media_reset',
  'verbose_events', 'novideo', 'cng_plc', 'jitterbuffer', 'set_zombie_exec', 'strftime', 'export_vars',
  'mkdir', 'rename', 'system', 'bgsystem', 'curl', 'set_media_stats', 'mutex', 'deduplicate_dtmf', 'tone_detect',
  'stop_tone_detect', 'fax_detect', 'detect_speech', 'spandsp_start_dtmf', 'spandsp_stop_dtmf', 'queue_dtmf',
  'displace_session', 'stop_displace_session', 'capture', 'break', 'soft_hold', 'chat', 'send_display',
  'redirect', 'deflect', 'respond', 'answer', 'pre_answer', 'ring_ready', 'hangup', 'wait_for_answer',
]);
/** Applications that exist and take time (duration from the argument, see appDurationMs). */
const BLOCKING_APPS = new Set([
  'sleep', 'playback', 'endless_playback', 'loop_playback', 'gentones', 'park', 'echo', 'delay_echo', 'say',
  'speak', 'phrase', 'read', 'play_and_get_digits', 'record', 'playback_terminators', 'wait_for_silence',
  'conference', 'fifo', 'voicemail', 'valet_park', 'callcenter', 'lua', 'javascript', 'python', 'ivr',
  'transfer', 'execute_extension', 'eavesdrop', 'intercept', 'three_way', 'att_xfer', 'socket', 'sound_test',
  'bridge',
]);

/** switch_event_types_t names accepted by `event`/`nixevent` (switch_name_event, case-insensitive). */
const EVENT_NAMES = new Set([
  'CUSTOM', 'CLONE', 'CHANNEL_CREATE', 'CHANNEL_DESTROY', 'CHANNEL_STATE', 'CHANNEL_CALLSTATE', 'CHANNEL_ANSWER',
  'CHANNEL_HANGUP', 'CHANNEL_HANGUP_COMPLETE', 'CHANNEL_EXECUTE', 'CHANNEL_EXECUTE_COMPLETE', 'CHANNEL_HOLD',
  'CHANNEL_UNHOLD', 'CHANNEL_BRIDGE', 'CHANNEL_UNBRIDGE', 'CHANNEL_PROGRESS', 'CHANNEL_PROGRESS_MEDIA',
  'CHANNEL_OUTGOING', 'CHANNEL_PARK', 'CHANNEL_UNPARK', 'CHANNEL_APPLICATION', 'CHANNEL_ORIGINATE', 'CHANNEL_UUID',
  'API', 'LOG', 'INBOUND_CHAN', 'OUTBOUND_CHAN', 'STARTUP', 'SHUTDOWN', 'PUBLISH', 'UNPUBLISH', 'TALK', 'NOTALK',
  'SESSION_CRASH', 'MODULE_LOAD', 'MODULE_UNLOAD', 'DTMF', 'MESSAGE', 'PRESENCE_IN', 'NOTIFY_IN', 'PRESENCE_OUT',
  'PRESENCE_PROBE', 'MESSAGE_WAITING', 'MESSAGE_QUERY', 'ROSTER', 'CODEC', 'BACKGROUND_JOB', 'DETECTED_SPEECH',
  'DETECTED_TONE', 'PRIVATE_COMMAND', 'HEARTBEAT', 'TRAP', 'ADD_SCHEDULE', 'DEL_SCHEDULE', 'EXE_SCHEDULE',
  'RE_SCHEDULE', 'RELOADXML', 'NOTIFY', 'PHONE_FEATURE', 'PHONE_FEATURE_SUBSCRIBE', 'SEND_MESSAGE', 'RECV_MESSAGE',
  'REQUEST_PARAMS', 'CHANNEL_DATA', 'GENERAL', 'COMMAND', 'SESSION_HEARTBEAT', 'CLIENT_DISCONNECTED',
  'SERVER_DISCONNECTED', 'SEND_INFO', 'RECV_INFO', 'RECV_RTCP_MESSAGE', 'SEND_RTCP_MESSAGE', 'CALL_SECURE', 'NAT',
  'RECORD_START', 'RECORD_STOP', 'PLAYBACK_START', 'PLAYBACK_STOP', 'CALL_UPDATE', 'FAILURE', 'SOCKET_DATA',
  'MEDIA_BUG_START', 'MEDIA_BUG_STOP', 'CONFERENCE_DATA_QUERY', 'CONFERENCE_DATA', 'CALL_SETUP_REQ',
  'CALL_SETUP_RESULT', 'CALL_DETAIL', 'DEVICE_STATE', 'TEXT', 'SHUTDOWN_REQUESTED', 'ALL',
]);

/** The fixed list `myevents` subscribes to [ES]. */
const MYEVENTS_LIST = [
  'CHANNEL_ANSWER', 'CHANNEL_APPLICATION', 'CHANNEL_BRIDGE', 'CHANNEL_CREATE', 'CHANNEL_DATA', 'CHANNEL_DESTROY',
  'CHANNEL_EXECUTE', 'CHANNEL_EXECUTE_COMPLETE', 'CHANNEL_HANGUP', 'CHANNEL_HANGUP_COMPLETE', 'CHANNEL_ORIGINATE',
  'CHANNEL_UUID', 'CHANNEL_OUTGOING', 'CHANNEL_PARK', 'CHANNEL_PROGRESS', 'CHANNEL_PROGRESS_MEDIA', 'CHANNEL_STATE',
  'CHANNEL_UNBRIDGE', 'CHANNEL_UNPARK', 'DETECTED_SPEECH', 'DTMF', 'NOTALK', 'TALK',
];

/** Event-Calling-File/Function/Line as in the transcripts. */
const CALLING: Record<string, readonly [string, string, string]> = {
  CHANNEL_DATA: ['mod_event_socket.c', 'parse_command', '2021'],
  CHANNEL_PARK: ['switch_ivr.c', 'switch_ivr_park', '1002'],
  CHANNEL_UNPARK: ['switch_ivr.c', 'switch_ivr_park', '1213'],
  CHANNEL_EXECUTE: ['switch_core_session.c', 'switch_core_session_exec', '2944'],
  CHANNEL_EXECUTE_COMPLETE: ['switch_core_session.c', 'switch_core_session_exec', '2967'],
  CHANNEL_ANSWER: ['switch_channel.c', 'switch_channel_perform_mark_answered', '3846'],
  CHANNEL_PROGRESS: ['switch_channel.c', 'switch_channel_perform_mark_ring_ready_value', '3505'],
  CHANNEL_PROGRESS_MEDIA: ['switch_channel.c', 'switch_channel_perform_mark_pre_answered', '3621'],
  CHANNEL_BRIDGE: ['switch_ivr_bridge.c', 'switch_ivr_multi_threaded_bridge', '1689'],
  CHANNEL_UNBRIDGE: ['switch_ivr_bridge.c', 'switch_ivr_multi_threaded_bridge', '1879'],
  CHANNEL_HANGUP: ['switch_channel.c', 'switch_channel_perform_hangup', '3445'],
  CHANNEL_STATE: ['switch_channel.c', 'switch_channel_perform_set_running_state', '2408'],
  CHANNEL_HANGUP_COMPLETE: ['switch_core_state_machine.c', 'switch_core_session_reporting_state', '943'],
  BACKGROUND_JOB: ['mod_event_socket.c', 'api_exec', '1557'],
};

const SOCKET_APP_DATA = '127.0.0.1:8084 async full';

function pad2(n: number): string {
  return n < 10 ? '0' + n : String(n);
}
/** "2026-11-25 04:38:51" (the capture host ran on UTC; we always use UTC). */
function fmtStamp(ms: number): string {
  const d = new Date(ms);
  return d.getUTCFullYear() + '-' + pad2(d.getUTCMonth() + 1) + '-' + pad2(d.getUTCDate()) + ' ' +
    pad2(d.getUTCHours()) + ':' + pad2(d.getUTCMinutes()) + ':' + pad2(d.getUTCSeconds());
}
function nowMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}
function randToken(len: number, rnd: () => number = Math.random): string {
  const a = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let s = '';
  for (let i = 0; i < len; i++) s += a[Math.floor(rnd() * a.length)];
  return s;
}
/** mulberry32: a small seeded PRNG, so that a failing run can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function isTrue(v: string | undefined): boolean {
  if (v === undefined) return false;
  const t = v.trim().toLowerCase();
  return t === 'true' || t === 'yes' || t === 'on' || t === 'enabled' || t === 'active' || t === 'allow' || (/^\d+$/.test(t) && parseInt(t, 10) > 0);
}

// ===========================================================================
// Caller profile (switch_caller_profile_event_set_data order)
// ===========================================================================

interface Profile {
  direction: string;
  logicalDirection: string;
  username?: string;
  dialplan: string;
  callerIdName: string;
  callerIdNumber: string;
  origCallerIdName: string;
  origCallerIdNumber: string;
  calleeIdName?: string;
  calleeIdNumber?: string;
  networkAddr?: string;
  ani: string;
  destinationNumber: string;
  uniqueId: string;
  source: string;
  context: string;
  channelName: string;
  withProfileIndex: boolean;
  created: number;
  answered: number;
  progress: number;
  progressMedia: number;
  hangup: number;
  bridged: number;
  hideName: boolean;
  hideNumber: boolean;
}

function profileHeaders(prefix: string, p: Profile): Header[] {
  const h: Header[] = [];
  const add = (n: string, v: string): void => {
    h.push([prefix + '-' + n, v]);
  };
  add('Direction', p.direction);
  add('Logical-Direction', p.logicalDirection);
  if (p.username !== undefined) add('Username', p.username);
  add('Dialplan', p.dialplan);
  add('Caller-ID-Name', p.callerIdName);
  add('Caller-ID-Number', p.callerIdNumber);
  add('Orig-Caller-ID-Name', p.origCallerIdName);
  add('Orig-Caller-ID-Number', p.origCallerIdNumber);
  if (p.calleeIdName !== undefined) add('Callee-ID-Name', p.calleeIdName);
  if (p.calleeIdNumber !== undefined) add('Callee-ID-Number', p.calleeIdNumber);
  if (p.networkAddr !== undefined) add('Network-Addr', p.networkAddr);
  add('ANI', p.ani);
  add('Destination-Number', p.destinationNumber);
  add('Unique-ID', p.uniqueId);
  add('Source', p.source);
  add('Context', p.context);
  add('Channel-Name', p.channelName);
  if (p.withProfileIndex) add('Profile-Index', '1');
  add('Profile-Created-Time', String(p.created));
  add('Channel-Created-Time', String(p.created));
  add('Channel-Answered-Time', String(p.answered));
  add('Channel-Progress-Time', String(p.progress));
  add('Channel-Progress-Media-Time', String(p.progressMedia));
  add('Channel-Hangup-Time', String(p.hangup));
  add('Channel-Transfer-Time', '0');
  add('Channel-Resurrect-Time', '0');
  add('Channel-Bridged-Time', String(p.bridged));
  add('Channel-Last-Hold', '0');
  add('Channel-Hold-Accum', '0');
  add('Screen-Bit', 'true');
  add('Privacy-Hide-Name', p.hideName ? 'true' : 'false');
  add('Privacy-Hide-Number', p.hideNumber ? 'true' : 'false');
  return h;
}

/** A header block with its plain serialisation cached (immutable once built). */
interface Block {
  readonly list: readonly Header[];
  readonly plain: string;
}
function block(list: Header[]): Block {
  let plain = '';
  for (const [n, v] of list) plain += plainHeaderLine(n, v);
  return { list, plain };
}
const EMPTY_BLOCK: Block = { list: [], plain: '' };

// ===========================================================================
// Events
// ===========================================================================

/** An event fired on the switch; serialisation is lazy and cached. */
export interface FiredEvent {
  readonly name: string;
  /** Unique-ID header (for the myevents filter), null if none. */
  readonly uniqueId: string | null;
  readonly application?: string;
  readonly hangupCause?: string;
  readonly body?: string;
  headers(): readonly Header[];
  /** text/event-plain body. */
  plain(): string;
  /** Case-insensitive header lookup (for `filter`). */
  get(name: string): string | undefined;
}

class BlocksEvent implements FiredEvent {
  private plainCache: string | null = null;
  private listCache: Header[] | null = null;
  constructor(
    readonly name: string,
    readonly uniqueId: string | null,
    private readonly blocks: readonly Block[],
    readonly body?: string,
    readonly application?: string,
    readonly hangupCause?: string,
  ) {}
  plain(): string {
    if (this.plainCache === null) {
      let s = '';
      for (const b of this.blocks) s += b.plain;
      this.plainCache = s + plainTail(this.body);
    }
    return this.plainCache;
  }
  headers(): readonly Header[] {
    if (this.listCache === null) {
      const l: Header[] = [];
      for (const b of this.blocks) for (const h of b.list) l.push(h);
      this.listCache = l;
    }
    return this.listCache;
  }
  get(name: string): string | undefined {
    const n = name.toLowerCase();
    for (const [k, v] of this.headers()) if (k.toLowerCase() === n) return v;
    return undefined;
  }
}

// ===========================================================================
// The switch
// ===========================================================================

interface Target {
  host: string;
  port: number;
}

/** A simulated FreeSWITCH instance. Calls placed through the same instance share events (like one real switch). */
export class FakeSwitch {
  readonly coreUuid: string = randomUUID();
  readonly hostname: string;
  readonly ipv4: string;
  readonly ipv6: string;
  private readonly startedAt = Date.now();
  private seq = 1000;
  private sessionIds = 0;
  /** @internal */ readonly listeners = new Set<Listener>();
  /** @internal */ readonly channels = new Map<string, CallerChannel>();
  private staticTop: Block;

  constructor(opts: { hostname?: string; ipv4?: string; ipv6?: string } = {}) {
    this.hostname = opts.hostname ?? 'vm';
    this.ipv4 = opts.ipv4 ?? '192.0.2.2';
    this.ipv6 = opts.ipv6 ?? 'fd00::2';
    this.staticTop = block([
      ['Core-UUID', this.coreUuid],
      ['FreeSWITCH-Hostname', this.hostname],
      ['FreeSWITCH-Switchname', this.hostname],
      ['FreeSWITCH-IPv4', this.ipv4],
      ['FreeSWITCH-IPv6', this.ipv6],
    ]);
  }

  /** @internal */ nextSessionId(): number {
    return ++this.sessionIds;
  }

  private dateSec = -1;
  private dateBlock: Block = EMPTY_BLOCK;

  /** @internal The common top of every event (Event-Name ... Event-Sequence). Date strings are cached per second. */
  topBlock(name: string, calling: readonly [string, string, string] | undefined): Block {
    const now = Date.now();
    const sec = Math.floor(now / 1000);
    if (sec !== this.dateSec) {
      this.dateSec = sec;
      this.dateBlock = block([['Event-Date-Local', fmtStamp(now)], ['Event-Date-GMT', new Date(now).toUTCString()]]);
    }
    const c = calling ?? ['switch_event.c', 'switch_event_fire_detailed', '0'];
    const tail: Header[] = [
      ['Event-Date-Timestamp', String(nowMicros())],
      ['Event-Calling-File', c[0]],
      ['Event-Calling-Function', c[1]],
      ['Event-Calling-Line-Number', c[2]],
      ['Event-Sequence', String(++this.seq)],
    ];
    const tailPlain = block(tail).plain;
    return {
      list: [['Event-Name', name], ...this.staticTop.list, ...this.dateBlock.list, ...tail],
      plain: plainHeaderLine('Event-Name', name) + this.staticTop.plain + this.dateBlock.plain + tailPlain,
    };
  }

  /** @internal Deliver an event to every listener (each applies its own subscription/myevents filter). */
  fire(ev: FiredEvent): void {
    for (const l of this.listeners) l.onEvent(ev);
  }

  uptimeSeconds(): number {
    return Math.floor((Date.now() - this.startedAt) / 1000);
  }

  /** Connect to the adapter exactly as FreeSWITCH's `socket` application does and run the script. */
  placeCall(target: Target, script: CallScript): Promise<SwitchCall> {
    return new Promise<SwitchCall>((resolve, reject) => {
      const socket = net.connect({ host: target.host, port: target.port });
      const onError = (err: Error): void => reject(err);
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        const listener = new Listener(this, socket, script);
        resolve(listener.handle);
      });
    });
  }
}

/** The process-wide default switch used by placeCall(). */
export const defaultSwitch = new FakeSwitch();

/** Place a call on the default switch (see FakeSwitch.placeCall). */
export function placeCall(target: Target, script: CallScript): Promise<SwitchCall> {
  return defaultSwitch.placeCall(target, script);
}

// ===========================================================================
// Output pipeline (chunking)
// ===========================================================================

class Output {
  private queue: Buffer[] = [];
  private pumping = false;
  private ending: (() => void) | null = null;
  private readonly rnd: () => number;
  bytes = 0;

  constructor(
    private readonly socket: net.Socket,
    private readonly mode: Chunking,
    seed: number,
  ) {
    this.rnd = prng(seed);
  }

  write(s: string): void {
    if (this.socket.destroyed || this.ending) return;
    const b = Buffer.from(s, 'utf8');
    this.bytes += b.length;
    if (this.mode === 'whole') {
      this.socket.write(b);
      return;
    }
    if (this.mode === 'split') {
      // cut every logical write once at a random point (often inside the header block)
      const cut = 1 + Math.floor(this.rnd() * Math.max(1, b.length - 1));
      this.queue.push(b.subarray(0, cut));
      if (cut < b.length) this.queue.push(b.subarray(cut));
    } else {
      let off = 0;
      while (off < b.length) {
        const r = this.rnd();
        const n = r < 0.3 ? 1 : 1 + Math.floor(this.rnd() * 96);
        this.queue.push(b.subarray(off, Math.min(b.length, off + n)));
        off += n;
      }
    }
    this.pump();
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    const step = (): void => {
      const chunk = this.queue.shift();
      if (!chunk || this.socket.destroyed) {
        this.pumping = false;
        const e = this.ending;
        if (e && this.queue.length === 0) e();
        return;
      }
      this.socket.write(chunk);
      setImmediate(step);
    };
    setImmediate(step);
  }

  /** Flush pending chunks, then end the TCP connection (FreeSWITCH closes after the disconnect notice). */
  end(): void {
    if (this.ending) return;
    const finish = (): void => {
      if (!this.socket.destroyed) this.socket.end();
      setTimeout(() => {
        if (!this.socket.destroyed) this.socket.destroy();
      }, 200).unref();
    };
    this.ending = finish;
    if (!this.pumping || this.queue.length === 0) finish();
  }
}

// ===========================================================================
// Listener: one outbound-socket connection (mod_event_socket listener_t)
// ===========================================================================

/** @internal */
class Listener {
  readonly handle: SwitchCall;
  readonly channel: CallerChannel;
  private readonly out: Output;
  private readonly parser = new CommandParser();
  private readonly openedAt = Date.now();
  private readonly commands: ReceivedCommand[] = [];
  private readonly eventsSent: string[] = [];
  private readonly framesSent: SentFrame[] = [];
  private firstPacketDone = false;
  private firstTimer: NodeJS.Timeout | null = null;
  connected = false;
  private eventsOn = false;
  private myevents = false;
  private format: EventFormat = 'plain';
  private readonly eventList = new Set<string>();
  private readonly subclasses = new Set<string>();
  private filters: Header[] = [];
  linger = false;
  lingerTime = -1;
  private lingerTimer: NodeJS.Timeout | null = null;
  private discoHandled = false;
  private running = true;
  private closedFlag = false;
  private repliesAfterConnect = 0;
  private readonly parkAfter: number;
  private readonly parkExplicit: boolean;
  private resolveClosed!: () => void;

  constructor(
    readonly sw: FakeSwitch,
    readonly socket: net.Socket,
    readonly script: CallScript,
  ) {
    socket.setNoDelay(true);
    this.out = new Output(socket, script.chunking ?? 'whole', script.seed ?? 1);
    this.parkAfter = script.parkAfterReplies ?? 3;
    this.parkExplicit = script.parkAfterReplies !== undefined;
    this.channel = new CallerChannel(sw, this, script);
    const closed = new Promise<void>((r) => {
      this.resolveClosed = r;
    });
    const self = this;
    this.handle = {
      uuid: this.channel.uuid,
      commands: this.commands,
      eventsSent: this.eventsSent,
      framesSent: this.framesSent,
      hangup: (cause?: string) => self.channel.externalHangup(cause),
      closed,
      channelDone: this.channel.done,
      socket,
      variables: () => self.channel.variableMap(),
      get hangupCause() {
        return self.channel.hangupCause;
      },
      get socketLostWhileUp() {
        return self.channel.socketLostWhileUp;
      },
      get bridges() {
        return self.channel.bridges;
      },
    };
    sw.listeners.add(this);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', () => {
      /* ECONNRESET etc.: treated like a close */
    });
    socket.on('close', () => this.onSocketClosed());
    const t = (script.firstCommandTimeoutMs ?? 25000) * (script.timeScale ?? 1);
    this.firstTimer = setTimeout(() => {
      // read_packet(listener, &ievent, 25) timed out: "Socket Error!" -> listener ends
      this.firstTimer = null;
      if (!this.firstPacketDone) this.finish();
    }, t);
    this.firstTimer.unref();
  }

  // ----- output ---------------------------------------------------------

  private at(): number {
    return Date.now() - this.openedAt;
  }

  private record(f: Omit<SentFrame, 'at'>): void {
    const full: SentFrame = { ...f, at: this.at() };
    this.framesSent.push(full);
    this.eventsSent.push(full.label);
  }

  private sendReply(text: string): void {
    if (!this.canWrite()) return;
    this.out.write(commandReply(text));
    this.record({ kind: 'reply', label: 'reply:' + text, replyText: text });
  }

  private canWrite(): boolean {
    return !this.closedFlag && this.running && !this.socket.destroyed;
  }

  /** An event fired somewhere on the switch (event_handler() + the listener's queue). */
  onEvent(ev: FiredEvent): void {
    if (!this.canWrite() || !this.eventsOn) return;
    let send = false;
    if (this.eventList.has('ALL')) send = true;
    else if (this.eventList.has(ev.name)) send = true;
    if (send && this.filters.length > 0) {
      send = false;
      for (const [h, v] of this.filters) {
        const hv = ev.get(h);
        if (hv !== undefined && hv.toLowerCase() === v.toLowerCase()) {
          send = true;
          break;
        }
      }
    }
    if (send && this.myevents) {
      if (!ev.uniqueId || ev.uniqueId !== this.channel.uuid) send = false;
    }
    if (!send) return;
    let ser: string;
    if (this.format === 'plain') ser = ev.plain();
    else if (this.format === 'json') ser = serializeJson(ev.headers(), ev.body);
    else ser = serializeXml(ev.headers(), ev.body);
    this.out.write(eventFrame(ser, this.format));
    const f: Omit<SentFrame, 'at'> = { kind: 'event', label: ev.name, eventName: ev.name };
    if (ev.application !== undefined) f.application = ev.application;
    if (ev.hangupCause !== undefined) f.hangupCause = ev.hangupCause;
    this.record(f);
  }

  /**
   * The channel went down (read_packet(): switch_channel_down() && !LFLAG_HANDLE_DISCO).
   * With linger: the linger notice, the socket stays open. Without: disconnect notice and close.
   */
  channelWentDown(): void {
    if (this.discoHandled || !this.canWrite()) return;
    this.discoHandled = true;
    if (this.linger) {
      this.out.write(lingerNotice(this.channel.uuid, this.channel.channelName, this.lingerTime));
      this.record({ kind: 'disconnect-notice', label: 'disconnect-notice:linger' });
      if (this.lingerTime >= 0) {
        this.lingerTimer = setTimeout(() => this.finish(), this.lingerTime * 1000 * (this.script.timeScale ?? 1));
        this.lingerTimer.unref();
      }
    } else {
      this.finish();
    }
  }

  /** listener_run() "done:" – flush nothing further, send the disconnect notice, close. */
  private finish(): void {
    if (!this.running) return;
    this.running = false;
    if (this.firstTimer) clearTimeout(this.firstTimer);
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    if (!this.socket.destroyed && !this.closedFlag) {
      this.out.write(disconnectNotice(this.channel.uuid, GOODBYE));
      this.record({ kind: 'disconnect-notice', label: 'disconnect-notice:disconnect' });
      this.out.end();
    }
    this.sw.listeners.delete(this);
    this.channel.socketGone();
  }

  private onSocketClosed(): void {
    this.closedFlag = true;
    if (this.firstTimer) clearTimeout(this.firstTimer);
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    if (this.running) {
      this.running = false;
      this.sw.listeners.delete(this);
      this.channel.socketGone();
    }
    this.resolveClosed();
  }

  // ----- input ------------------------------------------------------------

  private onData(d: Buffer): void {
    if (!this.running) return;
    for (const cmd of this.parser.push(d)) {
      if (!this.running) break;
      const rc: ReceivedCommand = { raw: cmd.raw, name: cmd.name, args: cmd.args, headers: cmd.headers, at: this.at() };
      if (cmd.body !== undefined) rc.body = cmd.body;
      this.commands.push(rc);
      this.handleCommand(cmd);
    }
  }

  private handleCommand(cmd: ParsedCommand): void {
    if (!this.firstPacketDone) {
      // listener_run(): the first packet is parsed, but its reply (if any) is never sent;
      // only "connect" answers, by writing the CHANNEL_DATA block itself.
      this.firstPacketDone = true;
      if (this.firstTimer) {
        clearTimeout(this.firstTimer);
        this.firstTimer = null;
      }
      this.parseCommand(cmd, true);
      return;
    }
    this.parseCommand(cmd, false);
  }

  /** Port of parse_command() for an outbound (session) listener in async full mode. */
  private parseCommand(cmd: ParsedCommand, suppressReply: boolean): void {
    const line = cmd.line;
    const lc = line.toLowerCase();
    let reply: string | null = null;
    let after: (() => void) | null = null;
    let isSendmsg = false;

    const done = (): void => {
      if (reply !== null && !suppressReply) {
        this.sendReply(reply === '' ? '-ERR command not found' : reply);
        if (this.connected) this.countReply(isSendmsg);
      }
      if (after) after();
    };

    if (lc.startsWith('exit') || lc.startsWith('...')) {
      reply = '+OK bye';
      after = () => this.finish();
      return done();
    }
    if (lc.startsWith('filter')) {
      reply = this.filterCommand(line.slice(6));
      return done();
    }
    if (lc.startsWith('resume')) {
      this.channel.setVar('socket_resume', 'true');
      reply = '+OK';
      return done();
    }
    if (lc.startsWith('connect')) {
      this.connected = true;
      if (!this.socket.destroyed) {
        this.out.write(connectReply(this.channel.channelDataHeaders()));
        this.record({ kind: 'connect-reply', label: 'connect-reply' });
      }
      if (this.parkAfter <= 0) this.channel.startPark();
      else if (this.parkExplicit) {
        // an explicit count never starves queued sendmsg's: the socket app parks shortly after connect anyway
        setTimeout(() => this.channel.startPark(), 100).unref();
      }
      return;
    }
    if (lc.startsWith('getvar')) {
      const sp = line.indexOf(' ');
      reply = sp < 0 ? '' : this.channel.getVar(line.slice(sp + 1)) ?? '';
      return done();
    }
    if (lc.startsWith('myevents')) {
      if (this.myevents) {
        reply = '-ERR aready enabled.';
        return done();
      }
      for (const e of MYEVENTS_LIST) this.eventList.add(e);
      this.myevents = true;
      this.eventsOn = true;
      if (line.includes('xml') || line.includes('XML')) this.format = 'xml';
      if (line.includes('json') || line.includes('JSON')) this.format = 'json';
      reply = '+OK Events Enabled';
      return done();
    }
    if (lc.startsWith('divert_events')) {
      const v = line.slice(13).trim();
      reply = v === '' ? '-ERR missing value.' : v.toLowerCase() === 'on' ? '+OK events diverted' : '+OK events not diverted';
      return done();
    }
    if (lc.startsWith('sendmsg')) {
      isSendmsg = true;
      let uuid: string | undefined = line.slice(7).trim();
      if (uuid === '') uuid = getHeader(cmd, 'session-id');
      if (uuid !== undefined && uuid === this.channel.uuid) uuid = undefined;
      if (uuid === undefined || uuid === '') {
        reply = '+OK';
        after = () => this.channel.queuePrivate(cmd);
      } else {
        const other = this.sw.channels.get(uuid);
        if (other) {
          reply = '+OK';
          after = () => other.queuePrivate(cmd);
        } else {
          reply = '-ERR invalid session id [' + uuid + ']';
        }
      }
      return done();
    }
    // LFLAG_FULL is set ("async full"): everything below is allowed
    if (lc.startsWith('sendevent')) {
      reply = '+OK ' + randomUUID();
      return done();
    }
    if (lc.startsWith('api ')) {
      const apiCmd = line.slice(4).trim();
      const body = this.api(apiCmd);
      if (!suppressReply && this.canWrite()) {
        this.out.write(apiResponse(body.text));
        this.record({ kind: 'api-response', label: 'api-response', replyText: body.text.length === 0 ? '-ERR no reply\n' : body.text });
        if (this.connected) this.countReply(false);
      }
      if (body.after) setImmediate(body.after);
      return;
    }
    if (lc.startsWith('bgapi ')) {
      const apiCmd = line.slice(6).trim();
      const jobUuid = getHeader(cmd, 'job-uuid') ?? randomUUID();
      if (!suppressReply && this.canWrite()) {
        this.out.write(bgapiReply(jobUuid));
        this.record({ kind: 'reply', label: 'reply:+OK Job-UUID: ' + jobUuid, replyText: '+OK Job-UUID: ' + jobUuid });
        if (this.connected) this.countReply(false);
      }
      setImmediate(() => {
        const r = this.api(apiCmd);
        if (r.after) r.after();
        const sp = apiCmd.indexOf(' ');
        const hdrs: Header[] = [['Job-UUID', jobUuid], ['Job-Command', sp < 0 ? apiCmd : apiCmd.slice(0, sp)]];
        if (sp >= 0) hdrs.push(['Job-Command-Arg', apiCmd.slice(sp + 1)]);
        const top = this.sw.topBlock('BACKGROUND_JOB', CALLING.BACKGROUND_JOB);
        this.sw.fire(new BlocksEvent('BACKGROUND_JOB', null, [top, block(hdrs)], r.text.length === 0 ? 'Command returned no output!' : r.text));
      });
      return;
    }
    if (lc.startsWith('log')) {
      const lvl = line.slice(3).trim();
      const levels: Record<string, number> = { console: 0, alert: 1, crit: 2, err: 3, error: 3, warning: 4, notice: 5, info: 6, debug: 7 };
      const n = lvl === '' ? 7 : /^\d+$/.test(lvl) ? parseInt(lvl, 10) : levels[lvl.toLowerCase()];
      reply = n === undefined ? '-ERR invalid log level' : '+OK log level ' + lvl + ' [' + n + ']';
      return done();
    }
    if (lc.startsWith('linger')) {
      const arg = line.slice(6);
      if (arg.startsWith(' ') && arg.length > 1) {
        this.lingerTime = parseInt(arg.slice(1), 10) || 0;
        reply = '+OK will linger ' + this.lingerTime + ' seconds';
      } else {
        this.lingerTime = -1;
        reply = '+OK will linger';
      }
      this.linger = true;
      return done();
    }
    if (lc.startsWith('nolinger')) {
      this.linger = false;
      reply = '+OK will not linger';
      return done();
    }
    if (lc.startsWith('nolog')) {
      reply = '-ERR not loging';
      return done();
    }
    if (lc.startsWith('event')) {
      reply = this.eventCommand(line.slice(5));
      return done();
    }
    if (lc.startsWith('nixevent')) {
      reply = this.nixeventCommand(line.slice(8));
      return done();
    }
    if (lc.startsWith('noevents')) {
      if (this.eventsOn) {
        this.eventsOn = false;
        this.eventList.clear();
        this.subclasses.clear();
        reply = '+OK no longer listening for events';
      } else {
        reply = '-ERR not listening for events';
      }
      return done();
    }
    reply = '-ERR command not found';
    return done();
  }

  private countReply(isSendmsg: boolean): void {
    this.repliesAfterConnect++;
    if (this.repliesAfterConnect >= this.parkAfter || (isSendmsg && !this.parkExplicit)) this.channel.startPark();
  }

  /** "event [plain|json|xml] NAME ..." – additive, CUSTOM subclasses after CUSTOM. */
  private eventCommand(rest: string): string {
    const words = rest.trim().split(' ').filter((w) => w !== '');
    let keys = 0;
    let custom = false;
    words.forEach((w, i) => {
      const lw = w.toLowerCase();
      if (i === 0 && (lw === 'plain' || lw === 'json' || lw === 'xml')) {
        this.format = lw;
        return;
      }
      if (custom) {
        this.subclasses.add(w);
        return;
      }
      const name = w.toUpperCase().replace(/^SWITCH_EVENT_/, '');
      if (EVENT_NAMES.has(name)) {
        keys++;
        this.eventList.add(name);
        if (name === 'CUSTOM') custom = true;
      }
    });
    if (keys === 0) return '-ERR no keywords supplied';
    this.eventsOn = true;
    return '+OK event listener enabled ' + this.format;
  }

  private nixeventCommand(rest: string): string {
    const words = rest.trim().split(' ').filter((w) => w !== '');
    let keys = 0;
    let custom = false;
    for (const w of words) {
      if (custom) {
        this.subclasses.delete(w);
        continue;
      }
      const name = w.toUpperCase();
      if (!EVENT_NAMES.has(name)) continue;
      keys++;
      if (name === 'CUSTOM') custom = true;
      else if (name === 'ALL') this.eventList.clear();
      else {
        if (this.eventList.has('ALL')) {
          this.eventList.delete('ALL');
          for (const e of EVENT_NAMES) if (e !== 'ALL') this.eventList.add(e);
        }
        this.eventList.delete(name);
      }
    }
    if (keys === 0) return '-ERR no keywords supplied';
    this.eventsOn = true;
    return '+OK events nixed';
  }

  private filterCommand(rest: string): string {
    const t = rest.trim();
    const parts = t.split(' ');
    const first = parts[0] ?? '';
    if (first.toLowerCase() === 'delete' && parts.length > 1) {
      const h = parts[1] ?? '';
      const v = parts.slice(2).join(' ');
      if (h.toLowerCase() === 'all') this.filters = [];
      else this.filters = this.filters.filter(([fh, fv]) => !(fh === h && (v === '' || fv === v)));
      return '+OK filter deleted. [' + h + '][' + (v === '' ? '(null)' : v) + ']';
    }
    let h = first;
    let rest2 = parts.slice(1);
    if (h.toLowerCase() === 'add') {
      h = rest2[0] ?? '';
      rest2 = rest2.slice(1);
    }
    if (h === '' || rest2.length === 0) return '-ERR invalid syntax';
    const v = rest2.join(' ');
    this.filters.push([h, v]);
    return '+OK filter added. [' + h + ']=[' + v + ']';
  }

  // ----- api ---------------------------------------------------------------

  /** A few API commands; anything else answers like switch_api_execute() for an unknown command. */
  private api(cmdline: string): { text: string; after?: () => void } {
    const sp = cmdline.indexOf(' ');
    const name = (sp < 0 ? cmdline : cmdline.slice(0, sp)).toLowerCase();
    const arg = sp < 0 ? '' : cmdline.slice(sp + 1).trim();
    const args = arg.split(' ').filter((a) => a !== '');
    switch (name) {
      case 'uptime':
        return { text: this.sw.uptimeSeconds() + '\n' };
      case 'hostname':
        return { text: this.sw.hostname };
      case 'version':
        return { text: 'FreeSWITCH Version 1.10.12-release~64bit ( 64bit)\n' };
      case 'status':
        return {
          text:
            'UP 0 years, 0 days, 0 hours, 0 minutes, ' + this.sw.uptimeSeconds() + ' seconds, 0 milliseconds, 0 microseconds\n' +
            'FreeSWITCH (Version 1.10.12-release  64bit) is ready\n' +
            this.sw.channels.size + ' session(s) since startup\n' +
            this.sw.channels.size + ' session(s) - peak 1, last 5min 1 \n' +
            '0 session(s) per Sec out of max 30, peak 1, last 5min 1 \n' +
            '1000 session(s) max\nmin idle cpu 0.00/99.00\nCurrent Stack Size/Max 240K/8192K\n',
        };
      case 'echo':
      case 'eval':
        return { text: arg };
      case 'global_getvar':
        return { text: '' };
      case 'user_data': {
        // user_data <user@domain> <var|param|attr> <name>  [MC]
        const who = args[0] ?? '';
        const key = args[2] ?? '';
        const dir = this.script.directory ?? {};
        if (key.toLowerCase() === 'effective_caller_id_name' && who in dir) return { text: dir[who] ?? '' };
        return { text: '' };
      }
      case 'user_exists': {
        // user_exists id <user> <domain>
        const who = (args[1] ?? '') + '@' + (args[2] ?? '');
        return { text: who in (this.script.directory ?? {}) ? 'true' : 'false' };
      }
      case 'uuid_exists':
        return { text: this.findChannel(args[0])?.up ? 'true' : 'false' };
      case 'uuid_getvar': {
        const ch = this.findChannel(args[0]);
        if (!ch) return { text: '-ERR No such channel!\n' };
        return { text: ch.getVar(args[1] ?? '') ?? '_undef_' };
      }
      case 'uuid_setvar': {
        const ch = this.findChannel(args[0]);
        if (!ch) return { text: '-ERR No such channel!\n' };
        ch.setVar(args[1] ?? '', args.length > 2 ? args.slice(2).join(' ') : null);
        return { text: '+OK\n' };
      }
      case 'uuid_kill': {
        const ch = this.findChannel(args[0]);
        if (!ch || !ch.up) return { text: '-ERR No such channel!\n' };
        const cause = normalizeCause(args[1] ?? 'NORMAL_CLEARING');
        return { text: '+OK\n', after: () => ch.externalHangup(cause) };
      }
      default:
        return { text: '-ERR ' + name + ' Command not found!\n' };
    }
  }

  private findChannel(uuid: string | undefined): CallerChannel | undefined {
    if (uuid === undefined) return undefined;
    return this.sw.channels.get(uuid);
  }
}

// ===========================================================================
// The caller channel (the session the socket controls)
// ===========================================================================

interface DialLeg {
  /** The leg dial string without [..] vars. */
  dial: string;
  vars: Record<string, string>;
}
interface DialGroup {
  legs: DialLeg[];
}

function splitTop(s: string, sep: string): string[] {
  // split on sep outside {} [] <> and quotes
  const out: string[] = [];
  let depth = 0;
  let quote = '';
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (quote) {
      if (c === quote) quote = '';
      cur += c;
      continue;
    }
    if (c === "'" || c === '"') {
      quote = c;
      cur += c;
      continue;
    }
    if (c === '\\' && i + 1 < s.length && s[i + 1] === sep) {
      cur += sep;
      i++;
      continue;
    }
    if (c === '{' || c === '[' || c === '<') depth++;
    if (c === '}' || c === ']' || c === '>') depth = Math.max(0, depth - 1);
    if (c === sep && depth === 0) {
      out.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  out.push(cur);
  return out;
}

function parseVarList(inner: string, into: Record<string, string>): void {
  for (const kv of splitTop(inner, ',')) {
    const eq = kv.indexOf('=');
    if (eq < 0) continue;
    let v = kv.slice(eq + 1).trim();
    if ((v.startsWith("'") && v.endsWith("'")) || (v.startsWith('"') && v.endsWith('"'))) v = v.slice(1, -1);
    into[kv.slice(0, eq).trim()] = v;
  }
}

/** Parse a bridge dial string: {global}[leg]a,[leg]b|c ... */
export function parseDialString(data: string): { globals: Record<string, string>; groups: DialGroup[] } {
  let s = data.trim();
  const globals: Record<string, string> = {};
  while (s.startsWith('{') || s.startsWith('<')) {
    const close = s.startsWith('{') ? '}' : '>';
    const end = s.indexOf(close);
    if (end < 0) break;
    parseVarList(s.slice(1, end), globals);
    s = s.slice(end + 1).trim();
  }
  const groups: DialGroup[] = [];
  for (const g of splitTop(s.replace(/:_:/g, ','), '|')) {
    const legs: DialLeg[] = [];
    for (let l of splitTop(g, ',')) {
      l = l.trim();
      if (l === '') continue;
      const vars: Record<string, string> = {};
      while (l.startsWith('[') || l.startsWith('{')) {
        const close = l.startsWith('[') ? ']' : '}';
        const end = l.indexOf(close);
        if (end < 0) break;
        parseVarList(l.slice(1, end), vars);
        l = l.slice(end + 1).trim();
      }
      legs.push({ dial: l, vars });
    }
    if (legs.length > 0) groups.push({ legs });
  }
  return { globals, groups };
}

/** The number a leg dials: user/2003@dom -> 2003, sofia/gateway/x/491701@h -> 491701, loopback/2000/targets -> 2000. */
export function targetKey(dial: string): string {
  const parts = dial.split('/');
  const tech = (parts[0] ?? '').toLowerCase();
  if (tech === 'loopback') return parts[1] ?? '';
  const last = parts[parts.length - 1] ?? '';
  const at = last.indexOf('@');
  return at < 0 ? last : last.slice(0, at);
}

type LegEndpoint = 'loopback' | 'sofia' | 'user' | 'error';

interface BLeg {
  uuid: string;
  dial: string;
  key: string;
  endpoint: LegEndpoint;
  behaviour: TargetBehaviour;
  vars: Record<string, string>;
  channelName: string;
  context: string;
  calleeIdName: string;
  calleeIdNumber: string;
  /** false when no channel was ever created (local failure: error/, user not registered) */
  hasChannel: boolean;
  created: number;
  answeredAt: number;
  progressAt: number;
  state: 'setup' | 'ringing' | 'answered' | 'down';
  cause: string | null;
}

type GroupResult =
  | { kind: 'answered'; winner: BLeg }
  | { kind: 'failed'; cause: string }
  | { kind: 'timeout' }
  | { kind: 'cancel' };

/** @internal */
class CallerChannel {
  readonly uuid: string;
  readonly channelName: string;
  readonly isSip: boolean;
  private readonly spec: ChannelSpec;
  private readonly ts: number;
  private readonly parkTickMs: number;
  private readonly profile: Profile;
  private other: Profile | null = null;
  private readonly vars = new Map<string, string>();
  private readonly varLines = new Map<string, string>();
  private varsBlock: Block | null = null;
  private profileBlock: Block | null = null;
  private channelProfileBlock: Block | null = null;
  private otherBlock: Block | null = null;

  up = true;
  hangupCause: string | null = null;
  private answerState: 'ringing' | 'early' | 'answered' | 'hangup' = 'ringing';
  private callState = 'RINGING';
  private stateName = 'CS_EXECUTE';
  private stateNumber = 4;
  private ringReady = false;
  private bridgedAt = 0;
  private lastApp = 'socket';
  private lastArg = SOCKET_APP_DATA;
  socketLostWhileUp = false;
  readonly bridges: string[] = [];

  private parked = false;
  private controlled = true;
  private readonly queue: ParsedCommand[] = [];
  private tickTimer: NodeJS.Timeout | null = null;
  private appRunning = false;
  private draining = false;
  private tornDown = false;
  private noticeAfterComplete = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private downWaiters: Array<() => void> = [];
  private resolveDone!: (cause: string) => void;
  readonly done: Promise<string>;
  private readonly rnd = Math.random;

  constructor(
    private readonly sw: FakeSwitch,
    private readonly listener: Listener,
    private readonly script: CallScript,
  ) {
    this.spec = script.channel;
    this.ts = script.timeScale ?? 1;
    this.parkTickMs = script.parkTickMs ?? 20;
    this.uuid = this.spec.uuid ?? randomUUID();
    this.isSip = this.spec.sip === true;
    this.done = new Promise<string>((r) => {
      this.resolveDone = r;
    });
    const num = this.spec.callerNumber;
    const name = this.spec.callerName ?? num;
    const dest = this.spec.destination;
    const context = this.spec.context ?? 'public';
    const created = nowMicros();
    this.channelName = this.isSip ? 'sofia/lo-in/' + num + '@127.0.0.1' : 'loopback/' + dest + '-b';
    this.profile = {
      direction: 'inbound',
      logicalDirection: 'inbound',
      dialplan: this.isSip ? 'XML' : 'xml',
      callerIdName: name,
      callerIdNumber: num,
      origCallerIdName: name,
      origCallerIdNumber: num,
      ani: num,
      destinationNumber: dest,
      uniqueId: this.uuid,
      source: this.isSip ? 'mod_sofia' : 'mod_loopback',
      context,
      channelName: this.channelName,
      withProfileIndex: true,
      created,
      answered: 0,
      progress: 0,
      progressMedia: 0,
      hangup: 0,
      bridged: 0,
      hideName: this.spec.hideName === true,
      hideNumber: this.spec.hideNumber === true,
    };
    if (this.isSip) {
      this.profile.username = num;
      this.profile.networkAddr = '127.0.0.1';
    } else {
      // mod_loopback's B side carries the A side's callee id ("Outbound Call" / context) [T answered-normal]
      this.profile.calleeIdName = 'Outbound Call';
      this.profile.calleeIdNumber = context;
    }
    this.initVars(num, name, dest, created);
    sw.channels.set(this.uuid, this);
  }

  // ----- variables ------------------------------------------------------------

  private initVars(num: string, name: string, dest: string, created: number): void {
    const sid = String(this.sw.nextSessionId());
    const v: Array<[string, string]> = [];
    if (this.isSip) {
      const callId = randomUUID().slice(0, 8) + '-632d-1240-20a4-a29a517ad9dc';
      const fromTag = randToken(13, this.rnd);
      const branch = 'z9hG4bK' + randToken(13, this.rnd);
      const hide = this.spec.hideNumber === true;
      v.push(
        ['direction', 'inbound'], ['uuid', this.uuid], ['session_id', sid],
        ['sip_from_user', num], ['sip_from_uri', num + '@127.0.0.1'], ['sip_from_host', '127.0.0.1'],
        ['video_media_flow', 'disabled'], ['text_media_flow', 'disabled'], ['channel_name', this.channelName],
        ['sip_call_id', callId], ['sip_local_network_addr', '127.0.0.1'], ['sip_network_ip', '127.0.0.1'],
        ['sip_network_port', '5091'], ['sip_invite_stamp', String(created)], ['sip_received_ip', '127.0.0.1'],
        ['sip_received_port', '5091'], ['sip_via_protocol', 'udp'], ['sip_from_user_stripped', num],
        ['sip_from_tag', fromTag], ['sofia_profile_name', 'lo-in'], ['sofia_profile_url', 'sip:mod_sofia@127.0.0.1:5090'],
        ['recovery_profile_name', 'lo-in'],
      );
      if (hide) {
        // Privacy: id + P-Asserted-Identity: the real number still arrives [F]
        v.push(['sip_P-Asserted-Identity', '"' + name + '" <sip:' + num + '@127.0.0.1>'], ['sip_Privacy', 'id'], ['sip_cid_type', 'pid']);
      } else {
        v.push(
          ['sip_Remote-Party-ID', '"' + name + '" <sip:' + num + '@127.0.0.1>;party=calling;screen=yes;privacy=off'],
          ['sip_cid_type', 'rpid'],
        );
      }
      v.push(
        ['sip_full_via', 'SIP/2.0/UDP 127.0.0.1:5091;rport=5091;branch=' + branch],
        ['sip_from_display', name],
        ['sip_full_from', '"' + name + '" <sip:' + num + '@127.0.0.1>;tag=' + fromTag],
        ['sip_full_to', '<sip:' + dest + '@127.0.0.1:5090>'],
        ['sip_allow', 'INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, INFO, UPDATE, REGISTER, REFER, NOTIFY'],
        ['sip_req_user', dest], ['sip_req_port', '5090'], ['sip_req_uri', dest + '@127.0.0.1:5090'], ['sip_req_host', '127.0.0.1'],
        ['sip_to_user', dest], ['sip_to_port', '5090'], ['sip_to_uri', dest + '@127.0.0.1:5090'], ['sip_to_host', '127.0.0.1'],
        ['sip_contact_user', 'mod_sofia'], ['sip_contact_port', '5091'], ['sip_contact_uri', 'mod_sofia@127.0.0.1:5091'],
        ['sip_contact_host', '127.0.0.1'], ['sip_user_agent', 'FreeSWITCH-mod_sofia/1.10.12-release~64bit'],
        ['sip_via_host', '127.0.0.1'], ['sip_via_port', '5091'], ['sip_via_rport', '5091'], ['max_forwards', '70'],
        ['switch_r_sdp', 'v=0\r\no=FreeSWITCH 1795565024 1795565025 IN IP4 127.0.0.1\r\ns=FreeSWITCH\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 16738 RTP/AVP 0 8 101 13\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=rtpmap:13 CN/8000\r\na=ptime:20\r\n'],
        ['ep_codec_string', 'CORE_PCM_MODULE.PCMU@8000h@20i@64000b,CORE_PCM_MODULE.PCMA@8000h@20i@64000b'],
        ['rtp_use_codec_string', 'PCMU,PCMA'], ['remote_video_media_flow', 'inactive'], ['remote_text_media_flow', 'inactive'],
        ['remote_audio_media_flow', 'sendrecv'], ['audio_media_flow', 'sendrecv'], ['remote_media_ip', '127.0.0.1'],
        ['remote_media_port', '16738'], ['rtp_audio_recv_pt', '0'], ['rtp_use_codec_name', 'PCMU'], ['rtp_use_codec_rate', '8000'],
        ['rtp_use_codec_ptime', '20'], ['rtp_use_codec_channels', '1'], ['rtp_last_audio_codec_string', 'PCMU@8000h@20i@1c'],
        ['read_codec', 'PCMU'], ['original_read_codec', 'PCMU'], ['read_rate', '8000'], ['original_read_rate', '8000'],
        ['write_codec', 'PCMU'], ['write_rate', '8000'], ['dtmf_type', 'rfc2833'], ['endpoint_disposition', 'RECEIVED'],
      );
    } else {
      const orig = randomUUID();
      v.push(
        ['direction', 'inbound'], ['uuid', this.uuid], ['session_id', sid], ['channel_name', this.channelName],
        ['read_codec', 'L16'], ['read_rate', '8000'], ['write_codec', 'L16'], ['write_rate', '8000'],
        ['origination_uuid', orig], ['origination_caller_id_number', num], ['origination_caller_id_name', name],
        ['other_loopback_leg_uuid', orig], ['loopback_leg', 'B'],
      );
    }
    v.push(['DP_MATCH', 'ARRAY::' + dest + '|:' + dest], ['call_uuid', this.uuid], ['loopback_no_pre_answer', 'true']);
    const extra = this.spec.variables ?? {};
    const inTemplate = new Set(v.map(([k]) => k));
    for (let i = 0; i < v.length; i++) {
      const e = v[i] as [string, string];
      const x = extra[e[0]];
      if (x !== undefined) v[i] = [e[0], x];
    }
    for (const [k, x] of Object.entries(extra)) if (!inTemplate.has(k)) v.push([k, x]);
    v.push(['current_application_data', SOCKET_APP_DATA], ['current_application', 'socket'], ['socket_host', '127.0.0.1']);
    for (const [k, x] of v) this.vars.set(k, x);
  }

  /** switch_channel_set_variable(): delete + append (a re-set moves the variable to the end); null deletes. */
  setVar(name: string, value: string | null): void {
    if (name === '') return;
    this.vars.delete(name);
    this.varLines.delete(name);
    if (value !== null && value !== '') this.vars.set(name, value);
    this.varsBlock = null;
  }

  /** Append to an ARRAY:: variable (switch_channel_add_variable_var_check(..., SWITCH_STACK_PUSH)). */
  private pushVar(name: string, value: string): void {
    const cur = this.vars.get(name);
    if (cur === undefined) {
      this.vars.set(name, value);
    } else {
      const items = cur.startsWith('ARRAY::') ? cur.slice(7).split('|:') : [cur];
      items.push(value);
      this.vars.set(name, 'ARRAY::' + items.join('|:'));
    }
    this.varLines.delete(name);
    this.varsBlock = null;
  }

  getVar(name: string): string | undefined {
    return this.vars.get(name);
  }

  variableMap(): Record<string, string> {
    return Object.fromEntries(this.vars);
  }

  private getVarsBlock(): Block {
    if (this.varsBlock === null) {
      const list: Header[] = [];
      let plain = '';
      for (const [k, v] of this.vars) {
        const n = 'variable_' + k;
        list.push([n, v]);
        let line = this.varLines.get(k);
        if (line === undefined) {
          line = plainHeaderLine(n, v);
          this.varLines.set(k, line);
        }
        plain += line;
      }
      this.varsBlock = { list, plain };
    }
    return this.varsBlock;
  }

  private touchProfile(): void {
    this.profileBlock = null;
    this.channelProfileBlock = null;
  }

  private getProfileBlock(): Block {
    if (this.profileBlock === null) this.profileBlock = block(profileHeaders('Caller', this.profile));
    return this.profileBlock;
  }

  private getOtherBlock(): Block {
    if (this.other === null) return EMPTY_BLOCK;
    if (this.otherBlock === null) this.otherBlock = block([['Other-Type', 'originatee'], ...profileHeaders('Other-Leg', this.other)]);
    return this.otherBlock;
  }

  private stateBlock(): Block {
    const h: Header[] = [
      ['Channel-State', this.stateName],
      ['Channel-Call-State', this.callState],
      ['Channel-State-Number', String(this.stateNumber)],
      ['Channel-Name', this.channelName],
      ['Unique-ID', this.uuid],
      ['Call-Direction', 'inbound'],
      ['Presence-Call-Direction', 'inbound'],
      ['Channel-HIT-Dialplan', 'true'],
      ['Channel-Call-UUID', this.uuid],
      ['Answer-State', this.answerState],
    ];
    if (this.hangupCause !== null) h.push(['Hangup-Cause', this.hangupCause]);
    if (this.isSip) {
      h.push(['Channel-Read-Codec-Name', 'PCMU'], ['Channel-Read-Codec-Rate', '8000'], ['Channel-Read-Codec-Bit-Rate', '64000'],
        ['Channel-Write-Codec-Name', 'PCMU'], ['Channel-Write-Codec-Rate', '8000'], ['Channel-Write-Codec-Bit-Rate', '64000']);
    } else {
      h.push(['Channel-Read-Codec-Name', 'L16'], ['Channel-Read-Codec-Rate', '8000'], ['Channel-Read-Codec-Bit-Rate', '128000'],
        ['Channel-Write-Codec-Name', 'L16'], ['Channel-Write-Codec-Rate', '8000'], ['Channel-Write-Codec-Bit-Rate', '128000']);
    }
    return block(h);
  }

  /** The CHANNEL_DATA headers for the connect reply (without the reply headers). */
  channelDataHeaders(): Header[] {
    if (this.channelProfileBlock === null) this.channelProfileBlock = block(profileHeaders('Channel', this.profile));
    const top = this.sw.topBlock('CHANNEL_DATA', CALLING.CHANNEL_DATA);
    return [
      ...top.list,
      ...this.channelProfileBlock.list,
      ...this.stateBlock().list,
      ...this.getProfileBlock().list,
      ...this.getOtherBlock().list,
      ...this.getVarsBlock().list,
    ];
  }

  // ----- event firing ---------------------------------------------------------

  private fire(name: string, opts: { pre?: Header[]; post?: Header[]; withVars?: boolean; application?: string } = {}): void {
    const blocks: Block[] = [this.sw.topBlock(name, CALLING[name])];
    if (opts.pre) blocks.push(block(opts.pre));
    blocks.push(this.stateBlock(), this.getProfileBlock(), this.getOtherBlock());
    if (opts.withVars !== false) blocks.push(this.getVarsBlock());
    if (opts.post) blocks.push(block(opts.post));
    const hc = name === 'CHANNEL_HANGUP' || name === 'CHANNEL_HANGUP_COMPLETE' ? this.hangupCause ?? undefined : undefined;
    this.sw.fire(new BlocksEvent(name, this.uuid, blocks, undefined, opts.application, hc));
  }

  // ----- timers -----------------------------------------------------------------

  private after(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, Math.max(0, ms));
    // once the socket is gone nobody waits for this channel any more: don't keep the process alive for it
    if (!this.controlled) t.unref();
    this.timers.add(t);
    return t;
  }
  private cancel(t: NodeJS.Timeout | null): void {
    if (t) {
      clearTimeout(t);
      this.timers.delete(t);
    }
  }
  private scaled(ms: number): number {
    return ms * this.ts;
  }
  private sleep(ms: number): Promise<void> {
    return new Promise((r) => this.after(ms, r));
  }
  /** Resolves when the channel goes down (immediately if it already is). */
  private whenDown(): Promise<void> {
    if (!this.up) return Promise.resolve();
    return new Promise((r) => this.downWaiters.push(r));
  }

  // ----- park / private events (switch_ivr_park + switch_ivr_parse_all_events) ----------------

  /** The socket app parks the channel: CHANNEL_PARK, then queued sendmsg's start running. */
  startPark(): void {
    if (this.parked || !this.up || !this.controlled) return;
    this.parked = true;
    this.fire('CHANNEL_PARK');
    if (this.queue.length > 0) this.scheduleTick();
  }

  queuePrivate(cmd: ParsedCommand): void {
    if (!this.up) return; // sendmsg after the channel is down: +OK, nothing happens [T commands-after-hangup]
    this.queue.push(cmd);
    if (this.parked) this.scheduleTick();
  }

  private scheduleTick(): void {
    if (this.tickTimer) return;
    this.tickTimer = this.after(this.parkTickMs, () => {
      this.tickTimer = null;
      void this.drain();
    });
  }

  /** Process queued private events. While an app runs, only hangups and instant apps are handled inline. */
  private async drain(): Promise<void> {
    if (!this.up) return;
    if (this.appRunning) {
      const keep: ParsedCommand[] = [];
      for (const c of this.queue.splice(0)) {
        const cc = (getHeader(c, 'call-command') ?? '').toLowerCase();
        const app = (getHeader(c, 'execute-app-name') ?? '').toLowerCase();
        if (cc === 'hangup') this.hangup(normalizeCause(getHeader(c, 'hangup-cause')), 'internal');
        else if (cc === 'execute' && INSTANT_APPS.has(app) && !['answer', 'pre_answer', 'ring_ready', 'hangup', 'respond', 'redirect', 'deflect'].includes(app)) {
          await this.execute(c);
        } else keep.push(c);
      }
      this.queue.unshift(...keep);
      return;
    }
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.up && this.queue.length > 0) {
        const c = this.queue.shift() as ParsedCommand;
        const cc = (getHeader(c, 'call-command') ?? '').toLowerCase();
        if (cc === 'hangup') {
          this.hangup(normalizeCause(getHeader(c, 'hangup-cause')), 'internal');
        } else if (cc === 'execute') {
          this.appRunning = true;
          try {
            await this.execute(c);
          } finally {
            this.appRunning = false;
          }
          if (!this.controlled) break;
        }
        // unicast / nomedia / xferext / ...: accepted, nothing simulated
      }
    } finally {
      this.draining = false;
    }
    this.afterApp();
  }

  /** Called whenever the session is idle: tear down if down, leave park if the socket is gone. */
  private afterApp(): void {
    if (this.appRunning || this.draining) return;
    if (!this.up) {
      this.teardown();
      return;
    }
    if (!this.controlled) {
      this.leavePark();
      return;
    }
    if (this.queue.length > 0) this.scheduleTick();
  }

  // ----- applications -------------------------------------------------------------

  private expand(s: string): string {
    return s.replace(/\$\{([^}]+)\}/g, (_m, n: string) => {
      if (n === 'uuid') return this.uuid;
      if (n === 'caller_id_number') return this.profile.callerIdNumber;
      if (n === 'caller_id_name') return this.profile.callerIdName;
      if (n === 'destination_number') return this.profile.destinationNumber;
      return this.vars.get(n) ?? '';
    });
  }

  private async execute(c: ParsedCommand): Promise<void> {
    const appName = getHeader(c, 'execute-app-name') ?? '';
    let arg = getHeader(c, 'execute-app-arg');
    const ct = getHeader(c, 'content-type');
    if ((arg === undefined || arg === '') && ct !== undefined && ct.toLowerCase() === 'text/plain' && c.body !== undefined) arg = c.body;
    const appUuid = getHeader(c, 'event-uuid') ?? randomUUID();
    const loopsH = getHeader(c, 'loops');
    const loops = loopsH !== undefined ? parseInt(loopsH, 10) || 1 : 1;
    const app = appName.toLowerCase();
    // switch_ivr_parse_event(): app_uuid, current_loop, total_loops are set before the application is looked
    // up; switch_core_session_execute_application() consumes app_uuid. For a non-existent application they stay.
    const eventUuid = getHeader(c, 'event-uuid');
    if (!INSTANT_APPS.has(app) && !BLOCKING_APPS.has(app)) {
      // "Invalid Application": +OK was already sent, no CHANNEL_EXECUTE, hangup DESTINATION_OUT_OF_ORDER [T errors]
      if (eventUuid !== undefined) this.setVar('app_uuid', eventUuid);
      this.setVar('current_loop', '1');
      this.setVar('total_loops', String(loops));
      this.hangup('DESTINATION_OUT_OF_ORDER', 'internal');
      // the loop ends: current_loop/total_loops are cleared again, app_uuid stays [T errors: UNPARK]
      this.setVar('current_loop', null);
      this.setVar('total_loops', null);
      return;
    }
    for (let i = 1; i <= loops && this.up; i++) {
      const data = this.expand(arg ?? '');
      this.setVar('current_loop', String(i));
      this.setVar('total_loops', String(loops));
      this.setVar('current_application', app);
      this.setVar('current_application_data', data);
      this.lastApp = app;
      this.lastArg = data;
      const appHeaders: Header[] = [['Application', app], ['Application-Data', data]];
      this.fire('CHANNEL_EXECUTE', { post: [...appHeaders, ['Application-UUID', appUuid]], application: app });
      await this.runApp(app, data);
      this.fire('CHANNEL_EXECUTE_COMPLETE', {
        post: [...appHeaders, ['Application-Response', '_none_'], ['Application-UUID', appUuid]],
        application: app,
      });
      this.setVar('current_loop', null);
      this.setVar('total_loops', null);
    }
  }

  private async runApp(app: string, data: string): Promise<void> {
    switch (app) {
      case 'set':
      case 'export': {
        const eq = data.indexOf('=');
        if (eq < 0) this.setVar(data.trim(), null);
        else this.setVar(data.slice(0, eq).trim(), data.slice(eq + 1));
        return;
      }
      case 'unset':
        this.setVar(data.trim(), null);
        return;
      case 'multiset':
        for (const kv of data.split(' ')) {
          const eq = kv.indexOf('=');
          if (eq > 0) this.setVar(kv.slice(0, eq), kv.slice(eq + 1));
        }
        return;
      case 'answer':
        this.markAnswered();
        return;
      case 'pre_answer':
        if (this.answerState === 'ringing') {
          this.answerState = 'early';
          this.profile.progressMedia = nowMicros();
          this.touchProfile();
          this.fire('CHANNEL_PROGRESS_MEDIA');
        }
        return;
      case 'ring_ready':
        this.markRingReady();
        return;
      case 'hangup':
        this.hangup(normalizeCause(data === '' ? undefined : data), 'internal');
        return;
      case 'respond': {
        const code = parseInt(data, 10);
        if (code >= 300) {
          const cause = code === 486 ? 'USER_BUSY' : code === 404 ? 'UNALLOCATED_NUMBER' : code === 603 ? 'CALL_REJECTED' : code === 480 ? 'NO_USER_RESPONSE' : 'NORMAL_TEMPORARY_FAILURE';
          this.hangup(cause, 'internal');
        } else if (code === 180) this.markRingReady();
        return;
      }
      case 'bridge':
        await this.bridge(data);
        return;
      default:
        if (BLOCKING_APPS.has(app)) {
          const ms = this.appDurationMs(app, data);
          await Promise.race([this.sleep(ms), this.whenDown()]);
        }
        return;
    }
  }

  private appDurationMs(app: string, data: string): number {
    if (app === 'sleep') return this.scaled(parseInt(data, 10) || 0);
    if (app === 'park' || app === 'echo' || app === 'conference' || app === 'fifo') return 2 ** 31 - 1;
    const m = /silence_stream:\/\/(\d+)/.exec(data);
    if (m) return this.scaled(parseInt(m[1] as string, 10));
    return this.scaled(1000);
  }

  private markRingReady(): void {
    if (this.ringReady || this.answerState === 'answered') return;
    this.ringReady = true;
    this.profile.progress = nowMicros();
    this.touchProfile();
    this.fire('CHANNEL_PROGRESS');
  }

  private markAnswered(): void {
    if (this.answerState === 'answered' || !this.up) return;
    this.answerState = 'answered';
    this.profile.answered = nowMicros();
    this.touchProfile();
    if (this.isSip) this.setSipAnswerVars();
    this.fire('CHANNEL_ANSWER');
    // the ANSWER event still shows Channel-Call-State RINGING [T answered-normal]
    this.callState = 'ACTIVE';
  }

  private setSipAnswerVars(): void {
    this.setVar('switch_m_sdp', 'v=0\r\no=FreeSWITCH 1795564794 1795564795 IN IP4 192.0.2.2\r\ns=FreeSWITCH\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 16968 RTP/AVP 0 101 13\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=rtpmap:13 CN/8000\r\na=ptime:20\r\n');
    this.setVar('video_media_flow', 'inactive');
    this.setVar('text_media_flow', 'inactive');
    this.setVar('rtp_local_sdp_str', 'v=0\r\no=FreeSWITCH 1795565188 1795565189 IN IP4 127.0.0.1\r\ns=FreeSWITCH\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 16574 RTP/AVP 0 101 13\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=rtpmap:13 CN/8000\r\na=ptime:20\r\na=sendrecv\r\n');
    this.setVar('local_media_ip', '127.0.0.1');
    this.setVar('local_media_port', '16574');
    this.setVar('advertised_media_ip', '127.0.0.1');
    this.setVar('rtp_use_timer_name', 'soft');
    this.setVar('rtp_use_pt', '0');
    this.setVar('rtp_use_ssrc', String(Math.floor(this.rnd() * 4294967295)));
    this.setVar('rtp_2833_send_payload', '101');
    this.setVar('rtp_2833_recv_payload', '101');
  }

  // ----- bridge / originate ----------------------------------------------------------

  private behaviourFor(dial: string, key: string): TargetBehaviour {
    const t = this.script.targets ?? {};
    return t[key] ?? t[dial] ?? this.script.defaultTarget ?? { kind: 'answer' };
  }

  private makeLeg(leg: DialLeg, globals: Record<string, string>): BLeg {
    const dial = leg.dial;
    const parts = dial.split('/');
    const tech = (parts[0] ?? '').toLowerCase();
    const key = targetKey(dial);
    const endpoint: LegEndpoint = tech === 'loopback' ? 'loopback' : tech === 'user' ? 'user' : tech === 'error' ? 'error' : 'sofia';
    let behaviour = this.behaviourFor(dial, key);
    if (endpoint === 'error') behaviour = { kind: 'fail', cause: normalizeCause(parts[1] ?? 'NORMAL_CLEARING') };
    let channelName: string;
    let context: string;
    let calleeIdName: string;
    let calleeIdNumber: string;
    if (endpoint === 'loopback') {
      channelName = 'loopback/' + key + '-a';
      context = parts[2] ?? 'default';
      calleeIdName = 'Outbound Call';
      calleeIdNumber = context;
    } else if (endpoint === 'user') {
      const domain = (parts[1] ?? '').split('@')[1] ?? 'default';
      channelName = 'sofia/internal/' + key + '@' + domain;
      context = 'default';
      calleeIdName = key;
      calleeIdNumber = key;
    } else {
      channelName = dial.split(';')[0] as string;
      context = this.profile.context;
      calleeIdName = key;
      calleeIdNumber = key;
    }
    // a leg that fails before any channel exists (error/, user/ not registered) leaves no originated_legs entry
    const localFail = behaviour.kind === 'fail' && !(behaviour.ringMs && behaviour.ringMs > 0) &&
      (endpoint === 'error' || behaviour.cause === 'USER_NOT_REGISTERED' || behaviour.cause === 'SUBSCRIBER_ABSENT');
    return {
      uuid: randomUUID(), dial, key, endpoint, behaviour, vars: { ...globals, ...leg.vars }, channelName, context,
      calleeIdName, calleeIdNumber, hasChannel: !localFail, created: nowMicros(), answeredAt: 0, progressAt: 0,
      state: 'setup', cause: null,
    };
  }

  private legProfile(b: BLeg): Profile {
    const cidName = b.vars.origination_caller_id_name ?? this.vars.get('effective_caller_id_name') ?? this.profile.callerIdName;
    const cidNum = b.vars.origination_caller_id_number ?? this.vars.get('effective_caller_id_number') ?? this.profile.callerIdNumber;
    const sofia = b.endpoint !== 'loopback';
    const p: Profile = {
      direction: 'outbound',
      logicalDirection: 'inbound',
      dialplan: sofia ? 'XML' : 'xml',
      callerIdName: cidName,
      callerIdNumber: cidNum,
      origCallerIdName: this.profile.origCallerIdName,
      origCallerIdNumber: this.profile.origCallerIdNumber,
      calleeIdName: b.calleeIdName,
      calleeIdNumber: b.calleeIdNumber,
      ani: this.profile.ani,
      destinationNumber: b.key,
      uniqueId: b.uuid,
      source: sofia ? 'mod_sofia' : 'mod_loopback',
      context: b.context,
      channelName: b.channelName,
      withProfileIndex: false,
      created: b.created,
      answered: b.answeredAt,
      progress: b.progressAt,
      progressMedia: 0,
      hangup: 0,
      bridged: 0,
      hideName: this.profile.hideName,
      hideNumber: this.profile.hideNumber,
    };
    if (sofia) {
      if (this.profile.username !== undefined) p.username = this.profile.username;
      p.networkAddr = b.endpoint === 'user' ? '192.0.2.50' : (b.dial.split('@')[1] ?? '127.0.0.1').split(':')[0] as string;
    }
    return p;
  }

  /** A B-leg ended while the caller is up: last_bridge_hangup_cause (+ SIP failure details for sofia legs). */
  private legEnded(b: BLeg, cause: string): void {
    if (b.state === 'down') return;
    b.state = 'down';
    b.cause = cause;
    if (!this.up || !b.hasChannel) return;
    const sofia = b.endpoint !== 'loopback';
    const sip = SIP_FOR_CAUSE[cause];
    if (sofia && sip && cause !== 'LOSE_RACE') {
      this.setVar('sip_invite_failure_status', String(sip[0]));
      this.setVar('sip_invite_failure_phrase', sip[1]);
      this.setVar('sip_hangup_phrase', sip[1]);
    }
    this.setVar('last_bridge_hangup_cause', cause);
    if (sofia && sip && cause !== 'LOSE_RACE') this.setVar('last_bridge_proto_specific_hangup_cause', 'sip:' + sip[0]);
  }

  private passCalleeId(b: BLeg): void {
    this.profile.calleeIdName = b.calleeIdName;
    this.profile.calleeIdNumber = b.calleeIdNumber;
    this.touchProfile();
  }

  private ringGroup(group: DialGroup, globals: Record<string, string>, timeoutMs: number, allLegs: BLeg[]): Promise<GroupResult> {
    return new Promise<GroupResult>((resolve) => {
      const legs = group.legs.map((l) => this.makeLeg(l, globals));
      const timers: NodeJS.Timeout[] = [];
      let settled = false;
      const finish = (r: GroupResult): void => {
        if (settled) return;
        settled = true;
        for (const t of timers) this.cancel(t);
        resolve(r);
      };
      for (const b of legs) {
        allLegs.push(b);
        if (b.endpoint === 'user') {
          // user/ endpoint: dialed_user/dialed_domain written on the CALLER channel once per leg [DP][F]
          const ud = (b.dial.split('/')[1] ?? '').split('@');
          this.setVar('dialed_user', ud[0] ?? '');
          this.setVar('dialed_domain', ud[1] ?? '');
        }
        if (b.hasChannel) {
          this.setVar('originate_signal_bond', b.uuid);
          this.pushVar('originated_legs', b.uuid + ';Outbound Call;' + b.calleeIdNumber);
        }
      }
      const setup = this.scaled(20);
      const allDone = (): void => {
        if (legs.every((l) => l.state === 'down')) {
          const first = legs.find((l) => l.cause !== null);
          finish({ kind: 'failed', cause: first?.cause ?? 'NORMAL_UNSPECIFIED' });
        }
      };
      const ring = (b: BLeg): void => {
        if (settled || b.state !== 'setup') return;
        b.state = 'ringing';
        b.progressAt = nowMicros();
        if (!this.ringReady && this.answerState !== 'answered') {
          this.passCalleeId(b);
          if (this.isSip) this.setVar('sip_to_tag', randToken(13, this.rnd));
          this.markRingReady();
        }
      };
      for (const b of legs) {
        const beh = b.behaviour;
        const ringMs = 'ringMs' in beh && beh.ringMs !== undefined ? this.scaled(beh.ringMs) : 0;
        if (beh.kind === 'ring' || ringMs > 0) timers.push(this.after(setup, () => ring(b)));
        if (beh.kind === 'answer') {
          timers.push(this.after(setup + ringMs, () => {
            if (settled || b.state === 'down') return;
            b.state = 'answered';
            b.answeredAt = nowMicros();
            finish({ kind: 'answered', winner: b });
          }));
        } else if (beh.kind === 'busy' || beh.kind === 'fail') {
          const cause = beh.kind === 'busy' ? 'USER_BUSY' : normalizeCause(beh.cause);
          timers.push(this.after(b.hasChannel ? setup + ringMs : 0, () => {
            if (settled) return;
            this.legEnded(b, cause);
            allDone();
          }));
        }
        const lt = b.vars.leg_timeout;
        if (lt !== undefined && parseInt(lt, 10) > 0) {
          timers.push(this.after(this.scaled(parseInt(lt, 10) * 1000), () => {
            if (settled || b.state === 'down' || b.state === 'answered') return;
            this.legEnded(b, 'NO_ANSWER');
            allDone();
          }));
        }
      }
      timers.push(this.after(timeoutMs, () => finish({ kind: 'timeout' })));
      this.downWaiters.push(() => finish({ kind: 'cancel' }));
    });
  }

  private async bridge(data: string): Promise<void> {
    this.bridges.push(data);
    const { globals, groups } = parseDialString(data);
    // originate re-sets the current application and starts with the "failure" defaults [T answered-normal ANSWER]
    this.setVar('current_application_data', data);
    this.setVar('current_application', 'bridge');
    this.setVar('originate_disposition', 'failure');
    this.setVar('DIALSTATUS', 'INVALIDARGS');
    const toVar = globals.originate_timeout ?? globals.call_timeout ?? this.vars.get('originate_timeout') ?? this.vars.get('call_timeout');
    const timeoutMs = toVar !== undefined && parseInt(toVar, 10) > 0 ? this.scaled(parseInt(toVar, 10) * 1000) : this.scaled(this.script.originateTimeoutMs ?? 1000);
    const continueOnTimeout = isTrue(globals.continue_on_timeout ?? this.vars.get('continue_on_timeout'));

    let cancelTimer: NodeJS.Timeout | null = null;
    if (this.script.callerCancelAfterMs !== undefined) {
      cancelTimer = this.after(this.scaled(this.script.callerCancelAfterMs), () => {
        if (this.answerState !== 'answered') this.externalHangup('ORIGINATOR_CANCEL');
      });
    }
    const allLegs: BLeg[] = [];
    let result: GroupResult = { kind: 'failed', cause: 'NORMAL_UNSPECIFIED' };
    if (groups.length === 0) result = { kind: 'failed', cause: 'DESTINATION_OUT_OF_ORDER' };
    for (const g of groups) {
      if (!this.up) {
        result = { kind: 'cancel' };
        break;
      }
      result = await this.ringGroup(g, globals, timeoutMs, allLegs);
      if (result.kind === 'answered' || result.kind === 'cancel') break;
      if (result.kind === 'timeout') {
        for (const b of allLegs) if (b.state !== 'down') this.legEnded(b, 'NO_ANSWER');
        if (!continueOnTimeout) break;
      }
    }
    this.cancel(cancelTimer);
    if (!this.up && result.kind !== 'answered') result = { kind: 'cancel' };

    if (result.kind === 'answered') {
      await this.bridged(result.winner, allLegs);
      return;
    }
    const cause = result.kind === 'failed' ? result.cause : result.kind === 'timeout' ? 'NO_ANSWER' : 'ORIGINATOR_CANCEL';
    for (const b of allLegs) if (b.state !== 'down') this.legEnded(b, cause);
    this.setVar('originate_disposition', cause);
    this.setVar('DIALSTATUS', dialStatus(cause));
    for (const b of allLegs) if (b.hasChannel) this.pushVar('originate_causes', b.uuid + ';' + (b.cause ?? cause));
    this.setVar('originate_failed_cause', cause);
    // mod_dptools: hang the caller up with the far end's cause unless continue_on_fail [T busy, busy-continue-on-fail]
    if (this.up && !NEVER_AUTO_HANGUP.has(cause) && !this.continueOnFail(cause)) this.hangup(cause, 'internal');
  }

  private continueOnFail(cause: string): boolean {
    const v = this.vars.get('continue_on_fail');
    if (v === undefined) return false;
    if (isTrue(v)) return true;
    const code = String(CAUSE_CODES[cause] ?? -1);
    return v.split(',').map((x) => x.trim().toUpperCase()).some((x) => x === cause || x === code);
  }

  private async bridged(winner: BLeg, allLegs: BLeg[]): Promise<void> {
    // losers are hung up with LOSE_RACE before the caller is answered -> stale values on CHANNEL_ANSWER [F]
    for (const b of allLegs) if (b !== winner && b.state !== 'down') this.legEnded(b, 'LOSE_RACE');
    if (this.answerState !== 'answered') {
      this.passCalleeId(winner);
      this.markAnswered();
    }
    this.setVar('endpoint_disposition', 'ANSWER');
    this.setVar('originate_disposition', 'SUCCESS');
    this.setVar('DIALSTATUS', 'SUCCESS');
    for (const b of allLegs) if (b.hasChannel) this.pushVar('originate_causes', b.uuid + ';' + (b === winner ? 'NONE' : b.cause ?? 'NONE'));
    this.setVar('signal_bond', winner.uuid);
    this.setVar('originate_signal_bond', null);
    // CHANNEL_BRIDGE names the leg that WON [F]
    this.other = this.legProfile(winner);
    this.otherBlock = null;
    this.bridgedAt = nowMicros();
    this.profile.bridged = this.bridgedAt;
    this.touchProfile();
    this.callState = 'ACTIVE';
    const bridgeIds: Header[] = [['Bridge-A-Unique-ID', this.uuid], ['Bridge-B-Unique-ID', winner.uuid]];
    this.fire('CHANNEL_BRIDGE', { pre: bridgeIds });
    this.setVar('last_bridge_to', winner.uuid);
    this.setVar('bridge_channel', winner.channelName);
    this.setVar('bridge_uuid', winner.uuid);
    this.setVar('signal_bond', winner.uuid);
    this.setVar('last_sent_callee_id_name', winner.calleeIdName);
    this.setVar('last_sent_callee_id_number', winner.calleeIdNumber);
    if (this.isSip) {
      // the caller's ACK to our 200 OK: sip_to_tag/sip_cseq/sip_full_via/sip_full_to. Racy: on CHANNEL_BRIDGE in
      // answered-normal-sip.txt, only from CHANNEL_UNBRIDGE on in callerid-sip / ring-then-answer-sip (used here).
      if (!this.vars.has('sip_to_tag')) this.setVar('sip_to_tag', randToken(13, this.rnd));
      this.setVar('sip_cseq', String(100000000 + Math.floor(this.rnd() * 99999999)));
      this.setVar('sip_full_via', 'SIP/2.0/UDP 127.0.0.1:5091;rport=5091;branch=z9hG4bK' + randToken(13, this.rnd));
      this.setVar('sip_full_to', '<sip:' + this.profile.destinationNumber + '@127.0.0.1:5090>;tag=' + (this.vars.get('sip_to_tag') ?? ''));
    }

    // wait for one side to hang up
    const beh = winner.behaviour;
    const talk = beh.kind === 'answer' && beh.talkMs !== undefined ? this.scaled(beh.talkMs) : null;
    let calleeTimer: NodeJS.Timeout | null = null;
    let callerTimer: NodeJS.Timeout | null = null;
    const calleeHungUp = await new Promise<boolean>((resolve) => {
      if (talk !== null) calleeTimer = this.after(talk, () => resolve(true));
      if (this.script.callerHangupAfterAnswerMs !== undefined) {
        callerTimer = this.after(this.scaled(this.script.callerHangupAfterAnswerMs), () => this.externalHangup('NORMAL_CLEARING'));
      }
      void this.whenDown().then(() => resolve(false));
    });
    this.cancel(calleeTimer);
    this.cancel(callerTimer);
    const sofia = winner.endpoint !== 'loopback';
    winner.state = 'down';
    winner.cause = 'NORMAL_CLEARING';
    if (sofia) {
      this.setVar('sip_reason', 'Q.850;cause=16;text="NORMAL_CLEARING"');
      this.setVar('sip_hangup_phrase', 'OK');
    }
    this.setVar('last_bridge_hangup_cause', 'NORMAL_CLEARING');
    if (sofia) this.setVar('last_bridge_proto_specific_hangup_cause', 'sip:200');
    this.setVar('bridge_hangup_cause', 'NORMAL_CLEARING');
    this.fire('CHANNEL_UNBRIDGE', { pre: bridgeIds });
    if (calleeHungUp && this.up && isTrue(this.vars.get('hangup_after_bridge'))) this.hangup('NORMAL_CLEARING', 'internal');
  }

  // ----- hangup -----------------------------------------------------------------------

  /** The caller (or something outside the session: uuid_kill, the far end) hangs the channel up. */
  externalHangup(cause?: string): void {
    if (!this.up) return;
    const c = cause !== undefined ? normalizeCause(cause) : this.answerState === 'answered' ? 'NORMAL_CLEARING' : 'ORIGINATOR_CANCEL';
    if (this.isSip) {
      if (this.answerState === 'answered') this.setVar('sip_hangup_disposition', 'recv_bye');
      else {
        this.setVar('sip_hangup_disposition', 'recv_cancel');
        this.setVar('sip_invite_failure_status', '487');
        this.setVar('sip_invite_failure_phrase', 'CANCEL');
        this.setVar('sip_reason', 'SIP;cause=487;text="ORIGINATOR_CANCEL"');
        this.setVar('sip_term_status', '487');
        this.setVar('proto_specific_hangup_cause', 'sip:487');
        this.setVar('sip_term_cause', '487');
      }
    }
    this.hangup(c, 'external');
  }

  /** switch_channel_perform_hangup(): CHANNEL_HANGUP now; the rest of the end-of-call events follow when the session is idle. */
  hangup(cause: string, origin: 'internal' | 'external'): void {
    if (!this.up) return;
    const pos: LingerNoticeAt = this.script.lingerNoticeAt ?? (origin === 'external' ? 'after-hangup' : 'after-hangup-complete');
    this.up = false;
    this.hangupCause = cause;
    this.answerState = 'hangup';
    this.stateNumber = 10;
    this.cancel(this.tickTimer);
    this.tickTimer = null;
    if (pos === 'before-hangup' && this.controlled) this.listener.channelWentDown();
    this.fire('CHANNEL_HANGUP');
    if (pos === 'after-hangup' && this.controlled) this.listener.channelWentDown();
    this.noticeAfterComplete = pos === 'after-hangup-complete';
    const w = this.downWaiters;
    this.downWaiters = [];
    for (const f of w) f();
    if (!this.appRunning && !this.draining) queueMicrotask(() => this.afterApp());
  }

  /** UNPARK, EXECUTE_COMPLETE(socket), CHANNEL_STATE x2, CHANNEL_HANGUP_COMPLETE [T README obs. 5]. */
  private teardown(): void {
    if (this.tornDown) return;
    this.tornDown = true;
    if (this.parked) {
      this.fire('CHANNEL_UNPARK');
      this.fire('CHANNEL_EXECUTE_COMPLETE', {
        post: [['Application', 'socket'], ['Application-Data', SOCKET_APP_DATA], ['Application-Response', '_none_'], ['Application-UUID', randomUUID()]],
        application: 'socket',
      });
    }
    this.finalStates();
  }

  private finalStates(): void {
    const cause = this.hangupCause ?? 'NORMAL_CLEARING';
    if (this.isSip && !this.vars.has('sip_hangup_disposition')) {
      this.setVar('sip_hangup_disposition', this.answerState === 'hangup' && this.profile.answered > 0 ? 'send_bye' : 'send_refuse');
    }
    this.stateName = 'CS_HANGUP';
    this.fire('CHANNEL_STATE', { withVars: false });
    this.stateName = 'CS_REPORTING';
    this.callState = 'HANGUP';
    this.stateNumber = 11;
    this.profile.hangup = nowMicros();
    this.touchProfile();
    this.fire('CHANNEL_STATE', { withVars: false });
    this.setCdrVars(cause);
    this.fire('CHANNEL_HANGUP_COMPLETE', { pre: [['Hangup-Cause', cause]] });
    if (this.noticeAfterComplete && this.controlled) this.listener.channelWentDown();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.sw.channels.delete(this.uuid);
    this.resolveDone(cause);
  }

  private setCdrVars(cause: string): void {
    const p = this.profile;
    const start = p.created;
    const end = p.hangup;
    const ans = p.answered;
    const br = this.bridgedAt;
    const prog = p.progress;
    const pm = p.progressMedia;
    const sec = (u: number): number => Math.floor(u / 1e6);
    const msec = (u: number): number => Math.floor(u / 1e3);
    const sip = this.isSip;
    const disp = sip ? this.vars.get('sip_hangup_disposition') : undefined;
    if (disp !== undefined) this.setVar('sip_hangup_disposition', null);
    const set = (k: string, v: string | number): void => this.setVar(k, String(v));
    set('hangup_cause', cause);
    set('hangup_cause_q850', q850(cause));
    set('digits_dialed', 'none');
    set('start_stamp', fmtStamp(start / 1000));
    set('profile_start_stamp', fmtStamp(start / 1000));
    if (ans) set('answer_stamp', fmtStamp(ans / 1000));
    if (br) set('bridge_stamp', fmtStamp(br / 1000));
    if (prog) set('progress_stamp', fmtStamp(prog / 1000));
    if (pm) set('progress_media_stamp', fmtStamp(pm / 1000));
    set('end_stamp', fmtStamp(end / 1000));
    set('start_epoch', sec(start)); set('start_uepoch', start);
    set('profile_start_epoch', sec(start)); set('profile_start_uepoch', start);
    set('answer_epoch', sec(ans)); set('answer_uepoch', ans);
    set('bridge_epoch', sec(br)); set('bridge_uepoch', br);
    set('last_hold_epoch', 0); set('last_hold_uepoch', 0);
    set('hold_accum_seconds', 0); set('hold_accum_usec', 0); set('hold_accum_ms', 0);
    set('resurrect_epoch', 0); set('resurrect_uepoch', 0);
    set('progress_epoch', sec(prog)); set('progress_uepoch', prog);
    set('progress_media_epoch', sec(pm)); set('progress_media_uepoch', pm);
    set('end_epoch', sec(end)); set('end_uepoch', end);
    set('last_app', this.lastApp);
    set('last_arg', this.lastArg);
    set('caller_id', '"' + p.callerIdName + '" <' + p.callerIdNumber + '>');
    const dsec = (a: number): number => (a ? sec(end) - sec(a) : 0);
    const fromStart = (a: number, f: (x: number) => number): number => (a ? f(a) - f(start) : 0);
    set('duration', sec(end) - sec(start));
    set('billsec', dsec(ans));
    set('progresssec', fromStart(prog, sec));
    set('answersec', fromStart(ans, sec));
    set('waitsec', fromStart(br, sec));
    set('progress_mediasec', fromStart(pm, sec));
    set('flow_billsec', ans ? sec(end) - sec(start) : 0);
    set('mduration', msec(end) - msec(start));
    set('billmsec', ans ? msec(end) - msec(ans) : 0);
    set('progressmsec', fromStart(prog, msec));
    set('answermsec', fromStart(ans, msec));
    set('waitmsec', fromStart(br, msec));
    set('progress_mediamsec', fromStart(pm, msec));
    set('flow_billmsec', ans ? msec(end) - msec(start) : 0);
    set('uduration', end - start);
    set('billusec', ans ? end - ans : 0);
    set('progressusec', prog ? prog - start : 0);
    set('answerusec', ans ? ans - start : 0);
    set('waitusec', br ? br - start : 0);
    set('progress_mediausec', pm ? pm - start : 0);
    set('flow_billusec', ans ? end - start : 0);
    if (sip) {
      if (disp !== undefined) set('sip_hangup_disposition', disp);
      for (const [k, v] of [
        ['rtp_audio_in_raw_bytes', '0'], ['rtp_audio_in_media_bytes', '0'], ['rtp_audio_in_packet_count', '0'],
        ['rtp_audio_in_media_packet_count', '0'], ['rtp_audio_in_skip_packet_count', '0'], ['rtp_audio_in_jitter_packet_count', '0'],
        ['rtp_audio_in_dtmf_packet_count', '0'], ['rtp_audio_in_cng_packet_count', '0'], ['rtp_audio_in_flush_packet_count', '0'],
        ['rtp_audio_in_largest_jb_size', '0'], ['rtp_audio_in_jitter_min_variance', '0.00'], ['rtp_audio_in_jitter_max_variance', '0.00'],
        ['rtp_audio_in_jitter_loss_rate', '0.00'], ['rtp_audio_in_jitter_burst_rate', '0.00'], ['rtp_audio_in_mean_interval', '0.00'],
        ['rtp_audio_in_flaw_total', '0'], ['rtp_audio_in_quality_percentage', '100.00'], ['rtp_audio_in_mos', '4.50'],
        ['rtp_audio_out_raw_bytes', '0'], ['rtp_audio_out_media_bytes', '0'], ['rtp_audio_out_packet_count', '0'],
        ['rtp_audio_out_media_packet_count', '0'], ['rtp_audio_out_skip_packet_count', '0'], ['rtp_audio_out_dtmf_packet_count', '0'],
        ['rtp_audio_out_cng_packet_count', '0'], ['rtp_audio_rtcp_packet_count', '0'], ['rtp_audio_rtcp_octet_count', '0'],
      ] as const) set(k, v);
    } else {
      set('is_loopback', 1);
    }
  }

  // ----- the socket went away -------------------------------------------------------------

  /**
   * listener_run() ended (exit, adapter closed, linger timeout): CF_CONTROLLED is cleared, the park
   * loop ends once the running app returns, and the dialplan continues after `socket` – which here
   * hangs the channel up (afterSocketHangupCause, default NORMAL_CLEARING) [F "connection drops"].
   */
  socketGone(): void {
    if (!this.controlled) return;
    this.controlled = false;
    for (const t of this.timers) t.unref();
    if (!this.up) return;
    this.socketLostWhileUp = true;
    if (!this.appRunning && !this.draining) this.leavePark();
  }

  private leavePark(): void {
    if (!this.up) return;
    if (this.parked) {
      this.fire('CHANNEL_UNPARK');
      this.fire('CHANNEL_EXECUTE_COMPLETE', {
        post: [['Application', 'socket'], ['Application-Data', SOCKET_APP_DATA], ['Application-Response', '_none_'], ['Application-UUID', randomUUID()]],
        application: 'socket',
      });
      this.parked = false;
    }
    this.tornDown = true; // no second UNPARK
    this.up = false;
    this.hangupCause = normalizeCause(this.script.afterSocketHangupCause ?? 'NORMAL_CLEARING');
    this.answerState = 'hangup';
    this.stateNumber = 10;
    this.fire('CHANNEL_HANGUP');
    const w = this.downWaiters;
    this.downWaiters = [];
    for (const f of w) f();
    this.finalStates();
  }
}
