/**
 * A call picked up again after a restart through FreeSWITCH's inbound socket: flow.ts in
 * re-attached mode, fed the channel's events; it only reports to Zammad (answer, hangup).
 */
import type { Logger } from '../process/log.js';
import type { SwitchEvent } from '../switch/esl-connection.js';
import type { CallFacts } from './facts.js';
import { reattachedState, step, type CallState, type CtiPost } from './flow.js';
import type { NumberRules } from './numbers.js';
import { otherLeg, readSignal } from './signals.js';

export class ReattachedCall {
  private state: CallState;

  constructor(
    facts: CallFacts,
    answered: boolean,
    answeringNumber: string | undefined,
    private readonly rules: NumberRules,
    private readonly post: (post: CtiPost) => void,
    private readonly log: Logger,
  ) {
    this.state = reattachedState(facts, answered, answeringNumber);
  }

  private seen = false;

  /** Whether any event of the call arrived since the re-attach. */
  get seenEvents(): boolean {
    return this.seen;
  }

  onEvent(e: SwitchEvent): void {
    this.seen = true;
    const otherUuid = e.get('Other-Leg-Unique-ID') ?? '';
    if (!this.state.answered && otherUuid !== '' && Number(e.get('Caller-Channel-Answered-Time') ?? '0') > 0) {
      // A person answered while no adapter was following the call (its CHANNEL_BRIDGE is gone):
      // every event of a bridged caller channel names the leg it is bridged to (Other-Leg-*).
      // An answer time alone is not a person: the switch answers for an IVR, a queue's music
      // or voicemail too (routing/ obs. 5). Report the answer before whatever this event means,
      // so that the hangup that follows says normalClearing and Zammad does not mark the call missed.
      this.apply({ type: 'signal', signal: otherLeg(e) });
    }
    const signal = readSignal(e);
    if (signal) this.apply({ type: 'signal', signal });
  }

  /** The inbound socket let go before the call ended: report what is known. */
  lost(): void {
    this.apply({ type: 'connectionLost' });
  }

  private apply(input: Parameters<typeof step>[1]): void {
    const { state, effects } = step(this.state, input, this.rules);
    this.state = state;
    for (const effect of effects) {
      if (effect.type === 'post') this.post(effect.post);
      else if (effect.type === 'log') this.log[effect.level](effect.message, effect.fields);
      // No call socket to ask the directory through: the answer names the number only.
      else if (effect.type === 'lookupAnswerer')
        this.apply({ type: 'answererResolved', leg: effect.leg, answerer: {} });
    }
  }
}
