/**
 * Collects the events of every channel on one inbound-ESL subscription and groups them into
 * test calls ("legs of a tag").
 *
 * How a leg is tied to its test call (all seen on FreeSWITCH 1.10.12):
 *  - the caller channel placed by `originate` has the uuid the suite chose (origination_uuid);
 *  - the `sip_h_X-Cti-Test` variable set on the caller goes out as a SIP header and arrives on
 *    the lo-in channel as `variable_sip_h_X-Cti-Test` (already on its CHANNEL_CREATE); FreeSWITCH
 *    copies X- headers to the B-legs it bridges and so to the far end (freeswitch-facts.md);
 *  - legs FreeSWITCH originates for a channel carry `variable_originator` = that channel's uuid
 *    (switch_ivr_originate.c sets SWITCH_ORIGINATOR_VARIABLE on every peer);
 *  - mod_callcenter's agent legs carry none of ours: they name the member's channel in
 *    `variable_cc_member_session_uuid` (mod_callcenter.c sets it on the agent originate).
 */
import type { EslClient, FsEvent } from './esl-client.js';

export const TAG_HEADER = 'X-Cti-Test';
const TAG_VAR = `variable_sip_h_${TAG_HEADER}`;

/** The channel events the collector subscribes to (all carry the channel's variables). */
export const LEG_EVENTS = [
  'CHANNEL_CREATE',
  'CHANNEL_OUTGOING',
  'CHANNEL_ORIGINATE',
  'CHANNEL_PROGRESS',
  'CHANNEL_PROGRESS_MEDIA',
  'CHANNEL_ANSWER',
  'CHANNEL_BRIDGE',
  'CHANNEL_UNBRIDGE',
  'CHANNEL_EXECUTE',
  'CHANNEL_EXECUTE_COMPLETE',
  'CHANNEL_PARK',
  'CHANNEL_HANGUP',
  'CHANNEL_HANGUP_COMPLETE',
  'CHANNEL_DESTROY',
  'CALL_UPDATE',
] as const;

export type LegRole =
  /** the test caller: the lo-targets channel placed by originate (uuid chosen by the suite) */
  | 'caller'
  /** the call as it arrives on lo-in (context public): the channel the adapter is handed */
  | 'inbound'
  /** a leg the switch dials out of lo-in (bridge targets, agent legs) */
  | 'bleg'
  /** the far end of a bleg on lo-targets: the scripted phone */
  | 'phone'
  | 'other';

export class Leg {
  readonly events: FsEvent[] = [];
  /** the test tag this leg carries (variable_sip_h_X-Cti-Test), once seen */
  tag: string | undefined;
  /** the channel this leg was originated for (variable_originator / variable_cc_member_session_uuid) */
  parent: string | undefined;
  constructor(readonly uuid: string) {}

  /** the latest value of a header over this leg's events */
  get(name: string): string | undefined {
    for (let i = this.events.length - 1; i >= 0; i--) {
      const v = this.events[i]?.headers[name];
      if (v !== undefined) return v;
    }
    return undefined;
  }

  /** the first value of a header */
  first(name: string): string | undefined {
    for (const e of this.events) {
      const v = e.headers[name];
      if (v !== undefined) return v;
    }
    return undefined;
  }

  get channelName(): string {
    return this.first('Channel-Name') ?? '';
  }

  get direction(): string {
    return this.first('Call-Direction') ?? '';
  }

  get role(): LegRole {
    const name = this.channelName;
    if (name.startsWith('sofia/lo-in/')) return this.direction === 'inbound' ? 'inbound' : 'bleg';
    if (name.startsWith('sofia/lo-targets/')) return this.direction === 'inbound' ? 'phone' : 'caller';
    return 'other';
  }

  names(): string[] {
    return this.events.map((e) => e.name);
  }

  has(eventName: string): boolean {
    return this.events.some((e) => e.name === eventName);
  }

  event(eventName: string, pred: (e: FsEvent) => boolean = () => true): FsEvent | undefined {
    return this.events.find((e) => e.name === eventName && pred(e));
  }

  /** CHANNEL_EXECUTE of an application (e.g. 'bridge', 'socket') */
  executed(app: string): FsEvent | undefined {
    return this.event('CHANNEL_EXECUTE', (e) => e.headers['Application'] === app);
  }

  get ended(): boolean {
    return this.has('CHANNEL_HANGUP_COMPLETE');
  }

  get hangupCause(): string | undefined {
    return (
      this.event('CHANNEL_HANGUP_COMPLETE')?.headers['Hangup-Cause'] ??
      this.event('CHANNEL_HANGUP')?.headers['Hangup-Cause']
    );
  }

  /** the SIP status the far side answered or ended this leg with (e.g. 486) */
  get sipTermStatus(): string | undefined {
    return this.get('variable_sip_term_status');
  }

  /** Event-Date-Timestamp (µs since the epoch) of an event, as the switch stamped it (20 ms clock) */
  static at(e: FsEvent | undefined): number {
    return e ? Number(e.headers['Event-Date-Timestamp'] ?? NaN) : NaN;
  }
}

/** A test call: every leg tied to one tag (and its caller uuid). */
export class TestCallLegs {
  constructor(
    readonly tag: string,
    readonly legs: Leg[],
  ) {}

  byRole(role: LegRole): Leg[] {
    return this.legs.filter((l) => l.role === role);
  }

  one(role: LegRole): Leg {
    const found = this.byRole(role);
    if (found.length !== 1)
      throw new Error(`${this.tag}: expected one ${role} leg, found ${found.length}: ${this.describe()}`);
    return found[0] as Leg;
  }

  /** "role name cause" per leg, for assertion messages */
  describe(): string {
    return this.legs
      .map((l) => `${l.role} ${l.channelName} ${l.hangupCause ?? 'up'} [${l.names().join(',')}]`)
      .join(' | ');
  }
}

export class LegCollector {
  private readonly legs = new Map<string, Leg>();
  /** tag → caller uuid, registered by the call placer before it originates */
  private readonly callers = new Map<string, string>();
  private readonly watchers = new Set<() => void>();
  private detach: (() => void) | undefined;

  /** Subscribes `client` to LEG_EVENTS and starts collecting. */
  static async attach(client: EslClient): Promise<LegCollector> {
    const c = new LegCollector();
    c.detach = client.onEvent((e) => c.onEvent(e));
    await client.subscribe(LEG_EVENTS);
    return c;
  }

  stop(): void {
    this.detach?.();
  }

  registerCaller(tag: string, callerUuid: string): void {
    this.callers.set(tag, callerUuid);
  }

  /** every leg belonging to `tag`, in the order their first event arrived */
  legsOf(tag: string): TestCallLegs {
    const members = new Set<string>();
    const caller = this.callers.get(tag);
    if (caller && this.legs.has(caller)) members.add(caller);
    for (const leg of this.legs.values()) if (leg.tag === tag) members.add(leg.uuid);
    // legs the switch originated for a member (bridge targets, agent legs): fixpoint
    for (let grown = true; grown; ) {
      grown = false;
      for (const leg of this.legs.values()) {
        if (members.has(leg.uuid)) continue;
        if (leg.parent && members.has(leg.parent)) {
          members.add(leg.uuid);
          grown = true;
        }
      }
    }
    return new TestCallLegs(
      tag,
      [...this.legs.values()].filter((l) => members.has(l.uuid)),
    );
  }

  /** Resolves with the legs once pred holds; rejects after timeoutMs naming what was seen. */
  waitFor(
    tag: string,
    pred: (legs: TestCallLegs) => boolean,
    timeoutMs: number,
    what = 'condition',
  ): Promise<TestCallLegs> {
    return new Promise<TestCallLegs>((resolve, reject) => {
      const check = () => {
        let legs: TestCallLegs;
        try {
          legs = this.legsOf(tag);
          if (!pred(legs)) return;
        } catch {
          return;
        }
        done();
        resolve(legs);
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `${tag}: ${what} not seen on the switch within ${timeoutMs} ms; legs: ` +
              `${this.legsOf(tag).describe() || 'none'}`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.watchers.delete(check);
      };
      this.watchers.add(check);
      check();
    });
  }

  /** Every leg of the call has ended (CHANNEL_HANGUP_COMPLETE), and there is at least the caller. */
  allEnded(tag: string, timeoutMs: number): Promise<TestCallLegs> {
    return this.waitFor(
      tag,
      (l) => l.legs.length > 0 && l.legs.every((leg) => leg.ended),
      timeoutMs,
      'the end of every leg',
    );
  }

  private onEvent(e: FsEvent): void {
    const uuid = e.headers['Unique-ID'];
    if (!uuid || (!e.name.startsWith('CHANNEL_') && e.name !== 'CALL_UPDATE')) return;
    let leg = this.legs.get(uuid);
    if (!leg) {
      leg = new Leg(uuid);
      this.legs.set(uuid, leg);
    }
    leg.events.push(e);
    leg.tag ??= e.headers[TAG_VAR];
    leg.parent ??= e.headers['variable_cc_member_session_uuid'] ?? e.headers['variable_originator'];
    for (const w of [...this.watchers]) w();
  }
}
