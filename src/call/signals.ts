/**
 * Which switch events matter to a call, and what they mean. Pure: reads headers, returns facts.
 * Every rule here is seen in ../shared/esl-transcripts (README observations 5 and 8) or in
 * ../shared/spec/freeswitch-facts.md; the comment names which.
 */
import type { SwitchEvent } from '../switch/esl-connection.js';

export type ChannelSignal =
  /** A person picked up: the caller channel's own CHANNEL_BRIDGE names the leg that won (group rings too). */
  | { kind: 'bridged'; otherNumber: string; otherChannel: string }
  /** The bridge application returned; `cause` is its originate result when it failed. */
  | { kind: 'bridgeDone'; cause: string | undefined; transferred: boolean }
  /** The caller channel went down (CHANNEL_HANGUP). */
  | { kind: 'hangup'; cause: string; bridgeCause: string | undefined; transferred: boolean }
  /** The last event of the channel (CHANNEL_HANGUP_COMPLETE): the call is over. */
  | { kind: 'hangupComplete'; cause: string; bridgeCause: string | undefined; transferred: boolean }
  /** The caller channel was transferred elsewhere (blind/attended transfer, redirect). */
  | { kind: 'transferred' };

const TRANSFER_CAUSES = new Set(['ATTENDED_TRANSFER', 'BLIND_TRANSFER', 'REDIRECTION_TO_NEW_DESTINATION', 'DEFLECTION']);

/**
 * The originate result. CHANNEL_ANSWER in a group ring still carries stale values from the losing
 * legs (originate_disposition=failure, DIALSTATUS=INVALIDARGS — freeswitch-facts.md), so this is
 * read only from the bridge's EXECUTE_COMPLETE and the hangup events, where it is final.
 */
function originateCause(e: SwitchEvent): string | undefined {
  return e.get('variable_originate_failed_cause') || e.get('variable_originate_disposition') || undefined;
}

function wasTransferred(e: SwitchEvent): boolean {
  const causes = [e.get('variable_last_bridge_hangup_cause'), e.get('variable_bridge_hangup_cause'), e.get('variable_originate_disposition')];
  // Not variable_transfer_history: a dialplan transfer before the socket already sets it.
  return causes.some((c) => c !== undefined && TRANSFER_CAUSES.has(c));
}

export function readSignal(e: SwitchEvent): ChannelSignal | null {
  switch (e.name) {
    case 'CHANNEL_BRIDGE':
      return { kind: 'bridged', otherNumber: e.get('Other-Leg-Destination-Number') ?? '', otherChannel: e.get('Other-Leg-Channel-Name') ?? '' };
    case 'CHANNEL_EXECUTE_COMPLETE': {
      const app = e.get('Application');
      if (app === 'bridge') return { kind: 'bridgeDone', cause: originateCause(e), transferred: wasTransferred(e) };
      if (app === 'transfer' || app === 'deflect' || app === 'redirect') return { kind: 'transferred' };
      return null;
    }
    case 'CHANNEL_HANGUP':
      return { kind: 'hangup', cause: e.get('Hangup-Cause') ?? '', bridgeCause: originateCause(e), transferred: wasTransferred(e) };
    case 'CHANNEL_HANGUP_COMPLETE':
      return { kind: 'hangupComplete', cause: e.get('Hangup-Cause') ?? '', bridgeCause: originateCause(e), transferred: wasTransferred(e) };
    default:
      return null;
  }
}
