/** What FreeSWITCH 1.10.12 says, as captured: cause codes and names, SIP statuses, the applications
 * and event names it knows, the Event-Calling-* headers of its events. */


/** Q.850 codes of switch_call_cause_t (switch_types.h); > 127 is reported as 16 in hangup_cause_q850. */
export const CAUSE_CODES: Record<string, number> = {
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
export function normalizeCause(c: string | undefined): string {
  if (c === undefined || c.trim() === '') return 'NORMAL_CLEARING';
  const t = c.trim().toUpperCase();
  if (t in CAUSE_CODES) return t;
  if (/^\d+$/.test(t)) {
    const n = parseInt(t, 10);
    for (const [k, v] of Object.entries(CAUSE_CODES)) if (v === n) return k;
  }
  return 'NONE';
}

export function q850(cause: string): number {
  const n = CAUSE_CODES[cause] ?? 0;
  return n <= 127 ? n : 16;
}

/** DIALSTATUS after a failed originate [OR]. */
export function dialStatus(cause: string): string {
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
export const SIP_FOR_CAUSE: Record<string, [number, string]> = {
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
export const NEVER_AUTO_HANGUP = new Set(['NO_ANSWER', 'NO_USER_RESPONSE', 'ORIGINATOR_CANCEL']);

/** Applications that exist on a stock switch and return immediately. */
export const INSTANT_APPS = new Set([
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
export const BLOCKING_APPS = new Set([
  'sleep', 'playback', 'endless_playback', 'loop_playback', 'gentones', 'park', 'echo', 'delay_echo', 'say',
  'speak', 'phrase', 'read', 'play_and_get_digits', 'record', 'playback_terminators', 'wait_for_silence',
  'conference', 'fifo', 'voicemail', 'valet_park', 'callcenter', 'lua', 'javascript', 'python', 'ivr',
  'transfer', 'execute_extension', 'eavesdrop', 'intercept', 'three_way', 'att_xfer', 'socket', 'sound_test',
  'bridge',
]);

/** switch_event_types_t names accepted by `event`/`nixevent` (switch_name_event, case-insensitive). */
export const EVENT_NAMES = new Set([
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
export const MYEVENTS_LIST = [
  'CHANNEL_ANSWER', 'CHANNEL_APPLICATION', 'CHANNEL_BRIDGE', 'CHANNEL_CREATE', 'CHANNEL_DATA', 'CHANNEL_DESTROY',
  'CHANNEL_EXECUTE', 'CHANNEL_EXECUTE_COMPLETE', 'CHANNEL_HANGUP', 'CHANNEL_HANGUP_COMPLETE', 'CHANNEL_ORIGINATE',
  'CHANNEL_UUID', 'CHANNEL_OUTGOING', 'CHANNEL_PARK', 'CHANNEL_PROGRESS', 'CHANNEL_PROGRESS_MEDIA', 'CHANNEL_STATE',
  'CHANNEL_UNBRIDGE', 'CHANNEL_UNPARK', 'DETECTED_SPEECH', 'DTMF', 'NOTALK', 'TALK',
];

/** Event-Calling-File/Function/Line as in the transcripts. */
export const CALLING: Record<string, readonly [string, string, string]> = {
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

export const SOCKET_APP_DATA = '127.0.0.1:8084 async full';
