/**
 * The originate result. CHANNEL_ANSWER in a group ring still carries stale values from the losing
 * legs (originate_disposition=failure, DIALSTATUS=INVALIDARGS — freeswitch-facts.md), so this is
 * read only from the bridge's EXECUTE_COMPLETE and the hangup events, where it is final.
 */
function originateCause(e) {
    return e.get('variable_originate_failed_cause') || e.get('variable_originate_disposition') || undefined;
}
/**
 * `default test.local 2002` → `2002`: voicemail's arguments are [check] [auth] profile domain
 * mailbox (mod_voicemail). `check` is someone listening to their messages, not a caller leaving
 * one: undefined then.
 */
function mailboxOf(data) {
    const words = data.trim().split(/\s+/);
    if (words[0] === 'check')
        return undefined;
    return words.filter((w) => w !== 'auth')[2] ?? '';
}
/**
 * Events the adapter reads; anything else is skipped by name before a header of it is decoded.
 * A CHANNEL_ANSWER is deliberately not read: the switch answering the caller (IVR greeting,
 * queue music, voicemail) is not a person answering (routing/ obs. 5).
 */
export function readSignal(e) {
    switch (e.name) {
        case 'CHANNEL_BRIDGE':
            return {
                kind: 'bridged',
                otherNumber: e.get('Other-Leg-Destination-Number') ?? '',
                otherChannel: e.get('Other-Leg-Channel-Name') ?? '',
                otherUuid: e.get('Other-Leg-Unique-ID') ?? e.get('Bridge-B-Unique-ID') ?? '',
            };
        case 'CHANNEL_EXECUTE': {
            const mailbox = e.get('Application') === 'voicemail' ? mailboxOf(e.get('Application-Data') ?? '') : undefined;
            return mailbox === undefined ? null : { kind: 'voicemail', mailbox };
        }
        case 'CHANNEL_EXECUTE_COMPLETE': {
            const app = e.get('Application');
            if (app === 'bridge')
                return { kind: 'bridgeDone', cause: originateCause(e), transferSource: e.get('variable_transfer_source') };
            if (app === 'socket')
                return { kind: 'socketReturned' };
            return null;
        }
        case 'CHANNEL_HANGUP':
            return { kind: 'hangup', cause: e.get('Hangup-Cause') ?? '', bridgeCause: originateCause(e) };
        case 'CHANNEL_HANGUP_COMPLETE':
            return { kind: 'hangupComplete', cause: e.get('Hangup-Cause') ?? '', bridgeCause: originateCause(e) };
        default:
            return null;
    }
}
/**
 * What the adapter asks FreeSWITCH for in dialplan mode, on top of `myevents` (which filters by
 * the channel's Unique-ID). mod_event_socket.c event_handler(): once a listener has filters, an
 * event is sent only when one of them matches a header it carries — so this list lets through
 * exactly the events readSignal() reads, and not the CHANNEL_EXECUTE/EXECUTE_COMPLETE pair
 * (~8 KB each) of every `set`/`export` a shop's dialplan runs.
 */
export const DIALPLAN_EVENT_FILTERS = [
    ['Event-Name', 'CHANNEL_BRIDGE'],
    ['Event-Name', 'CHANNEL_HANGUP'],
    ['Event-Name', 'CHANNEL_HANGUP_COMPLETE'],
    ['Application', 'bridge'],
    ['Application', 'voicemail'],
    ['Application', 'socket'],
];
//# sourceMappingURL=signals.js.map