/**
 * Channel data (FreeSWITCH's reply to `connect`) → the facts of a call as Zammad needs them.
 * Pure: the channel is read through a header lookup, nothing else.
 */
import { callerNumber, toE164Digits } from './numbers.js';
import { expandVariables, parseDialString } from './dialstring.js';
/** Caller-profile fields FreeSWITCH offers as `${…}` besides channel variables. */
const PROFILE_FIELDS = {
    destination_number: 'Caller-Destination-Number',
    caller_id_number: 'Caller-Caller-ID-Number',
    caller_id_name: 'Caller-Caller-ID-Name',
    ani: 'Caller-ANI',
    context: 'Caller-Context',
    uuid: 'Unique-ID',
};
export function channelVariable(get, name) {
    const v = get(`variable_${name}`);
    return v === undefined || v === '' ? undefined : v;
}
export function isWithheldFlag(get) {
    // Seen on a real switch: a CLIR caller keeps the real number, with this flag and/or sip Privacy: id.
    const flag = (get('Caller-Privacy-Hide-Number') ?? get('Channel-Privacy-Hide-Number') ?? '').toLowerCase() === 'true';
    const sipPrivacy = (channelVariable(get, 'sip_Privacy') ?? '').toLowerCase();
    return flag || /(^|[;,\s])id($|[;,\s])/.test(sipPrivacy);
}
export function directionOf(get, rules) {
    const explicit = channelVariable(get, 'zammad_direction')?.trim().toLowerCase();
    if (explicit === 'in' || explicit === 'out')
        return explicit;
    const context = get('Caller-Context') ?? get('Channel-Context') ?? '';
    return rules.inboundContexts.includes(context) ? 'in' : 'out';
}
export function splitUsers(value) {
    if (value === undefined)
        return null;
    const users = value
        .split(',')
        .map((u) => u.trim())
        .filter((u) => u.length > 0);
    return users.length > 0 ? users : null;
}
export function callFacts(get, rules) {
    const callId = get('Unique-ID') ?? get('Channel-Unique-ID') ?? get('Caller-Unique-ID') ?? '';
    const callerRaw = get('Caller-Caller-ID-Number') ?? get('Channel-Caller-ID-Number') ?? get('Caller-ANI') ?? '';
    const destination = get('Caller-Destination-Number') ?? get('Channel-Destination-Number') ?? '';
    const dialString = channelVariable(get, 'zammad_bridge') ?? rules.defaultBridge;
    const expand = (name) => {
        const field = PROFILE_FIELDS[name];
        return (field ? get(field) : undefined) ?? channelVariable(get, name);
    };
    return {
        callId,
        direction: directionOf(get, rules),
        from: callerNumber(callerRaw, isWithheldFlag(get), rules),
        to: toE164Digits(destination, rules),
        callerName: get('Caller-Caller-ID-Name') ?? '',
        callerRaw,
        dialString,
        targets: parseDialString(expandVariables(dialString, expand)),
        explicitUsers: splitUsers(channelVariable(get, 'zammad_users')),
        mode: dialString.trim() === '' ? 'dialplan' : 'bridge',
        gated: channelVariable(get, 'zammad_handled') !== undefined,
        ...queueOf(channelVariable(get, 'zammad_queue')),
        transferSource: channelVariable(get, 'transfer_source') ?? '',
        ...optional('zammadEndpoint', channelVariable(get, 'zammad_endpoint')),
        ...optional('domain', channelVariable(get, 'domain_name')),
        handBackSafe: [destination, get('Caller-Context') ?? get('Channel-Context') ?? ''].every((v) => /^[^\s'"\\{}$]+$/.test(v)),
    };
}
function optional(key, value) {
    return (value === undefined ? {} : { [key]: value });
}
/** A queue name goes into every post: one printable line, Zammad's column holds it. */
function queueOf(value) {
    const q = value?.trim();
    return q && q.length <= 250 && !/[\x00-\x1f\x7f]/.test(q) ? { queue: q } : {};
}
/** Why a connect reply cannot be a call we can report; undefined when it can. */
export function missingFacts(facts) {
    if (!facts.callId)
        return 'no Unique-ID in the channel data';
    if (!/^[\x21-\x7e]{1,250}$/.test(facts.callId))
        return 'the Unique-ID is not a printable id of at most 250 characters';
    return undefined;
}
//# sourceMappingURL=facts.js.map