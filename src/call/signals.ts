/**
 * Which switch events matter to a call, and what they mean. Pure: reads headers, returns facts.
 * Every rule here is seen in test/fixtures/esl (README observations; routing/README.md
 * for calls routed by the dialplan) or in docs/reference/freeswitch.md; the comment names which.
 */
import type { SwitchEvent } from '../switch/esl-connection.js';

export type ChannelSignal =
  /**
   * A person was connected to the caller. The caller channel's own CHANNEL_BRIDGE names the leg
   * that won — group rings, a mod_callcenter agent, the target of a transfer (routing/ obs. 4 and
   * 7). A `uuid_bridge` that makes the caller the bridge's second party — pickup (`intercept`),
   * attended transfer (`att_xfer`), a retrieve from park — fires no CHANNEL_BRIDGE on the caller:
   * its sign is the caller's CHANNEL_EXECUTE `uuid_bridge` (test/fixtures/esl/transfers/README.md).
   */
  | {
      kind: 'bridged';
      otherNumber: string;
      otherChannel: string;
      otherUuid: string;
      /**
       * The other leg called in (Other-Leg-Direction inbound): a phone that picked the call up or
       * retrieved it. Its person is its own caller: this is its caller id number.
       */
      phoneNumber?: string;
    }
  /**
   * A `bridge` application returned; `cause` is its originate result when it failed.
   * `transferSource` is the channel's transfer_source then: a new one means the caller was
   * transferred away while the bridge ran (routing/ obs. 7 and 8).
   */
  | { kind: 'bridgeDone'; cause: string | undefined; transferSource: string | undefined }
  /** The caller channel runs `voicemail <profile> <domain> <mailbox>` (routing/ obs. 6). */
  | { kind: 'voicemail'; mailbox: string }
  /** The `socket` application returned: the call no longer depends on this connection (routing/ obs. 2). */
  | { kind: 'socketReturned' }
  /** The caller channel went down (CHANNEL_HANGUP). */
  | { kind: 'hangup'; cause: string; bridgeCause: string | undefined }
  /** The last event of the channel (CHANNEL_HANGUP_COMPLETE): the call is over. */
  | { kind: 'hangupComplete'; cause: string; bridgeCause: string | undefined };

/**
 * The originate result. CHANNEL_ANSWER in a group ring still carries stale values from the losing
 * legs (originate_disposition=failure, DIALSTATUS=INVALIDARGS — docs/reference/freeswitch.md), so this is
 * read only from the bridge's EXECUTE_COMPLETE and the hangup events, where it is final.
 */
function originateCause(e: SwitchEvent): string | undefined {
  return e.get('variable_originate_failed_cause') || e.get('variable_originate_disposition') || undefined;
}

/**
 * `default test.local 2002` → `2002`: voicemail's arguments are [check] [auth] profile domain
 * mailbox (mod_voicemail). `check` is someone listening to their messages, not a caller leaving
 * one: undefined then.
 */
function mailboxOf(data: string): string | undefined {
  const words = data.trim().split(/\s+/);
  if (words[0] === 'check') return undefined;
  return words.filter((w) => w !== 'auth')[2] ?? '';
}

/**
 * The leg an event of the caller channel names in its Other-Leg-* headers (FreeSWITCH puts the
 * bridge partner's caller profile there: switch_channel_event_set_basic_data).
 */
export function otherLeg(e: SwitchEvent, uuid?: string): Extract<ChannelSignal, { kind: 'bridged' }> {
  const phone = e.get('Other-Leg-Direction') === 'inbound' ? e.get('Other-Leg-Caller-ID-Number') : undefined;
  return {
    kind: 'bridged',
    otherNumber: e.get('Other-Leg-Destination-Number') ?? '',
    otherChannel: e.get('Other-Leg-Channel-Name') ?? '',
    otherUuid: uuid || e.get('Other-Leg-Unique-ID') || e.get('Bridge-B-Unique-ID') || '',
    ...(phone ? { phoneNumber: phone } : {}),
  };
}

/**
 * Events the adapter reads; anything else is skipped by name before a header of it is decoded.
 * A CHANNEL_ANSWER is deliberately not read: the switch answering the caller (IVR greeting,
 * queue music, voicemail) is not a person answering (routing/ obs. 5).
 */
export function readSignal(e: SwitchEvent): ChannelSignal | null {
  switch (e.name) {
    case 'CHANNEL_BRIDGE':
      return otherLeg(e);
    case 'CHANNEL_EXECUTE': {
      // switch_ivr_bridge.c uuid_bridge_on_soft_execute fires it with the second party's data and
      // the first party's uuid as Application-Data: the caller was bridged to that channel.
      if (e.get('Application') === 'uuid_bridge') return otherLeg(e, e.get('Application-Data'));
      const mailbox = e.get('Application') === 'voicemail' ? mailboxOf(e.get('Application-Data') ?? '') : undefined;
      return mailbox === undefined ? null : { kind: 'voicemail', mailbox };
    }
    case 'CHANNEL_EXECUTE_COMPLETE': {
      const app = e.get('Application');
      if (app === 'bridge')
        return { kind: 'bridgeDone', cause: originateCause(e), transferSource: e.get('variable_transfer_source') };
      if (app === 'socket') return { kind: 'socketReturned' };
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
export const DIALPLAN_EVENT_FILTERS: readonly (readonly [header: string, value: string])[] = [
  ['Event-Name', 'CHANNEL_BRIDGE'],
  ['Event-Name', 'CHANNEL_HANGUP'],
  ['Event-Name', 'CHANNEL_HANGUP_COMPLETE'],
  ['Application', 'bridge'],
  ['Application', 'uuid_bridge'],
  ['Application', 'voicemail'],
  ['Application', 'socket'],
];
