/**
 * bridge/originate as switch_ivr_originate does it for the caller channel: B-legs per dial-string
 * leg, ring groups (`,` together, `|` one after the other), the winner, the losers, the causes.
 */
import { randomUUID } from 'node:crypto';
import type { Header } from './esl-wire.js';
import type { PhoneAct, TargetBehaviour } from './call-script.js';
import { ChannelEvents } from './channel-events.js';
import { type DialLeg, type DialGroup, parseDialString, targetKey } from './dial-string.js';
import type { Profile } from './event-blocks.js';
import { CAUSE_CODES, normalizeCause, dialStatus, SIP_FOR_CAUSE, NEVER_AUTO_HANGUP } from './transcript-constants.js';
import { nowMicros, randToken, isTrue } from './util.js';
import { directoryVar } from './api-commands.js';

export type LegEndpoint = 'loopback' | 'sofia' | 'user' | 'error';

export interface BLeg {
  uuid: string;
  dial: string;
  key: string;
  endpoint: LegEndpoint;
  behaviour: TargetBehaviour;
  vars: Record<string, string>;
  channelName: string;
  context: string;
  calleeIdName: string;
  calleeIdNumber: string;
  /** false when no channel was ever created (local failure: error/, user not registered) */
  hasChannel: boolean;
  created: number;
  answeredAt: number;
  progressAt: number;
  state: 'setup' | 'ringing' | 'answered' | 'down';
  cause: string | null;
}

export type GroupResult =
  | { kind: 'answered'; winner: BLeg }
  | { kind: 'failed'; cause: string }
  | { kind: 'timeout' }
  | { kind: 'cancel' }
  /** Another phone picked the ringing leg up (uuid-bridge.ts). */
  | { kind: 'picked'; leg: BLeg; by: PhoneAct & { how?: 'intercept' | 'intercept-bleg' } };

/**
 * How an answered bridge ended: a hangup on either side, a transfer of the caller (REFER, uuid_transfer),
 * or a uuid_bridge that took the caller to someone else (attended transfer: uuid-bridge.ts).
 */
export type BridgeEnd = 'callee' | 'caller' | 'transfer' | 'takeover';

export interface BridgedOpts {
  /** uuid_bridge of a queue agent: no originate variables on the caller, CHANNEL_BRIDGE in CS_SOFT_EXECUTE. */
  uuidBridge?: boolean;
  /** Runs right before CHANNEL_UNBRIDGE (mod_callcenter sets cc_agent on the caller there). */
  beforeUnbridge?: () => void;
}

/** @internal */
export abstract class OriginatingChannel extends ChannelEvents {
  // caller-channel.ts
  abstract externalHangup(cause?: string): void;
  abstract hangup(cause: string, origin: 'internal' | 'external'): void;
  /** A transfer of the caller from outside the channel's own apps (REFER, uuid_transfer): dialplan.ts. */
  abstract transferFromOutside(dest: string, context: string | undefined, kind: 'refer' | 'uuid'): void;
  /** Another phone picked the ringing leg up: the caller is answered and uuid_bridge'd to it (uuid-bridge.ts). */
  protected abstract pickedOff(leg: BLeg, allLegs: BLeg[], by: Extract<GroupResult, { kind: 'picked' }>['by']): void;

  /** Ends the answered bridge that runs now (null when none runs), e.g. when the far end hangs up from outside. */
  protected endBridge: ((end: BridgeEnd) => void) | null = null;
  /** att_xfer flagged the caller CF_REDIRECT: hangup_after_bridge no longer fires [T transfers obs. 5]. */
  protected redirected = false;

  /** The pending transfer (set by `transfer`, a REFER or uuid_transfer; consumed when the dialplan routes it). */
  protected route: { dest: string; context: string } | null = null;
  protected transferWaiters: Array<() => void> = [];
  /** Resolves when the caller channel is transferred (immediately if a transfer is pending). */
  protected whenTransferred(): Promise<void> {
    if (this.route) return Promise.resolve();
    return new Promise((r) => this.transferWaiters.push(r));
  }
  protected wakeTransferWaiters(): void {
    const w = this.transferWaiters;
    this.transferWaiters = [];
    for (const f of w) f();
  }

  protected behaviourFor(dial: string, key: string): TargetBehaviour {
    const t = this.script.targets ?? {};
    return t[key] ?? t[dial] ?? this.script.defaultTarget ?? { kind: 'answer' };
  }

  protected makeLeg(leg: DialLeg, globals: Record<string, string>): BLeg {
    const dial = leg.dial;
    const parts = dial.split('/');
    const tech = (parts[0] ?? '').toLowerCase();
    const key = targetKey(dial);
    const endpoint: LegEndpoint =
      tech === 'loopback' ? 'loopback' : tech === 'user' ? 'user' : tech === 'error' ? 'error' : 'sofia';
    let behaviour = this.behaviourFor(dial, key);
    if (endpoint === 'error') behaviour = { kind: 'fail', cause: normalizeCause(parts[1] ?? 'NORMAL_CLEARING') };
    let channelName: string;
    let context: string;
    let calleeIdName: string;
    let calleeIdNumber: string;
    if (endpoint === 'loopback') {
      channelName = `loopback/${key}-a`;
      context = parts[2] ?? 'default';
      calleeIdName = 'Outbound Call';
      calleeIdNumber = context;
    } else if (endpoint === 'user') {
      const domain = (parts[1] ?? '').split('@')[1] ?? 'default';
      channelName = `sofia/internal/${key}@${domain}`;
      context = 'default';
      calleeIdName = key;
      calleeIdNumber = key;
    } else {
      channelName = dial.split(';')[0] as string;
      context = this.profile.context;
      calleeIdName = key;
      calleeIdNumber = key;
    }
    // a leg that fails before any channel exists (error/, user/ not registered) leaves no originated_legs entry
    const localFail =
      behaviour.kind === 'fail' &&
      !(behaviour.ringMs && behaviour.ringMs > 0) &&
      (endpoint === 'error' || behaviour.cause === 'USER_NOT_REGISTERED' || behaviour.cause === 'SUBSCRIBER_ABSENT');
    const vars: Record<string, string> = { ...globals, ...leg.vars };
    if (endpoint === 'user') {
      // the user/ endpoint writes dialed_user/dialed_domain on the B-leg; its caller id name comes from the
      // directory [T routing obs. 9]
      const domain = (parts[1] ?? '').split('@')[1] ?? '';
      vars.dialed_user = key;
      vars.dialed_domain = domain;
      const name = directoryVar(this.script, `${key}@${domain}`, 'effective_caller_id_name');
      if (name !== undefined) vars.effective_caller_id_name = name;
    }
    return {
      uuid: randomUUID(),
      dial,
      key,
      endpoint,
      behaviour,
      vars,
      channelName,
      context,
      calleeIdName,
      calleeIdNumber,
      hasChannel: !localFail,
      created: nowMicros(),
      answeredAt: 0,
      progressAt: 0,
      state: 'setup',
      cause: null,
    };
  }

  protected legProfile(b: BLeg): Profile {
    const cidName =
      b.vars.origination_caller_id_name ?? this.vars.get('effective_caller_id_name') ?? this.profile.callerIdName;
    const cidNum =
      b.vars.origination_caller_id_number ?? this.vars.get('effective_caller_id_number') ?? this.profile.callerIdNumber;
    const sofia = b.endpoint !== 'loopback';
    const p: Profile = {
      direction: 'outbound',
      logicalDirection: 'inbound',
      dialplan: sofia ? 'XML' : 'xml',
      callerIdName: cidName,
      callerIdNumber: cidNum,
      origCallerIdName: this.profile.origCallerIdName,
      origCallerIdNumber: this.profile.origCallerIdNumber,
      calleeIdName: b.calleeIdName,
      calleeIdNumber: b.calleeIdNumber,
      ani: this.profile.ani,
      destinationNumber: b.key,
      uniqueId: b.uuid,
      source: sofia ? 'mod_sofia' : 'mod_loopback',
      context: b.context,
      channelName: b.channelName,
      withProfileIndex: false,
      created: b.created,
      answered: b.answeredAt,
      progress: b.progressAt,
      progressMedia: 0,
      hangup: 0,
      bridged: 0,
      hideName: this.profile.hideName,
      hideNumber: this.profile.hideNumber,
    };
    // a B-leg of a transferred caller inherits the number it was transferred from [T transfers: Other-Leg-RDNIS]
    if (this.profile.rdnis !== undefined) p.rdnis = this.profile.rdnis;
    if (sofia) {
      if (this.profile.username !== undefined) p.username = this.profile.username;
      p.networkAddr =
        b.endpoint === 'user' ? '192.0.2.50' : ((b.dial.split('@')[1] ?? '127.0.0.1').split(':')[0] as string);
    }
    return p;
  }

  /** A B-leg ended while the caller is up: last_bridge_hangup_cause (+ SIP failure details for sofia legs). */
  protected legEnded(b: BLeg, cause: string): void {
    if (b.state === 'down') return;
    b.state = 'down';
    b.cause = cause;
    this.sw.legs.delete(b.uuid);
    if (!this.up || !b.hasChannel) return;
    const sofia = b.endpoint !== 'loopback';
    const sip = SIP_FOR_CAUSE[cause];
    if (sofia && sip && cause !== 'LOSE_RACE') {
      this.setVar('sip_invite_failure_status', String(sip[0]));
      this.setVar('sip_invite_failure_phrase', sip[1]);
      this.setVar('sip_hangup_phrase', sip[1]);
    }
    this.setVar('last_bridge_hangup_cause', cause);
    if (sofia && sip && cause !== 'LOSE_RACE') this.setVar('last_bridge_proto_specific_hangup_cause', `sip:${sip[0]}`);
  }

  protected passCalleeId(b: BLeg): void {
    this.profile.calleeIdName = b.calleeIdName;
    this.profile.calleeIdNumber = b.calleeIdNumber;
    this.touchProfile();
  }

  /** onCaller false: legs a queue originates on its own (no dialed_user/originated_legs/ringing on the caller). */
  protected ringGroup(
    group: DialGroup,
    globals: Record<string, string>,
    timeoutMs: number,
    allLegs: BLeg[],
    onCaller = true,
  ): Promise<GroupResult> {
    return new Promise<GroupResult>((resolve) => {
      const legs = group.legs.map((l) => this.makeLeg(l, globals));
      const timers: NodeJS.Timeout[] = [];
      let settled = false;
      const finish = (r: GroupResult): void => {
        if (settled) return;
        settled = true;
        for (const t of timers) this.cancel(t);
        resolve(r);
      };
      for (const b of legs) {
        allLegs.push(b);
        if (b.hasChannel) this.sw.legs.set(b.uuid, b);
        if (!onCaller) continue;
        if (b.endpoint === 'user') {
          // user/ endpoint: dialed_user/dialed_domain written on the CALLER channel once per leg [DP][F]
          const ud = (b.dial.split('/')[1] ?? '').split('@');
          this.setVar('dialed_user', ud[0] ?? '');
          this.setVar('dialed_domain', ud[1] ?? '');
        }
        if (b.hasChannel) {
          this.setVar('originate_signal_bond', b.uuid);
          this.pushVar('originated_legs', `${b.uuid};Outbound Call;${b.calleeIdNumber}`);
        }
      }
      const setup = this.scaled(20);
      const allDone = (): void => {
        if (legs.every((l) => l.state === 'down')) {
          const first = legs.find((l) => l.cause !== null);
          finish({ kind: 'failed', cause: first?.cause ?? 'NORMAL_UNSPECIFIED' });
        }
      };
      const ring = (b: BLeg): void => {
        if (settled || b.state !== 'setup') return;
        b.state = 'ringing';
        b.progressAt = nowMicros();
        if (onCaller && !this.ringReady && this.answerState !== 'answered') {
          this.passCalleeId(b);
          if (this.isSip) this.setVar('sip_to_tag', randToken(13, this.rnd));
          this.markRingReady();
        }
      };
      for (const b of legs) {
        const beh = b.behaviour;
        const ringMs = 'ringMs' in beh && beh.ringMs !== undefined ? this.scaled(beh.ringMs) : 0;
        if (beh.kind === 'ring' || ringMs > 0) timers.push(this.after(setup, () => ring(b)));
        const by = beh.kind === 'ring' ? beh.pickedUpBy : undefined;
        if (by !== undefined) {
          timers.push(
            this.after(setup + this.scaled(by.afterMs ?? 1000), () => {
              if (!settled && b.state === 'ringing') finish({ kind: 'picked', leg: b, by });
            }),
          );
        }
        if (beh.kind === 'answer') {
          timers.push(
            this.after(setup + ringMs, () => {
              if (settled || b.state === 'down') return;
              b.state = 'answered';
              b.answeredAt = nowMicros();
              finish({ kind: 'answered', winner: b });
            }),
          );
        } else if (beh.kind === 'busy' || beh.kind === 'fail') {
          const cause = beh.kind === 'busy' ? 'USER_BUSY' : normalizeCause(beh.cause);
          timers.push(
            this.after(b.hasChannel ? setup + ringMs : 0, () => {
              if (settled) return;
              this.legEnded(b, cause);
              allDone();
            }),
          );
        }
        const lt = b.vars.leg_timeout;
        if (lt !== undefined && parseInt(lt, 10) > 0) {
          timers.push(
            this.after(this.scaled(parseInt(lt, 10) * 1000), () => {
              if (settled || b.state === 'down' || b.state === 'answered') return;
              this.legEnded(b, 'NO_ANSWER');
              allDone();
            }),
          );
        }
      }
      timers.push(this.after(timeoutMs, () => finish({ kind: 'timeout' })));
      this.downWaiters.push(() => finish({ kind: 'cancel' }));
      // a transfer of the ringing caller (uuid_transfer) ends the originate like a cancel, without a hangup
      this.transferWaiters.push(() => finish({ kind: 'cancel' }));
    });
  }

  protected async bridge(data: string): Promise<void> {
    this.bridges.push(data);
    const { globals, groups } = parseDialString(data);
    // originate re-sets the current application and starts with the "failure" defaults [T answered-normal ANSWER]
    this.setVar('current_application_data', data);
    this.setVar('current_application', 'bridge');
    this.setVar('originate_disposition', 'failure');
    this.setVar('DIALSTATUS', 'INVALIDARGS');
    const toVar =
      globals.originate_timeout ??
      globals.call_timeout ??
      this.vars.get('originate_timeout') ??
      this.vars.get('call_timeout');
    const timeoutMs =
      toVar !== undefined && parseInt(toVar, 10) > 0
        ? this.scaled(parseInt(toVar, 10) * 1000)
        : this.scaled(this.script.originateTimeoutMs ?? 1000);
    const continueOnTimeout = isTrue(globals.continue_on_timeout ?? this.vars.get('continue_on_timeout'));

    let cancelTimer: NodeJS.Timeout | null = null;
    if (this.script.callerCancelAfterMs !== undefined) {
      cancelTimer = this.after(this.scaled(this.script.callerCancelAfterMs), () => {
        if (this.answerState !== 'answered') this.externalHangup('ORIGINATOR_CANCEL');
      });
    }
    const allLegs: BLeg[] = [];
    let result: GroupResult = { kind: 'failed', cause: 'NORMAL_UNSPECIFIED' };
    if (groups.length === 0) result = { kind: 'failed', cause: 'DESTINATION_OUT_OF_ORDER' };
    for (const g of groups) {
      if (!this.up) {
        result = { kind: 'cancel' };
        break;
      }
      result = await this.ringGroup(g, globals, timeoutMs, allLegs);
      if (result.kind === 'answered' || result.kind === 'cancel') break;
      if (result.kind === 'timeout') {
        for (const b of allLegs) if (b.state !== 'down') this.legEnded(b, 'NO_ANSWER');
        if (!continueOnTimeout) break;
      }
    }
    this.cancel(cancelTimer);
    if (!this.up && result.kind !== 'answered') result = { kind: 'cancel' };

    if (result.kind === 'answered') {
      await this.bridged(result.winner, allLegs);
      return;
    }
    if (result.kind === 'picked') {
      this.pickedOff(result.leg, allLegs, result.by);
      return;
    }
    if (this.route) result = { kind: 'cancel' };
    const cause =
      result.kind === 'failed' ? result.cause : result.kind === 'timeout' ? 'NO_ANSWER' : 'ORIGINATOR_CANCEL';
    for (const b of allLegs) if (b.state !== 'down') this.legEnded(b, cause);
    this.setVar('originate_disposition', cause);
    this.setVar('DIALSTATUS', dialStatus(cause));
    for (const b of allLegs) if (b.hasChannel) this.pushVar('originate_causes', `${b.uuid};${b.cause ?? cause}`);
    this.setVar('originate_failed_cause', cause);
    if (this.route) return; // transferred while ringing: the dialplan routes the caller anew
    // mod_dptools: hang the caller up with the far end's cause unless continue_on_fail [T busy, busy-continue-on-fail]
    if (this.up && !NEVER_AUTO_HANGUP.has(cause) && !this.continueOnFail(cause)) this.hangup(cause, 'internal');
  }

  protected continueOnFail(cause: string): boolean {
    const v = this.vars.get('continue_on_fail');
    if (v === undefined) return false;
    if (isTrue(v)) return true;
    const code = String(CAUSE_CODES[cause] ?? -1);
    return v
      .split(',')
      .map((x) => x.trim().toUpperCase())
      .some((x) => x === cause || x === code);
  }

  protected async bridged(winner: BLeg, allLegs: BLeg[], opts: BridgedOpts = {}): Promise<BridgeEnd> {
    // losers are hung up with LOSE_RACE before the caller is answered -> stale values on CHANNEL_ANSWER [F]
    for (const b of allLegs) if (b !== winner && b.state !== 'down') this.legEnded(b, 'LOSE_RACE');
    if (this.answerState !== 'answered') {
      this.passCalleeId(winner);
      this.markAnswered();
    }
    if (!opts.uuidBridge) {
      this.setVar('endpoint_disposition', 'ANSWER');
      this.setVar('originate_disposition', 'SUCCESS');
      this.setVar('DIALSTATUS', 'SUCCESS');
      for (const b of allLegs)
        if (b.hasChannel) this.pushVar('originate_causes', `${b.uuid};${b === winner ? 'NONE' : (b.cause ?? 'NONE')}`);
      this.setVar('signal_bond', winner.uuid);
      this.setVar('originate_signal_bond', null);
    }
    // CHANNEL_BRIDGE names the leg that WON [F]
    this.other = this.legProfile(winner);
    this.otherBlock = null;
    this.bridgedAt = nowMicros();
    this.profile.bridged = this.bridgedAt;
    this.touchProfile();
    this.callState = 'ACTIVE';
    const bridgeIds: Header[] = [
      ['Bridge-A-Unique-ID', this.uuid],
      ['Bridge-B-Unique-ID', winner.uuid],
    ];
    this.fire('CHANNEL_BRIDGE', { pre: bridgeIds });
    this.setVar('last_bridge_to', winner.uuid);
    this.setVar('bridge_channel', winner.channelName);
    this.setVar('bridge_uuid', winner.uuid);
    this.setVar('signal_bond', winner.uuid);
    this.setVar('last_sent_callee_id_name', winner.calleeIdName);
    this.setVar('last_sent_callee_id_number', winner.calleeIdNumber);
    if (this.isSip) {
      // the caller's ACK to our 200 OK: sip_to_tag/sip_cseq/sip_full_via/sip_full_to. Racy: on CHANNEL_BRIDGE in
      // answered-normal-sip.txt, only from CHANNEL_UNBRIDGE on in callerid-sip / ring-then-answer-sip (used here).
      if (!this.vars.has('sip_to_tag')) this.setVar('sip_to_tag', randToken(13, this.rnd));
      this.setVar('sip_cseq', String(100000000 + Math.floor(this.rnd() * 99999999)));
      this.setVar('sip_full_via', `SIP/2.0/UDP 127.0.0.1:5091;rport=5091;branch=z9hG4bK${randToken(13, this.rnd)}`);
      this.setVar(
        'sip_full_to',
        `<sip:${this.profile.destinationNumber}@127.0.0.1:5090>;tag=${this.vars.get('sip_to_tag') ?? ''}`,
      );
    }

    // wait for one side to hang up, or for a transfer of the caller (the far end's REFER, uuid_transfer)
    const beh = winner.behaviour;
    const talk = beh.kind === 'answer' && beh.talkMs !== undefined ? this.scaled(beh.talkMs) : null;
    const refer = beh.kind === 'answer' && beh.referTo !== undefined ? beh.referTo : null;
    let calleeTimer: NodeJS.Timeout | null = null;
    let callerTimer: NodeJS.Timeout | null = null;
    let referTimer: NodeJS.Timeout | null = null;
    const end = await new Promise<BridgeEnd>((resolve) => {
      if (talk !== null) calleeTimer = this.after(talk, () => resolve('callee'));
      if (refer !== null) {
        const ms = beh.kind === 'answer' ? (beh.referAfterMs ?? 0) : 0;
        referTimer = this.after(this.scaled(ms), () => this.transferFromOutside(refer, undefined, 'refer'));
      }
      if (this.script.callerHangupAfterAnswerMs !== undefined) {
        callerTimer = this.after(this.scaled(this.script.callerHangupAfterAnswerMs), () =>
          this.externalHangup('NORMAL_CLEARING'),
        );
      }
      void this.whenDown().then(() => resolve('caller'));
      void this.whenTransferred().then(() => resolve('transfer'));
      this.endBridge = resolve;
    });
    this.endBridge = null;
    const calleeHungUp = end === 'callee';
    this.cancel(calleeTimer);
    this.cancel(callerTimer);
    this.cancel(referTimer);
    const sofia = winner.endpoint !== 'loopback';
    winner.state = 'down';
    winner.cause = 'NORMAL_CLEARING';
    this.sw.legs.delete(winner.uuid);
    if (sofia) {
      this.setVar('sip_reason', 'Q.850;cause=16;text="NORMAL_CLEARING"');
      this.setVar('sip_hangup_phrase', 'OK');
    }
    this.setVar('last_bridge_hangup_cause', 'NORMAL_CLEARING');
    if (sofia) this.setVar('last_bridge_proto_specific_hangup_cause', 'sip:200');
    this.setVar('bridge_hangup_cause', 'NORMAL_CLEARING');
    opts.beforeUnbridge?.();
    // after a transfer the caller profile is a new one (new destination, no originatee) [T routing obs. 7]
    this.fire('CHANNEL_UNBRIDGE', { pre: bridgeIds });
    if (calleeHungUp && this.up && !this.redirected && isTrue(this.vars.get('hangup_after_bridge'))) {
      this.hangup('NORMAL_CLEARING', 'internal');
    }
    return end;
  }
}
