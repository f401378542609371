/**
 * Channel data (FreeSWITCH's reply to `connect`) → the facts of a call as Zammad needs them.
 * Pure: the channel is read through a header lookup, nothing else.
 */
import { callerNumber, toE164Digits, type NumberRules } from './numbers.js';
import { expandVariables, parseDialString, type DialTarget } from './dialstring.js';
import { CHANNEL_ID_MAX, isChannelId } from '../switch/channel-id.js';

export type Direction = 'in' | 'out';

/**
 * Who routes the call after Zammad's decision. `bridge`: the adapter bridges the call's dial
 * string itself (`zammad_bridge` or DEFAULT_BRIDGE). `dialplan`: no dial string — the adapter
 * hands the call back to the dialplan (`transfer`) and follows it to its end.
 */
export type RoutingMode = 'bridge' | 'dialplan';

export interface CallRules extends NumberRules {
  inboundContexts: readonly string[];
  defaultBridge: string;
}

export interface CallFacts {
  readonly callId: string;
  readonly direction: Direction;
  /** E.164 digits without '+', an internal extension, or 'anonymous'. */
  readonly from: string;
  readonly to: string;
  /** The caller id name as the switch has it (the calling person for outbound calls). */
  readonly callerName: string;
  /** The caller's number as dialled from (an extension for outbound calls). */
  readonly callerRaw: string;
  /** What `bridge` runs, unexpanded: FreeSWITCH expands the variables itself. */
  readonly dialString: string;
  readonly targets: readonly DialTarget[];
  /** `zammad_users` from the dialplan, when set. */
  readonly explicitUsers: readonly string[] | null;
  readonly mode: RoutingMode;
  /** The gate set `zammad_handled` before `socket`: the hand-back transfer will not re-enter it. */
  readonly gated: boolean;
  /** `zammad_queue`: sent as Zammad's `queue` on every event (its caller-log filter). */
  readonly queue?: string;
  /**
   * `transfer_source` when the socket connected. FreeSWITCH rewrites it on every transfer of the
   * channel (REFER, uuid_transfer, dialplan transfer): a new value means the call was moved.
   */
  readonly transferSource: string;
  /**
   * The hand-back `transfer ${destination_number} XML ${context}` is one destination and one
   * context: neither holds a space or a quote. mod_dptools' transfer splits its argument at
   * spaces, so a destination like `1000 XML default` (a SIP user part may carry %20) would move a
   * caller from `public` into another context.
   */
  readonly handBackSafe: boolean;
  /** `zammad_endpoint`: the name of the Zammad this call goes to (zammad/endpoint-choice.ts). */
  readonly zammadEndpoint?: string;
  /** `domain_name` (FusionPBX sets it per tenant): picks the tenant's Zammad. */
  readonly domain?: string;
}

export type Lookup = (header: string) => string | undefined;

/** Caller-profile fields FreeSWITCH offers as `${…}` besides channel variables. */
const PROFILE_FIELDS: Record<string, string> = {
  destination_number: 'Caller-Destination-Number',
  caller_id_number: 'Caller-Caller-ID-Number',
  caller_id_name: 'Caller-Caller-ID-Name',
  ani: 'Caller-ANI',
  context: 'Caller-Context',
  uuid: 'Unique-ID',
};

export function channelVariable(get: Lookup, name: string): string | undefined {
  const v = get(`variable_${name}`);
  return v === undefined || v === '' ? undefined : v;
}

export function isWithheldFlag(get: Lookup): boolean {
  // Seen on a real switch: a CLIR caller keeps the real number, with this flag and/or sip Privacy: id.
  const flag = (get('Caller-Privacy-Hide-Number') ?? get('Channel-Privacy-Hide-Number') ?? '').toLowerCase() === 'true';
  const sipPrivacy = (channelVariable(get, 'sip_Privacy') ?? '').toLowerCase();
  return flag || /(^|[;,\s])id($|[;,\s])/.test(sipPrivacy);
}

export function directionOf(get: Lookup, rules: CallRules): Direction {
  const explicit = channelVariable(get, 'zammad_direction')?.trim().toLowerCase();
  if (explicit === 'in' || explicit === 'out') return explicit;
  const context = get('Caller-Context') ?? get('Channel-Context') ?? '';
  return rules.inboundContexts.includes(context) ? 'in' : 'out';
}

export function splitUsers(value: string | undefined): string[] | null {
  if (value === undefined) return null;
  const users = value
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u.length > 0);
  return users.length > 0 ? users : null;
}

/** What decides how a call is routed: read alone when a call is shed (process/calls.ts), a handful of look-ups. */
export type RoutingFacts = Pick<CallFacts, 'callId' | 'dialString' | 'mode' | 'gated' | 'handBackSafe'>;

export function routingFacts(get: Lookup, rules: CallRules): RoutingFacts {
  const dialString = channelVariable(get, 'zammad_bridge') ?? rules.defaultBridge;
  const destination = get('Caller-Destination-Number') ?? get('Channel-Destination-Number') ?? '';
  return {
    callId: get('Unique-ID') ?? get('Channel-Unique-ID') ?? get('Caller-Unique-ID') ?? '',
    dialString,
    mode: dialString.trim() === '' ? 'dialplan' : 'bridge',
    gated: channelVariable(get, 'zammad_handled') !== undefined,
    handBackSafe: [destination, get('Caller-Context') ?? get('Channel-Context') ?? ''].every((v) =>
      /^[^\s'"\\{}$]+$/.test(v),
    ),
  };
}

export function callFacts(get: Lookup, rules: CallRules): CallFacts {
  const routing = routingFacts(get, rules);
  const callerRaw = get('Caller-Caller-ID-Number') ?? get('Channel-Caller-ID-Number') ?? get('Caller-ANI') ?? '';
  const destination = get('Caller-Destination-Number') ?? get('Channel-Destination-Number') ?? '';
  const expand = (name: string) => {
    const field = PROFILE_FIELDS[name];
    return (field ? get(field) : undefined) ?? channelVariable(get, name);
  };
  return {
    ...routing,
    direction: directionOf(get, rules),
    from: callerNumber(callerRaw, isWithheldFlag(get), rules),
    to: toE164Digits(destination, rules),
    callerName: get('Caller-Caller-ID-Name') ?? '',
    callerRaw,
    targets: parseDialString(expandVariables(routing.dialString, expand)),
    explicitUsers: splitUsers(channelVariable(get, 'zammad_users')),
    ...queueOf(channelVariable(get, 'zammad_queue')),
    transferSource: channelVariable(get, 'transfer_source') ?? '',
    ...optional('zammadEndpoint', channelVariable(get, 'zammad_endpoint')),
    ...optional('domain', channelVariable(get, 'domain_name')),
  };
}

function optional<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}

/** A queue name goes into every post: one printable line, Zammad's column holds it. */
function queueOf(value: string | undefined): { queue?: string } {
  const q = value?.trim();
  return q && q.length <= 250 && !/[\x00-\x1f\x7f]/.test(q) ? { queue: q } : {};
}

/** Why a connect reply cannot be a call we can report; undefined when it can. */
export function missingFacts(facts: CallFacts): string | undefined {
  if (!facts.callId) return 'no Unique-ID in the channel data';
  if (!isChannelId(facts.callId)) {
    return `the Unique-ID is not a printable id of at most ${CHANNEL_ID_MAX} characters (no space, no leading +-/)`;
  }
  return undefined;
}
