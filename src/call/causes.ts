/**
 * FreeSWITCH hangup causes -> the hangup causes Zammad's CTI API knows.
 * Pure, no I/O.
 *
 * Zammad's meaning of its causes (API text) and how its UI shows them:
 *   normalClearing  a party hung up after the call was established        (blank)
 *   busy            the called party was busy                             "busy"
 *   cancel          the caller hung up before the called party picked up  "not reached"
 *   noAnswer        the called party did not answer / rejected it (DND)   "not reached"
 *   congestion      the called party could not be reached                 "not reached"
 *   notFound        the number does not exist or the party is offline     "does not exist"
 *   forwarded       the call went to a different party                    an inbound call is NOT marked missed
 *
 * Rule for the doubtful ones: `forwarded` hides a missed call, so a cause goes there only when
 * it certainly means someone else took the call; otherwise a failure bucket, which keeps the
 * call visible as missed.
 */

export const ZAMMAD_CAUSES = [
  'normalClearing',
  'busy',
  'cancel',
  'noAnswer',
  'congestion',
  'notFound',
  'forwarded',
] as const;
export type ZammadCause = (typeof ZAMMAD_CAUSES)[number];

/**
 * Every cause name FreeSWITCH knows (CAUSE_CHART in src/switch_channel.c, FreeSWITCH 1.10.x,
 * same order), each in exactly one bucket. The SIP codes are FreeSWITCH's own mapping
 * (sofia_glue_sip_cause_to_freeswitch; a SIP response it has no entry for becomes
 * NORMAL_UNSPECIFIED).
 */
export const FAILED_BRIDGE_CAUSES: Readonly<Record<string, ZammadCause>> = Object.freeze({
  NONE: 'congestion', // no cause recorded at all: we do not know why it failed
  UNALLOCATED_NUMBER: 'notFound', // Q.850 1, SIP 404
  NO_ROUTE_TRANSIT_NET: 'notFound', // Q.850 2
  NO_ROUTE_DESTINATION: 'notFound', // Q.850 3, SIP 404 between two FreeSWITCH boxes, 485, 604
  CHANNEL_UNACCEPTABLE: 'congestion',
  CALL_AWARDED_DELIVERED: 'congestion', // not a failure cause; unknown reason
  // The callee's side ended a leg that never answered: in practice the phone refused the call.
  NORMAL_CLEARING: 'noAnswer',
  USER_BUSY: 'busy', // SIP 486 (and 600 in older versions)
  NO_USER_RESPONSE: 'noAnswer', // SIP 480
  NO_ANSWER: 'noAnswer', // originate/leg timeout ran out while ringing
  // Q.850 20: mobile logged off / out of radio contact = Zammad's "called party is offline".
  SUBSCRIBER_ABSENT: 'notFound',
  CALL_REJECTED: 'noAnswer', // SIP 603 (and 401/403/407): the callee declined
  NUMBER_CHANGED: 'notFound', // SIP 410 Gone
  REDIRECTION_TO_NEW_DESTINATION: 'forwarded', // Q.850 23: redirected elsewhere
  EXCHANGE_ROUTING_ERROR: 'congestion', // SIP 482/483 loop / too many hops: a network fault
  DESTINATION_OUT_OF_ORDER: 'congestion',
  INVALID_NUMBER_FORMAT: 'notFound', // SIP 484 Address Incomplete
  FACILITY_REJECTED: 'congestion',
  RESPONSE_TO_STATUS_ENQUIRY: 'congestion',
  // Q.850 31, and FreeSWITCH's cause for any SIP error it has no mapping for: cannot say more
  // than "not reached".
  NORMAL_UNSPECIFIED: 'congestion',
  NORMAL_CIRCUIT_CONGESTION: 'congestion',
  NETWORK_OUT_OF_ORDER: 'congestion', // SIP 502
  NORMAL_TEMPORARY_FAILURE: 'congestion', // SIP 500/503
  SWITCH_CONGESTION: 'congestion',
  ACCESS_INFO_DISCARDED: 'congestion',
  REQUESTED_CHAN_UNAVAIL: 'congestion',
  PRE_EMPTED: 'congestion',
  FACILITY_NOT_SUBSCRIBED: 'congestion',
  OUTGOING_CALL_BARRED: 'congestion', // the network would not place it; not the callee's choice
  INCOMING_CALL_BARRED: 'congestion', // barred by the network (closed user group), not by the person
  BEARERCAPABILITY_NOTAUTH: 'congestion',
  BEARERCAPABILITY_NOTAVAIL: 'congestion',
  SERVICE_UNAVAILABLE: 'congestion', // SIP 405
  BEARERCAPABILITY_NOTIMPL: 'congestion',
  CHAN_NOT_IMPLEMENTED: 'congestion',
  FACILITY_NOT_IMPLEMENTED: 'congestion',
  SERVICE_NOT_IMPLEMENTED: 'congestion', // SIP 406/415/501
  INVALID_CALL_REFERENCE: 'congestion',
  // SIP 488/606 (no common codec etc.): the destination exists and is online but could not take
  // this call - "could not be reached", not "does not exist".
  INCOMPATIBLE_DESTINATION: 'congestion',
  INVALID_MSG_UNSPECIFIED: 'congestion',
  MANDATORY_IE_MISSING: 'congestion',
  MESSAGE_TYPE_NONEXIST: 'congestion',
  WRONG_MESSAGE: 'congestion',
  IE_NONEXIST: 'congestion',
  INVALID_IE_CONTENTS: 'congestion',
  WRONG_CALL_STATE: 'congestion',
  // SIP 408/504: the far end never gave a final answer (usually no response at all, i.e. the
  // device is unreachable), which is not the same as "rang and nobody picked up".
  RECOVERY_ON_TIMER_EXPIRE: 'congestion',
  MANDATORY_IE_LENGTH_ERROR: 'congestion',
  PROTOCOL_ERROR: 'congestion',
  INTERWORKING: 'congestion', // SIP 413/414/416/420/421/423/505/513
  SUCCESS: 'congestion', // internal "originate succeeded"; never the cause of a failure, unknown reason
  ORIGINATOR_CANCEL: 'cancel', // the caller gave up while it rang (SIP CANCEL / 487)
  CRASH: 'congestion',
  SYSTEM_SHUTDOWN: 'congestion',
  // The cause of the legs that lost a race: another leg (or another path) answered the call.
  // The caller was served by someone else, so the call was not missed.
  LOSE_RACE: 'forwarded',
  // Ended by an API/admin command (uuid_kill, hupall, ...), not by either party: no more specific
  // bucket applies, and it must not hide a missed call.
  MANAGER_REQUEST: 'congestion',
  BLIND_TRANSFER: 'forwarded',
  ATTENDED_TRANSFER: 'forwarded',
  ALLOTTED_TIMEOUT: 'noAnswer', // a call/leg timeout ran out while it rang
  // The far end demanded authentication we did not answer: a configuration fault, not the callee.
  USER_CHALLENGE: 'congestion',
  // RTP stopped arriving (also during early media): a network fault, nobody decided anything.
  MEDIA_TIMEOUT: 'congestion',
  // Someone else picked the ringing call up (intercept / call pickup): the call went to them.
  PICKED_OFF: 'forwarded',
  USER_NOT_REGISTERED: 'notFound', // the user/ endpoint has no registration: "offline"
  PROGRESS_TIMEOUT: 'noAnswer', // originate_progress_timeout: no ringing in time
  INVALID_GATEWAY: 'congestion', // our configuration names a gateway that does not exist
  GATEWAY_DOWN: 'congestion',
  INVALID_URL: 'notFound', // the dial string's address cannot exist (like SIP 484)
  INVALID_PROFILE: 'congestion', // our configuration names a sofia profile that does not exist
  // A pickup/ endpoint leg that nobody picked up before it timed out.
  NO_PICKUP: 'noAnswer',
  SRTP_READ_ERROR: 'congestion',
  // mod_loopback leg bowed out of the bridge. Not certain to mean someone else took the call, so
  // not `forwarded` (see the rule above); unknown reason.
  BOWOUT: 'congestion',
  BUSY_EVERYWHERE: 'busy', // SIP 600
  DECLINE: 'noAnswer', // SIP 603 Decline: the callee refused
  DOES_NOT_EXIST_ANYWHERE: 'notFound', // SIP 604
  NOT_ACCEPTABLE: 'congestion', // SIP 606, same reasoning as INCOMPATIBLE_DESTINATION
  UNWANTED: 'noAnswer', // SIP 607: the callee marked the call unwanted - a rejection
  // STIR/SHAKEN identity failures (SIP 428/436/437/438, stale Date): the network refused the
  // call over caller identity, not the callee.
  NO_IDENTITY: 'congestion',
  BAD_IDENTITY_INFO: 'congestion',
  UNSUPPORTED_CERTIFICATE: 'congestion',
  INVALID_IDENTITY: 'congestion',
  STALE_DATE: 'congestion',
  // SIP 608 Rejected: a call-blocking service refused it on the callee's behalf, like DND.
  REJECT_ALL: 'noAnswer',
});

/**
 * A FreeSWITCH hangup/originate cause (Q.850 name like USER_BUSY, NO_ANSWER, ORIGINATOR_CANCEL,
 * ...) of a bridge that never got answered -> Zammad's cause. Case-insensitive, trimmed; an
 * unknown or empty cause is `congestion` ("not reached").
 */
export function causeOfFailedBridge(fsCause: string): ZammadCause {
  const key = normaliseCause(fsCause);
  return Object.hasOwn(FAILED_BRIDGE_CAUSES, key) ? (FAILED_BRIDGE_CAUSES[key] ?? 'congestion') : 'congestion';
}

/** Did the caller give up while it rang (ORIGINATOR_CANCEL)? Case-insensitive, trimmed. */
export function isCallerCancel(fsCause: string): boolean {
  return normaliseCause(fsCause) === 'ORIGINATOR_CANCEL';
}

function normaliseCause(fsCause: string): string {
  return typeof fsCause === 'string' ? fsCause.trim().toUpperCase() : '';
}
