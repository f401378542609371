/**
 * Routing by a scripted dialplan (CallScript.dialplan): `transfer`, the transfers of an answered
 * call (the far end's SIP REFER, `uuid_transfer`), the extension's actions one after the other,
 * mod_callcenter queues and voicemail, as the captures in test/fixtures/esl/routing/ show them [T routing].
 *
 * Once the caller channel is transferred while the socket application runs, the socket application
 * returns (CHANNEL_UNPARK, CHANNEL_EXECUTE_COMPLETE[socket]) and the dialplan routes the call; the
 * outbound connection stays open and keeps getting the channel's events to its end [T routing obs. 1/2].
 */
import { randomUUID } from 'node:crypto';
import type { Header } from './esl-wire.js';
import { type BLeg, OriginatingChannel } from './originate.js';
import { isTrue } from './util.js';

/** Applications without SAF_SUPPORT_NOMEDIA: switch_core_session_exec() pre-answers the channel before them. */
export const MEDIA_APPS = new Set([
  'playback',
  'endless_playback',
  'loop_playback',
  'gentones',
  'say',
  'speak',
  'phrase',
  'read',
  'play_and_get_digits',
  'record',
  'voicemail',
  'callcenter',
  'ivr',
]);

/** @internal */
export abstract class RoutingChannel extends OriginatingChannel {
  /** The dialplan is running the extension's actions. */
  protected routing = false;
  /** mod_callcenter connected an agent: the caller is uuid_bridge'd after the callcenter app returned. */
  private pendingAgent: { winner: BLeg; legs: BLeg[]; queue: string } | null = null;

  // caller-channel.ts
  protected abstract executeApp(app: string, arg: string | undefined, appUuid?: string, loops?: number): Promise<void>;
  protected abstract afterApp(): void;
  protected abstract handBack(): void;

  // ----- transfers ---------------------------------------------------------------

  /**
   * switch_ivr_session_transfer(): a new caller profile (new destination and context, no originatee),
   * transfer_source/transfer_history, the state goes to CS_ROUTING. The dialplan routes it once the
   * running application (if any) has returned.
   */
  protected applyTransfer(
    dest: string,
    context: string | undefined,
    how: 'bl_xfer' | 'uuid_br' = 'bl_xfer',
    peer = '',
  ): void {
    const ctx = context === undefined || context === '' ? this.profile.context : context;
    const epoch = Math.floor(Date.now() / 1000);
    const src =
      how === 'bl_xfer'
        ? `${epoch}:${randomUUID()}:bl_xfer:${dest}/${ctx}/XML`
        : `${epoch}:${randomUUID()}:uuid_br:${peer}`;
    this.setVar('transfer_source', src);
    this.pushVar('transfer_history', src);
    if (how === 'uuid_br') return;
    this.profile.rdnis = this.profile.destinationNumber;
    this.profile.transferSource = src;
    this.profile.profileIndex = (this.profile.profileIndex ?? 1) + 1;
    this.profile.destinationNumber = dest;
    this.profile.context = ctx;
    this.touchProfile();
    this.other = null;
    this.otherBlock = null;
    this.stateNumber = 2;
    this.route = { dest, context: ctx };
  }

  /** `transfer <dest> [XML] [<context>]` run by the channel (sendmsg or an action). */
  protected transferApp(data: string): void {
    const w = data.split(' ').filter((x) => x !== '');
    if (w[0] === '-bleg' || w[0] === '-both') w.shift(); // no B-leg of its own while the app runs
    if (w.length === 0) return;
    this.applyTransfer(w[0] as string, w[2]);
  }

  /** The far end's REFER (blind transfer by the agent's phone) or `uuid_transfer` moves the caller channel. */
  transferFromOutside(dest: string, context: string | undefined, kind: 'refer' | 'uuid'): void {
    if (!this.up) return;
    if (kind === 'refer') this.setVar('sip_refer_to', `<sip:${dest}@127.0.0.1:5090>`);
    this.applyTransfer(dest, context);
    this.wakeTransferWaiters();
    // nothing running (parked and idle): the socket application returns right away
    if (!this.appRunning && !this.draining && !this.routing) queueMicrotask(() => this.afterApp());
  }

  // ----- the dialplan ------------------------------------------------------------

  /** Route the pending transfer(s): CS_ROUTING, CS_EXECUTE, the extension's actions [T routing obs. 1]. */
  protected async runDialplan(): Promise<void> {
    if (this.routing) return;
    this.routing = true;
    try {
      while (this.up && this.route) {
        const r = this.route;
        this.route = null;
        this.setState('CS_ROUTING', 2);
        const apps = this.script.dialplan?.[r.context]?.[r.dest];
        if (apps === undefined) {
          // mod_dialplan_xml finds no extension: "No Route, Aborting"
          this.hangup('NO_ROUTE_DESTINATION', 'internal');
          break;
        }
        this.setState('CS_EXECUTE', 4);
        for (const a of apps) {
          if (!this.up || this.route) break;
          await this.executeApp(a.app.toLowerCase(), a.data);
          if (this.pendingAgent && this.up && !this.route) await this.uuidBridgeAgent();
        }
        // the extension ran out of actions: the state machine hangs the channel up
        if (this.up && !this.route) this.hangup('NORMAL_CLEARING', 'internal');
      }
    } finally {
      this.routing = false;
    }
    this.afterApp();
  }

  protected setState(name: string, num: number): void {
    this.stateName = name;
    this.stateNumber = num;
    this.fire('CHANNEL_STATE', { withVars: false });
  }

  // ----- routing applications ------------------------------------------------------

  /**
   * voicemail <profile> <domain> <mailbox>: the caller leaves a message (a moment), then the app returns [T routing
   * obs. 6].
   */
  protected async voicemail(data: string): Promise<void> {
    const w = data.split(' ');
    this.setVar('voicemail_account', w[2] ?? '');
    this.setVar('voicemail_domain', w[1] ?? '');
    await this.interruptible(this.appDurationMs('voicemail', data));
  }

  /**
   * callcenter <queue>: the queue answers the caller (music on hold), rings its agents together
   * (ring-all) and returns as soon as one answers; the caller is then uuid_bridge'd to the agent
   * (CS_HIBERNATE, CS_RESET, CS_SOFT_EXECUTE, CHANNEL_EXECUTE[uuid_bridge], CHANNEL_BRIDGE) [T routing obs. 4].
   */
  protected async callcenter(queue: string): Promise<void> {
    const q = this.script.queues?.[queue];
    this.markAnswered();
    this.setVar('cc_queue', queue);
    this.setVar('cc_member_uuid', randomUUID());
    if (!q || q.agents.length === 0) {
      await this.interruptible(2 ** 31 - 1); // nobody to serve it: music until the caller gives up
      return;
    }
    await this.interruptible(this.scaled(q.musicMs ?? 200));
    while (this.up && !this.route) {
      const legs: BLeg[] = [];
      const group = { legs: q.agents.map((a) => ({ dial: `user/${a}`, vars: {} })) };
      const r = await this.ringGroup(group, {}, this.scaled(this.script.originateTimeoutMs ?? 1000), legs, false);
      if (r.kind === 'answered') {
        const w = r.winner;
        Object.assign(w.vars, {
          cc_queue: queue,
          cc_agent: `${w.key}@${w.vars.dialed_domain ?? ''}`,
          cc_side: 'agent',
          cc_member_session_uuid: this.uuid,
        });
        this.pendingAgent = { winner: w, legs, queue };
        // the caller is uuid_bridge'd: transfer_source names the agent leg, the agent is the originatee already
        this.applyTransfer('', undefined, 'uuid_br', w.uuid);
        this.other = this.legProfile(w);
        this.otherBlock = null;
        this.stateNumber = 8;
        return;
      }
      for (const b of legs) if (b.state !== 'down') this.legEnded(b, 'NO_ANSWER');
      if (r.kind === 'cancel') return;
      await this.interruptible(this.scaled(q.musicMs ?? 200)); // nobody answered: music, then the agents again
    }
  }

  private async uuidBridgeAgent(): Promise<void> {
    const a = this.pendingAgent;
    this.pendingAgent = null;
    if (!a) return;
    this.setState('CS_HIBERNATE', 8);
    this.setState('CS_RESET', 9);
    this.setState('CS_SOFT_EXECUTE', 3);
    const hdr: Header[] = [
      ['Application', 'uuid_bridge'],
      ['Application-Data', a.winner.uuid],
    ];
    this.fire('CHANNEL_EXECUTE', { post: [...hdr, ['Application-UUID', randomUUID()]], application: 'uuid_bridge' });
    this.appsRun.push(`uuid_bridge ${a.winner.uuid}`);
    const end = await this.bridged(a.winner, a.legs, {
      uuidBridge: true,
      beforeUnbridge: () => this.setVar('cc_agent', a.winner.vars.cc_agent ?? ''),
    });
    // the uuid_bridge ends: with hangup_after_bridge the caller is hung up (done in bridged() when the agent
    // hung up); otherwise the caller goes back to CS_EXECUTE and the extension goes on
    if (this.up && end !== 'transfer') {
      if (isTrue(this.vars.get('hangup_after_bridge'))) this.hangup('NORMAL_CLEARING', 'internal');
      else this.setState('CS_EXECUTE', 4);
    }
  }

  /** Wait ms, or less if the caller hangs up or is transferred. */
  protected async interruptible(ms: number): Promise<void> {
    await Promise.race([this.sleep(ms), this.whenDown(), this.whenTransferred()]);
  }

  protected abstract appDurationMs(app: string, data: string): number;
  /** Every application run, as 'app data' (SwitchCall.appsRun). */
  readonly appsRun: string[] = [];
}
