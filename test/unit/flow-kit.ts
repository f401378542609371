/**
 * What the state machine's tests (flow.test.ts, pickup-transfer.test.ts) share: the rules, a call's
 * first state from its channel headers, and inputs fed one after another.
 */
import { callFacts, type CallRules } from '../../src/call/facts.js';
import { initialState, step, type CallState, type CtiPost, type Effect, type Input } from '../../src/call/flow.js';
import type { ChannelSignal } from '../../src/call/signals.js';

/** Bridge mode: a call without zammad_bridge rings the user it dialled. */
export const rules: CallRules = {
  defaultCountryCode: '49',
  extensionMaxDigits: 6,
  inboundContexts: ['public'],
  defaultBridge: 'user/${destination_number}@${domain_name}',
};

/** Dialplan mode: DEFAULT_BRIDGE empty. */
export const dpRules: CallRules = { ...rules, defaultBridge: '' };

/** The state of a call whose channel has these headers, its facts read with `callRules`. */
export function stateOf(headers: Record<string, string>, callRules: CallRules): CallState {
  return initialState(
    callFacts((k) => headers[k], callRules),
    true,
  );
}

/** Feeds inputs one after another with `callRules`; returns the final state and every effect, in order. */
export function runner(
  callRules: CallRules,
): (s: CallState, inputs: Input[]) => { state: CallState; effects: Effect[] } {
  return (s, inputs) => {
    const effects: Effect[] = [];
    let state = s;
    for (const input of inputs) {
      const r = step(state, input, callRules);
      state = r.state;
      effects.push(...r.effects);
    }
    return { state, effects };
  };
}

export const sig = (signal: ChannelSignal): Input => ({ type: 'signal', signal });
export const posts = (effects: Effect[]): CtiPost[] =>
  effects.flatMap((e): CtiPost[] => (e.type === 'post' || e.type === 'decide' ? [e.post] : []));
