import { observedState, step } from './flow.js';
import { readSignal } from './signals.js';
export class ObservedCall {
    rules;
    post;
    log;
    state;
    constructor(facts, answered, answeringNumber, rules, post, log) {
        this.rules = rules;
        this.post = post;
        this.log = log;
        this.state = observedState(facts, answered, answeringNumber);
    }
    seen = false;
    get ended() {
        return this.state.hangupPosted;
    }
    /** Whether any event of the call arrived since the re-attach. */
    get seenEvents() {
        return this.seen;
    }
    onEvent(e) {
        this.seen = true;
        const otherUuid = e.get('Other-Leg-Unique-ID') ?? '';
        if (!this.state.answered && otherUuid !== '' && Number(e.get('Caller-Channel-Answered-Time') ?? '0') > 0) {
            // A person answered while no adapter was following the call (its CHANNEL_BRIDGE is gone):
            // every event of a bridged caller channel names the leg it is bridged to (Other-Leg-*).
            // An answer time alone is not a person: the switch answers for an IVR, a queue's music
            // or voicemail too (routing/ obs. 5). Report the answer before whatever this event means,
            // so that the hangup that follows says normalClearing and Zammad does not mark the call missed.
            this.apply({ type: 'signal', signal: { kind: 'bridged', otherNumber: e.get('Other-Leg-Destination-Number') ?? '', otherChannel: e.get('Other-Leg-Channel-Name') ?? '', otherUuid } });
        }
        const signal = readSignal(e);
        if (signal)
            this.apply({ type: 'signal', signal });
    }
    /** The watch ended before the call did: report what is known. */
    lost() {
        this.apply({ type: 'connectionLost' });
    }
    apply(input) {
        const { state, effects } = step(this.state, input, this.rules);
        this.state = state;
        for (const effect of effects) {
            if (effect.type === 'post')
                this.post(effect.post);
            else if (effect.type === 'log')
                this.log[effect.level](effect.message, effect.fields);
            // No call socket to ask the directory through: the answer names the number only.
            else if (effect.type === 'lookupAnswerer')
                this.apply({ type: 'answererResolved', leg: effect.leg, answerer: {} });
        }
    }
}
//# sourceMappingURL=observer.js.map