/**
 * The one rule for a channel's Unique-ID: which ids the adapter reports (call/facts.ts), looks up
 * (a B-leg in call/session.ts) and re-attaches after a restart (inbound.ts). One rule, so that a
 * call that is reported can also be followed again after a restart.
 *
 * What FreeSWITCH allows: its own ids are RFC 4122 uuids, but `origination_uuid` gives a channel
 * whatever the dialplan or the originating application says — switch_core_session_set_uuid()
 * checks only that no other channel has it, and keeps up to 256 bytes. So an id with dots, colons
 * or '@' is a real id.
 *
 * What the rule protects against: the id is written onto the event socket in `api uuid_exists
 * <id>`, `api uuid_getvar <id> <var>` and `filter Unique-ID <id>`, and sent to Zammad as callId.
 *  - printable ASCII, no space: a space ends the argument, a line break ends the command (and the
 *    next line would be a command of its own), other control characters have no place on the wire;
 *  - no leading '+', '-' or '/': mod_event_socket reads these at the start of a filter value as
 *    "include", "exclude" and "regular expression" (event_handler()), so the filter would not be
 *    this channel's;
 *  - at most 250 characters: Zammad's cti_logs.call_id column; a longer id is stored cut, and the
 *    call's answer and hangup would then find no call.
 */

/** Zammad's cti_logs.call_id column. */
export const CHANNEL_ID_MAX = 250;

const CHANNEL_ID = new RegExp(`^(?![+\\-/])[\\x21-\\x7e]{1,${CHANNEL_ID_MAX}}$`);

/** Whether `id` is a Unique-ID the adapter may report, write onto the event socket and follow again. */
export function isChannelId(id: string): boolean {
  return CHANNEL_ID.test(id);
}
