/**
 * Someone else connects a person to the caller by `uuid_bridge` (issue 19): a pickup (`intercept`,
 * `intercept -bleg`), an attended transfer (`att_xfer`, or an operator panel's `uuid_bridge`), a retrieve
 * from park; and an eavesdropper, of whom nothing reaches the caller's socket. As
 * test/fixtures/esl/transfers/ shows it [T transfers]: the caller is the bridge's SECOND party, so no
 * CHANNEL_BRIDGE/UNBRIDGE of the new person reaches its socket; a CHANNEL_EXECUTE `uuid_bridge` does (in
 * CS_SOFT_EXECUTE), and from then on every event names the other channel in Other-Leg-* (Other-Type
 * originator) while the caller profile carries that channel's caller id (obs. 1-3).
 */
import { randomUUID } from 'node:crypto';
import type { AttXfer, PhoneAct } from './call-script.js';
import { CallerChannel } from './caller-channel.js';
import type { Header } from './esl-wire.js';
import type { Profile } from './event-blocks.js';
import type { BLeg, BridgedOpts, BridgeEnd } from './originate.js';
import { directoryVar } from './api-commands.js';
import { nowMicros } from './util.js';

/** The channel the caller ends up talking to. */
interface Party {
  uuid: string;
  /** Its caller profile, as the caller's events show it in Other-Leg-*. */
  profile: Profile;
  /** Its variables, for `api uuid_getvar` while it is up. */
  vars: Record<string, string>;
  /** It hangs up after this long (scaled already); never if null. */
  talkMs: number | null;
}

/** @internal The caller channel as the switch double runs it: CallerChannel plus the uuid_bridge shapes. */
export class UuidBridgeChannel extends CallerChannel {
  readonly phoneActs: string[] = [];
  /** A uuid_bridge took the caller; it runs once the caller's current application has returned. */
  private takeover: { party: Party; hibernate: boolean } | null = null;
  /** Wakes the dialplan's `park` when someone bridges the parked caller. */
  private parkWaiter: (() => void) | null = null;

  // ----- pickup ------------------------------------------------------------------------

  /**
   * intercept [-bleg]: the ringing leg ends PICKED_OFF, the switch answers the caller (CHANNEL_ANSWER
   * with the originate's stale values) and the bridge returns already naming the picker [T transfers obs. 4].
   */
  protected pickedOff(leg: BLeg, allLegs: BLeg[], by: PhoneAct & { how?: 'intercept' | 'intercept-bleg' }): void {
    this.phoneActs.push(`${by.how === 'intercept' ? 'intercept' : 'intercept -bleg'} ${by.phone}`);
    for (const b of allLegs) if (b.state !== 'down') this.legEnded(b, b === leg ? 'PICKED_OFF' : 'LOSE_RACE');
    this.markAnswered();
    this.setVar('endpoint_disposition', 'ANSWER');
    this.takeOver(this.phoneParty(by, '*8'), true);
    this.setVar('original_destination_number', this.profile.destinationNumber);
    this.setVar('original_caller_id_name', leg.key);
    this.setVar('original_caller_id_number', leg.key);
    for (const b of allLegs) {
      if (b.hasChannel) this.pushVar('originate_causes', `${b.uuid};${b.cause ?? 'PICKED_OFF'}`);
    }
    this.setVar('originate_disposition', 'PICKED_OFF');
    this.setVar('DIALSTATUS', 'PICKED_OFF');
    this.setVar('originate_failed_cause', 'PICKED_OFF');
  }

  // ----- attended transfer, eavesdrop (while the caller talks to its bridge's winner) ----------

  protected override async bridged(winner: BLeg, allLegs: BLeg[], opts: BridgedOpts = {}): Promise<BridgeEnd> {
    const beh = winner.behaviour;
    const timers: NodeJS.Timeout[] = [];
    if (beh.kind === 'answer' && beh.attXfer !== undefined) {
      const x = beh.attXfer;
      timers.push(this.after(this.scaled(x.afterMs ?? 1000), () => this.consult(winner, x, timers)));
    }
    if (beh.kind === 'answer' && beh.eavesdroppedBy !== undefined) {
      const by = beh.eavesdroppedBy;
      timers.push(this.after(this.scaled(by.afterMs ?? 1000), () => this.eavesdrop(by)));
    }
    try {
      return await super.bridged(winner, allLegs, opts);
    } finally {
      for (const t of timers) this.cancel(t);
    }
  }

  /**
   * att_xfer on the agent's leg: the target is originated and talks to the agent (nothing of it reaches
   * the caller's socket); when the agent completes, the target is uuid_bridge'd to the caller. The caller's
   * bridge returns without hangup_after_bridge (att_xfer flagged it CF_REDIRECT) [T transfers obs. 5].
   */
  private consult(agent: BLeg, x: AttXfer, timers: NodeJS.Timeout[]): void {
    if (this.endBridge === null) return;
    const domain = agent.vars.dialed_domain ?? this.domainOf(x.to);
    const target = this.makeLeg({ dial: `user/${x.to}@${domain}`, vars: {} }, {});
    target.state = 'answered';
    target.answeredAt = nowMicros();
    this.sw.legs.set(target.uuid, target);
    this.phoneActs.push(`att_xfer ${agent.key} ${x.to}`);
    timers.push(
      this.after(this.scaled(x.completeAfterMs ?? 1500), () => {
        const end = this.endBridge;
        if (end === null) return;
        this.redirected = true;
        if (x.complete === 'bleg-killed') {
          // the caller's bridge returns first, its dialplan ends: the caller is hung up before the uuid_bridge
          this.sw.legs.delete(target.uuid);
          end('callee');
          return;
        }
        this.takeOver(this.legParty(target, x.talkMs), false);
        end('takeover');
      }),
    );
  }

  /** eavesdrop <the caller> on a supervisor's phone: its own channel only; nothing on the caller's [T obs. 7]. */
  private eavesdrop(by: PhoneAct): void {
    const party = this.phoneParty(by, '*33');
    this.sw.legs.set(party.uuid, party);
    this.phoneActs.push(`eavesdrop ${by.phone}`);
    if (party.talkMs !== null) this.after(party.talkMs, () => this.sw.legs.delete(party.uuid));
  }

  /** An inbound-ESL client originates `dial` and runs `uuid_bridge <that leg> <the caller>` (SwitchCall.uuidBridge). */
  uuidBridgeFromOutside(dial: string, talkMs?: number): void {
    if (!this.up) return;
    const b = this.makeLeg({ dial, vars: {} }, {});
    b.state = 'answered';
    b.answeredAt = nowMicros();
    this.phoneActs.push(`uuid_bridge ${b.key}`);
    this.connectParty(this.legParty(b, talkMs, 'esl'));
  }

  /** The caller leaves its bridge or the dialplan's park for `party`; anything else is not modelled. */
  private connectParty(party: Party): void {
    const end = this.endBridge;
    const wake = this.parkWaiter;
    if (end !== null) {
      this.takeOver(party, false);
      end('takeover');
    } else if (wake !== null) {
      this.takeOver(party, true);
      wake();
    }
  }

  // ----- park and retrieve --------------------------------------------------------------

  protected override async runApp(app: string, data: string): Promise<void> {
    if (app === 'park' && !this.controlled) return this.parkUntilRetrieved();
    return super.runApp(app, data);
  }

  /**
   * The dialplan's `park`: CHANNEL_PARK, the caller waits (a hold tone) until a phone retrieves it
   * (CallScript.retrieve: its own channel runs uuid_bridge), hangs up or is transferred; then
   * CHANNEL_UNPARK, already naming the retriever [T transfers obs. 6].
   */
  private async parkUntilRetrieved(): Promise<void> {
    this.fire('CHANNEL_PARK');
    const r = this.script.retrieve;
    const timer =
      r === undefined
        ? null
        : this.after(this.scaled(r.afterMs ?? 1000), () => {
            this.phoneActs.push(`retrieve ${r.phone}`);
            this.connectParty(this.phoneParty(r, '*99'));
          });
    const retrieved = new Promise<void>((res) => (this.parkWaiter = res));
    await Promise.race([retrieved, this.whenDown(), this.whenTransferred()]);
    this.parkWaiter = null;
    this.cancel(timer);
    this.fire('CHANNEL_UNPARK');
  }

  // ----- the uuid_bridge -------------------------------------------------------------------

  protected override async executeApp(
    app: string,
    arg: string | undefined,
    eventUuid?: string,
    loops = 1,
  ): Promise<void> {
    await super.executeApp(app, arg, eventUuid, loops);
    if (this.takeover !== null) await this.uuidBridged();
  }

  /**
   * switch_ivr_uuid_bridge() with the caller as its second party: a new caller profile (the other
   * party's caller id, transfer_source `…:uuid_br:<other>`, Other-Type originator). The events follow
   * once the caller's application has returned (uuidBridged).
   */
  private takeOver(party: Party, hibernate: boolean): void {
    const src = `${Math.floor(Date.now() / 1000)}:${randomUUID()}:uuid_br:${party.uuid}`;
    this.setVar('transfer_source', src);
    this.pushVar('transfer_history', src);
    const p = this.profile;
    p.transferSource = src;
    p.profileIndex = (p.profileIndex ?? 1) + 1;
    p.calleeIdName = p.callerIdName;
    p.calleeIdNumber = p.callerIdNumber;
    p.callerIdName = party.profile.callerIdName;
    p.callerIdNumber = party.profile.callerIdNumber;
    p.bridged = 0;
    this.touchProfile();
    this.other = party.profile;
    this.otherType = 'originator';
    this.otherBlock = null;
    this.callState = 'ACTIVE';
    if (hibernate) this.stateNumber = 8;
    this.sw.legs.set(party.uuid, party);
    this.takeover = { party, hibernate };
  }

  /**
   * uuid_bridge_on_soft_execute on the caller: [CS_HIBERNATE,] CS_RESET, CS_SOFT_EXECUTE, CHANNEL_EXECUTE
   * uuid_bridge (Application-Data: the other channel), [CS_CONSUME_MEDIA,] CS_EXCHANGE_MEDIA. When the other
   * party hangs up the caller is hung up NORMAL_CLEARING (audio_bridge_on_exchange_media) [T transfers].
   */
  private async uuidBridged(): Promise<void> {
    const t = this.takeover;
    this.takeover = null;
    if (t === null || !this.up) return;
    const p = t.party;
    if (t.hibernate) this.setState('CS_HIBERNATE', 8);
    this.setState('CS_RESET', 9);
    this.setState('CS_SOFT_EXECUTE', 3);
    this.appsRun.push(`uuid_bridge ${p.uuid}`);
    const post: Header[] = [
      ['Application', 'uuid_bridge'],
      ['Application-Data', p.uuid],
    ];
    this.fire('CHANNEL_EXECUTE', { post, application: 'uuid_bridge' });
    this.callUuid = p.uuid;
    this.setVar('call_uuid', p.uuid);
    if (this.script.uuidBridgeConsumeMedia ?? true) this.setState('CS_CONSUME_MEDIA', 7);
    this.setState('CS_EXCHANGE_MEDIA', 5);
    this.setVar('last_bridge_to', p.uuid);
    this.setVar('bridge_channel', p.profile.channelName);
    this.setVar('bridge_uuid', p.uuid);
    this.setVar('signal_bond', p.uuid);
    this.setVar('last_sent_callee_id_name', p.profile.callerIdName);
    this.setVar('last_sent_callee_id_number', p.profile.callerIdNumber);
    let timer: NodeJS.Timeout | null = null;
    const gone = new Promise<void>((res) => {
      if (p.talkMs !== null) timer = this.after(p.talkMs, res);
    });
    await Promise.race([gone, this.whenDown()]);
    this.cancel(timer);
    this.sw.legs.delete(p.uuid);
    if (!this.up) return;
    if (this.isSip) {
      this.setVar('sip_reason', 'Q.850;cause=16;text="NORMAL_CLEARING"');
      this.setVar('sip_hangup_phrase', 'OK');
    }
    this.setVar('last_bridge_hangup_cause', 'NORMAL_CLEARING');
    this.setVar('last_bridge_proto_specific_hangup_cause', 'sip:200');
    this.hangup('NORMAL_CLEARING', 'internal');
  }

  // ----- the parties ------------------------------------------------------------------------

  /** The directory domain of an extension ('2003' -> 'test.local'), else the call's domain. */
  private domainOf(ext: string): string {
    const id = Object.keys(this.script.directory ?? {}).find((k) => k.startsWith(`${ext}@`));
    return id?.split('@')[1] ?? this.vars.get('domain_name') ?? this.vars.get('dialed_domain') ?? 'default';
  }

  /**
   * A phone that called in (it dialled a feature code): Other-Leg-Direction inbound, its user's caller id,
   * the code as its destination [T transfers obs. 2]. A registered phone authenticated: user_name, domain_name.
   */
  private phoneParty(act: PhoneAct, defaultCode: string): Party {
    const domain = this.domainOf(act.phone);
    const name = directoryVar(this.script, `${act.phone}@${domain}`, 'effective_caller_id_name') ?? act.phone;
    const code = act.code ?? defaultCode;
    const uuid = randomUUID();
    const profile: Profile = {
      ...zeroTimes(),
      direction: 'inbound',
      logicalDirection: 'inbound',
      username: act.phone,
      dialplan: 'XML',
      callerIdName: name,
      callerIdNumber: act.phone,
      origCallerIdName: name,
      origCallerIdNumber: act.phone,
      networkAddr: '192.0.2.50',
      ani: act.phone,
      destinationNumber: code,
      uniqueId: uuid,
      source: 'mod_sofia',
      context: 'default',
      rdnis: code,
      channelName: `sofia/internal/${act.phone}@${domain}`,
      withProfileIndex: false,
    };
    const vars = {
      user_name: act.phone,
      domain_name: domain,
      effective_caller_id_name: name,
      caller_id_number: act.phone,
    };
    return { uuid, profile, vars, talkMs: act.talkMs === undefined ? null : this.scaled(act.talkMs) };
  }

  /**
   * A leg the switch dialled: outbound, its extension as caller id and destination [T obs. 2]. att_xfer's
   * target carries the caller's profile; an inbound-ESL `originate` has no dialplan, no caller id of its own
   * (0000000000) and its source is the originate code [T attended-transfer-uuid-bridge].
   */
  private legParty(b: BLeg, talkMs: number | undefined, from: 'att_xfer' | 'esl' = 'att_xfer'): Party {
    const c = this.profile;
    const common = {
      ...zeroTimes(),
      direction: 'outbound',
      logicalDirection: 'inbound',
      callerIdName: b.key,
      callerIdNumber: b.key,
      networkAddr: '192.0.2.50',
      destinationNumber: b.key,
      uniqueId: b.uuid,
      channelName: b.channelName,
      withProfileIndex: false,
    };
    const none = '0000000000';
    const profile: Profile =
      from === 'esl'
        ? {
            ...common,
            origCallerIdNumber: none,
            calleeIdNumber: none,
            ani: none,
            source: 'src/switch_ivr_originate.c',
            context: 'default',
          }
        : {
            ...common,
            dialplan: 'XML',
            origCallerIdName: c.origCallerIdName ?? c.callerIdName,
            origCallerIdNumber: c.origCallerIdNumber,
            ani: c.ani,
            source: 'mod_sofia',
            context: c.context,
            rdnis: c.destinationNumber,
          };
    if (from === 'att_xfer' && c.username !== undefined) profile.username = c.username;
    return { uuid: b.uuid, profile, vars: b.vars, talkMs: talkMs === undefined ? null : this.scaled(talkMs) };
  }
}

/** The other party's times: the caller's events show 0 for all of them [T transfers]. */
type Zeroed = 'created' | 'answered' | 'progress' | 'progressMedia' | 'hangup' | 'bridged' | 'hideName' | 'hideNumber';
function zeroTimes(): Pick<Profile, Zeroed> {
  return {
    created: 0,
    answered: 0,
    progress: 0,
    progressMedia: 0,
    hangup: 0,
    bridged: 0,
    hideName: false,
    hideNumber: false,
  };
}
