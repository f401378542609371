/**
 * The caller's channel (the session the socket controls): parked, runs the adapter's sendmsg
 * applications one after the other, hangs up, writes the CDR variables, notices a lost socket.
 */
import { randomUUID } from 'node:crypto';
import { getHeader, type Header, type ParsedCommand } from './esl-wire.js';
import type { CallScript, LingerNoticeAt } from './call-script.js';
import type { FakeSwitch } from './fake-switch.js';
import type { Listener } from './outbound-connection.js';
import { RoutingChannel, MEDIA_APPS } from './dialplan.js';
import { normalizeCause, q850, INSTANT_APPS, BLOCKING_APPS, SOCKET_APP_DATA } from './transcript-constants.js';
import { fmtStamp, nowMicros } from './util.js';

/** @internal The concrete channel adds the uuid_bridge shapes: uuid-bridge.ts. */
export abstract class CallerChannel extends RoutingChannel {
  constructor(sw: FakeSwitch, listener: Listener, script: CallScript) {
    super(sw, listener, script);
    sw.channels.set(this.uuid, this);
  }

  // ----- park / private events (switch_ivr_park + switch_ivr_parse_all_events) ----------------

  /** The socket app parks the channel: CHANNEL_PARK, then queued sendmsg's start running. */
  startPark(): void {
    if (this.parked || !this.up || !this.controlled) return;
    this.parked = true;
    this.fire('CHANNEL_PARK');
    if (this.queue.length > 0) this.scheduleTick();
  }

  queuePrivate(cmd: ParsedCommand): void {
    if (!this.up) return; // sendmsg after the channel is down: +OK, nothing happens [T commands-after-hangup]
    if (this.handedBack) {
      // the socket application has returned: a hangup is still parsed by the running app's loop (the real
      // switch hangs a transferred caller up ~20 ms after such a sendmsg [T routing obs. 8]); anything
      // else is not modelled and dropped
      if ((getHeader(cmd, 'call-command') ?? '').toLowerCase() === 'hangup') {
        this.after(this.parkTickMs, () => this.hangup(normalizeCause(getHeader(cmd, 'hangup-cause')), 'internal'));
      }
      return;
    }
    this.queue.push(cmd);
    if (this.parked) this.scheduleTick();
  }

  protected scheduleTick(): void {
    if (this.tickTimer) return;
    this.tickTimer = this.after(this.parkTickMs, () => {
      this.tickTimer = null;
      void this.drain();
    });
  }

  /** Process queued private events. While an app runs, only hangups and instant apps are handled inline. */
  protected async drain(): Promise<void> {
    if (!this.up) return;
    if (this.appRunning) {
      const keep: ParsedCommand[] = [];
      for (const c of this.queue.splice(0)) {
        const cc = (getHeader(c, 'call-command') ?? '').toLowerCase();
        const app = (getHeader(c, 'execute-app-name') ?? '').toLowerCase();
        if (cc === 'hangup') this.hangup(normalizeCause(getHeader(c, 'hangup-cause')), 'internal');
        else if (
          cc === 'execute' &&
          INSTANT_APPS.has(app) &&
          !['answer', 'pre_answer', 'ring_ready', 'hangup', 'respond', 'redirect', 'deflect'].includes(app)
        ) {
          await this.execute(c);
        } else keep.push(c);
      }
      this.queue.unshift(...keep);
      return;
    }
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.up && this.queue.length > 0) {
        const c = this.queue.shift() as ParsedCommand;
        const cc = (getHeader(c, 'call-command') ?? '').toLowerCase();
        if (cc === 'hangup') {
          this.hangup(normalizeCause(getHeader(c, 'hangup-cause')), 'internal');
        } else if (cc === 'execute') {
          this.appRunning = true;
          try {
            await this.execute(c);
          } finally {
            this.appRunning = false;
          }
          if (!this.controlled || this.route) break;
        }
        // unicast / nomedia / xferext / ...: accepted, nothing simulated
      }
    } finally {
      this.draining = false;
    }
    this.afterApp();
  }

  /** Called whenever the session is idle: tear down if down, leave park if the socket is gone. */
  protected afterApp(): void {
    if (this.appRunning || this.draining || this.routing) return;
    if (!this.up) {
      this.teardown();
      return;
    }
    if (this.route) {
      if (this.controlled) this.handBack();
      else void this.runDialplan();
      return;
    }
    if (this.handedBack) return;
    if (!this.controlled) {
      this.leavePark();
      return;
    }
    if (this.socketEnded && this.queue.length === 0) {
      this.loseSocket();
      return;
    }
    if (this.queue.length > 0) this.scheduleTick();
  }

  /**
   * The caller channel was transferred while the socket application ran: the park loop ends, the socket
   * application returns (UNPARK, EXECUTE_COMPLETE[socket]) and the dialplan routes the call; the
   * connection stays and keeps getting the channel's events [T routing obs. 1/2, 8].
   */
  protected handBack(): void {
    this.controlled = false;
    this.handedBack = true;
    this.cancel(this.tickTimer);
    this.tickTimer = null;
    // queued sendmsg's: a hangup is still honoured (see queuePrivate), the rest is dropped (not modelled)
    for (const c of this.queue.splice(0)) {
      if ((getHeader(c, 'call-command') ?? '').toLowerCase() === 'hangup') {
        this.after(this.parkTickMs, () => this.hangup(normalizeCause(getHeader(c, 'hangup-cause')), 'internal'));
      }
    }
    if (this.parked) {
      this.parked = false;
      this.fire('CHANNEL_UNPARK');
      this.fire('CHANNEL_EXECUTE_COMPLETE', {
        post: [
          ['Application', 'socket'],
          ['Application-Data', SOCKET_APP_DATA],
          ['Application-Response', '_none_'],
          ['Application-UUID', randomUUID()],
        ],
        application: 'socket',
      });
    }
    void this.runDialplan();
  }

  // ----- applications -------------------------------------------------------------

  protected expand(s: string): string {
    return s.replace(/\$\{([^}]+)\}/g, (_m, n: string) => {
      if (n === 'uuid') return this.uuid;
      if (n === 'caller_id_number') return this.profile.callerIdNumber;
      if (n === 'caller_id_name') return this.profile.callerIdName;
      if (n === 'destination_number') return this.profile.destinationNumber;
      if (n === 'context') return this.profile.context;
      return this.vars.get(n) ?? '';
    });
  }

  protected async execute(c: ParsedCommand): Promise<void> {
    const appName = getHeader(c, 'execute-app-name') ?? '';
    let arg = getHeader(c, 'execute-app-arg');
    const ct = getHeader(c, 'content-type');
    if (
      (arg === undefined || arg === '') &&
      ct !== undefined &&
      ct.toLowerCase() === 'text/plain' &&
      c.body !== undefined
    )
      arg = c.body;
    const loopsH = getHeader(c, 'loops');
    const loops = loopsH !== undefined ? parseInt(loopsH, 10) || 1 : 1;
    await this.executeApp(appName.toLowerCase(), arg ?? '', getHeader(c, 'event-uuid'), loops);
  }

  /** Run one application (a sendmsg's or a dialplan action): CHANNEL_EXECUTE, the app, CHANNEL_EXECUTE_COMPLETE. */
  protected async executeApp(app: string, arg: string | undefined, eventUuid?: string, loops = 1): Promise<void> {
    const appUuid = eventUuid ?? randomUUID();
    // switch_ivr_parse_event(): app_uuid, current_loop, total_loops are set before the application is looked
    // up; switch_core_session_execute_application() consumes app_uuid. For a non-existent application they stay.
    if (!INSTANT_APPS.has(app) && !BLOCKING_APPS.has(app)) {
      // "Invalid Application": +OK was already sent, no CHANNEL_EXECUTE, hangup DESTINATION_OUT_OF_ORDER [T errors]
      if (eventUuid !== undefined) this.setVar('app_uuid', eventUuid);
      this.setVar('current_loop', '1');
      this.setVar('total_loops', String(loops));
      this.hangup('DESTINATION_OUT_OF_ORDER', 'internal');
      // the loop ends: current_loop/total_loops are cleared again, app_uuid stays [T errors: UNPARK]
      this.setVar('current_loop', null);
      this.setVar('total_loops', null);
      return;
    }
    for (let i = 1; i <= loops && this.up; i++) {
      const data = this.expand(arg ?? '');
      // an application without SAF_SUPPORT_NOMEDIA pre-answers a channel without media first
      // (switch_core_session_exec; the queue's CHANNEL_PROGRESS_MEDIA in handback-queue-callcenter.txt)
      if (MEDIA_APPS.has(app)) this.preAnswer();
      this.appsRun.push(data === '' ? app : `${app} ${data}`);
      this.setVar('current_loop', String(i));
      this.setVar('total_loops', String(loops));
      this.setVar('current_application', app);
      this.setVar('current_application_data', data);
      this.lastApp = app;
      this.lastArg = data;
      // a dialplan action without data has no Application-Data [T routing: answer, hangup]
      const appHeaders: Header[] =
        arg === undefined
          ? [['Application', app]]
          : [
              ['Application', app],
              ['Application-Data', data],
            ];
      this.fire('CHANNEL_EXECUTE', { post: [...appHeaders, ['Application-UUID', appUuid]], application: app });
      await this.runApp(app, data);
      this.fire('CHANNEL_EXECUTE_COMPLETE', {
        post: [...appHeaders, ['Application-Response', '_none_'], ['Application-UUID', appUuid]],
        application: app,
      });
      this.setVar('current_loop', null);
      this.setVar('total_loops', null);
    }
  }

  protected async runApp(app: string, data: string): Promise<void> {
    switch (app) {
      case 'set':
      case 'export': {
        const eq = data.indexOf('=');
        if (eq < 0) this.setVar(data.trim(), null);
        else this.setVar(data.slice(0, eq).trim(), data.slice(eq + 1));
        return;
      }
      case 'unset':
        this.setVar(data.trim(), null);
        return;
      case 'multiset':
        for (const kv of data.split(' ')) {
          const eq = kv.indexOf('=');
          if (eq > 0) this.setVar(kv.slice(0, eq), kv.slice(eq + 1));
        }
        return;
      case 'answer':
        this.markAnswered();
        return;
      case 'pre_answer':
        this.preAnswer();
        return;
      case 'transfer':
        this.transferApp(data);
        return;
      case 'voicemail':
        await this.voicemail(data);
        return;
      case 'callcenter':
        await this.callcenter(data.trim());
        return;
      case 'ring_ready':
        this.markRingReady();
        return;
      case 'hangup':
        this.hangup(normalizeCause(data === '' ? undefined : data), 'internal');
        return;
      case 'respond': {
        const code = parseInt(data, 10);
        if (code >= 300) {
          const cause =
            code === 486
              ? 'USER_BUSY'
              : code === 404
                ? 'UNALLOCATED_NUMBER'
                : code === 603
                  ? 'CALL_REJECTED'
                  : code === 480
                    ? 'NO_USER_RESPONSE'
                    : 'NORMAL_TEMPORARY_FAILURE';
          this.hangup(cause, 'internal');
        } else if (code === 180) this.markRingReady();
        return;
      }
      case 'bridge':
        await this.bridge(data);
        return;
      default:
        if (BLOCKING_APPS.has(app)) await this.interruptible(this.appDurationMs(app, data));
        return;
    }
  }

  protected preAnswer(): void {
    if (this.answerState !== 'ringing' || !this.up) return;
    this.answerState = 'early';
    this.profile.progressMedia = nowMicros();
    this.touchProfile();
    this.fire('CHANNEL_PROGRESS_MEDIA');
  }

  protected appDurationMs(app: string, data: string): number {
    if (app === 'sleep') return this.scaled(parseInt(data, 10) || 0);
    if (app === 'park' || app === 'echo' || app === 'conference' || app === 'fifo') return 2 ** 31 - 1;
    const m = /silence_stream:\/\/(\d+)/.exec(data);
    if (m) return this.scaled(parseInt(m[1] as string, 10));
    return this.scaled(1000);
  }

  // ----- hangup -----------------------------------------------------------------------

  /** The caller (or something outside the session: uuid_kill, the far end) hangs the channel up. */
  externalHangup(cause?: string): void {
    if (!this.up) return;
    const c =
      cause !== undefined
        ? normalizeCause(cause)
        : this.answerState === 'answered'
          ? 'NORMAL_CLEARING'
          : 'ORIGINATOR_CANCEL';
    if (this.isSip) {
      if (this.answerState === 'answered') this.setVar('sip_hangup_disposition', 'recv_bye');
      else {
        this.setVar('sip_hangup_disposition', 'recv_cancel');
        this.setVar('sip_invite_failure_status', '487');
        this.setVar('sip_invite_failure_phrase', 'CANCEL');
        this.setVar('sip_reason', 'SIP;cause=487;text="ORIGINATOR_CANCEL"');
        this.setVar('sip_term_status', '487');
        this.setVar('proto_specific_hangup_cause', 'sip:487');
        this.setVar('sip_term_cause', '487');
      }
    }
    this.hangup(c, 'external');
  }

  /**
   * switch_channel_perform_hangup(): CHANNEL_HANGUP now; the rest of the end-of-call events follow when the
   * session is idle.
   */
  hangup(cause: string, origin: 'internal' | 'external'): void {
    if (!this.up) return;
    const pos: LingerNoticeAt =
      this.script.lingerNoticeAt ?? (origin === 'external' ? 'after-hangup' : 'after-hangup-complete');
    this.up = false;
    this.hangupCause = cause;
    this.answerState = 'hangup';
    this.stateNumber = 10;
    this.cancel(this.tickTimer);
    this.tickTimer = null;
    if (pos === 'before-hangup' && this.attached) this.listener.channelWentDown();
    this.fire('CHANNEL_HANGUP');
    if (pos === 'after-hangup' && this.attached) this.listener.channelWentDown();
    this.noticeAfterComplete = pos === 'after-hangup-complete';
    const w = this.downWaiters;
    this.downWaiters = [];
    for (const f of w) f();
    if (!this.appRunning && !this.draining) queueMicrotask(() => this.afterApp());
  }

  /** UNPARK, EXECUTE_COMPLETE(socket), CHANNEL_STATE x2, CHANNEL_HANGUP_COMPLETE [T README obs. 5]. */
  protected teardown(): void {
    if (this.tornDown) return;
    this.tornDown = true;
    if (this.parked) {
      this.fire('CHANNEL_UNPARK');
      this.fire('CHANNEL_EXECUTE_COMPLETE', {
        post: [
          ['Application', 'socket'],
          ['Application-Data', SOCKET_APP_DATA],
          ['Application-Response', '_none_'],
          ['Application-UUID', randomUUID()],
        ],
        application: 'socket',
      });
    }
    this.finalStates();
  }

  protected finalStates(): void {
    const cause = this.hangupCause ?? 'NORMAL_CLEARING';
    if (this.isSip && !this.vars.has('sip_hangup_disposition')) {
      this.setVar(
        'sip_hangup_disposition',
        this.answerState === 'hangup' && this.profile.answered > 0 ? 'send_bye' : 'send_refuse',
      );
    }
    this.stateName = 'CS_HANGUP';
    this.fire('CHANNEL_STATE', { withVars: false });
    this.stateName = 'CS_REPORTING';
    this.callState = 'HANGUP';
    this.stateNumber = 11;
    this.profile.hangup = nowMicros();
    this.touchProfile();
    this.fire('CHANNEL_STATE', { withVars: false });
    this.setCdrVars(cause);
    this.fire('CHANNEL_HANGUP_COMPLETE', { pre: [['Hangup-Cause', cause]] });
    if (this.noticeAfterComplete && this.attached) this.listener.channelWentDown();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.sw.channels.delete(this.uuid);
    this.resolveDone(cause);
  }

  protected setCdrVars(cause: string): void {
    const p = this.profile;
    const start = p.created;
    const end = p.hangup;
    const ans = p.answered;
    const br = this.bridgedAt;
    const prog = p.progress;
    const pm = p.progressMedia;
    const sec = (u: number): number => Math.floor(u / 1e6);
    const msec = (u: number): number => Math.floor(u / 1e3);
    const sip = this.isSip;
    const disp = sip ? this.vars.get('sip_hangup_disposition') : undefined;
    if (disp !== undefined) this.setVar('sip_hangup_disposition', null);
    const set = (k: string, v: string | number): void => this.setVar(k, String(v));
    set('hangup_cause', cause);
    set('hangup_cause_q850', q850(cause));
    set('digits_dialed', 'none');
    set('start_stamp', fmtStamp(start / 1000));
    set('profile_start_stamp', fmtStamp(start / 1000));
    if (ans) set('answer_stamp', fmtStamp(ans / 1000));
    if (br) set('bridge_stamp', fmtStamp(br / 1000));
    if (prog) set('progress_stamp', fmtStamp(prog / 1000));
    if (pm) set('progress_media_stamp', fmtStamp(pm / 1000));
    set('end_stamp', fmtStamp(end / 1000));
    set('start_epoch', sec(start));
    set('start_uepoch', start);
    set('profile_start_epoch', sec(start));
    set('profile_start_uepoch', start);
    set('answer_epoch', sec(ans));
    set('answer_uepoch', ans);
    set('bridge_epoch', sec(br));
    set('bridge_uepoch', br);
    set('last_hold_epoch', 0);
    set('last_hold_uepoch', 0);
    set('hold_accum_seconds', 0);
    set('hold_accum_usec', 0);
    set('hold_accum_ms', 0);
    set('resurrect_epoch', 0);
    set('resurrect_uepoch', 0);
    set('progress_epoch', sec(prog));
    set('progress_uepoch', prog);
    set('progress_media_epoch', sec(pm));
    set('progress_media_uepoch', pm);
    set('end_epoch', sec(end));
    set('end_uepoch', end);
    set('last_app', this.lastApp);
    set('last_arg', this.lastArg);
    set('caller_id', `"${p.callerIdName}" <${p.callerIdNumber}>`);
    const dsec = (a: number): number => (a ? sec(end) - sec(a) : 0);
    const fromStart = (a: number, f: (x: number) => number): number => (a ? f(a) - f(start) : 0);
    set('duration', sec(end) - sec(start));
    set('billsec', dsec(ans));
    set('progresssec', fromStart(prog, sec));
    set('answersec', fromStart(ans, sec));
    set('waitsec', fromStart(br, sec));
    set('progress_mediasec', fromStart(pm, sec));
    set('flow_billsec', ans ? sec(end) - sec(start) : 0);
    set('mduration', msec(end) - msec(start));
    set('billmsec', ans ? msec(end) - msec(ans) : 0);
    set('progressmsec', fromStart(prog, msec));
    set('answermsec', fromStart(ans, msec));
    set('waitmsec', fromStart(br, msec));
    set('progress_mediamsec', fromStart(pm, msec));
    set('flow_billmsec', ans ? msec(end) - msec(start) : 0);
    set('uduration', end - start);
    set('billusec', ans ? end - ans : 0);
    set('progressusec', prog ? prog - start : 0);
    set('answerusec', ans ? ans - start : 0);
    set('waitusec', br ? br - start : 0);
    set('progress_mediausec', pm ? pm - start : 0);
    set('flow_billusec', ans ? end - start : 0);
    if (sip) {
      if (disp !== undefined) set('sip_hangup_disposition', disp);
      for (const [k, v] of [
        ['rtp_audio_in_raw_bytes', '0'],
        ['rtp_audio_in_media_bytes', '0'],
        ['rtp_audio_in_packet_count', '0'],
        ['rtp_audio_in_media_packet_count', '0'],
        ['rtp_audio_in_skip_packet_count', '0'],
        ['rtp_audio_in_jitter_packet_count', '0'],
        ['rtp_audio_in_dtmf_packet_count', '0'],
        ['rtp_audio_in_cng_packet_count', '0'],
        ['rtp_audio_in_flush_packet_count', '0'],
        ['rtp_audio_in_largest_jb_size', '0'],
        ['rtp_audio_in_jitter_min_variance', '0.00'],
        ['rtp_audio_in_jitter_max_variance', '0.00'],
        ['rtp_audio_in_jitter_loss_rate', '0.00'],
        ['rtp_audio_in_jitter_burst_rate', '0.00'],
        ['rtp_audio_in_mean_interval', '0.00'],
        ['rtp_audio_in_flaw_total', '0'],
        ['rtp_audio_in_quality_percentage', '100.00'],
        ['rtp_audio_in_mos', '4.50'],
        ['rtp_audio_out_raw_bytes', '0'],
        ['rtp_audio_out_media_bytes', '0'],
        ['rtp_audio_out_packet_count', '0'],
        ['rtp_audio_out_media_packet_count', '0'],
        ['rtp_audio_out_skip_packet_count', '0'],
        ['rtp_audio_out_dtmf_packet_count', '0'],
        ['rtp_audio_out_cng_packet_count', '0'],
        ['rtp_audio_rtcp_packet_count', '0'],
        ['rtp_audio_rtcp_octet_count', '0'],
      ] as const)
        set(k, v);
    } else {
      set('is_loopback', 1);
    }
  }

  // ----- the socket went away -------------------------------------------------------------

  /**
   * listener_run() ended (exit, adapter closed, linger timeout): CF_CONTROLLED is cleared, the park
   * loop ends once the running app returns, and the dialplan continues after `socket` – which here
   * hangs the channel up (afterSocketHangupCause, default NORMAL_CLEARING) [F "connection drops"].
   */
  socketGone(): void {
    this.attached = false;
    if (!this.controlled) return; // after a hand-back the call does not depend on the socket [T routing obs. 2]
    if (this.up && this.queue.length > 0) {
      // socket_function(): once the park loop ends, switch_ivr_parse_all_events() runs what the connection
      // queued before it ended: a transfer sent together with `exit` still routes the call (the adapter's
      // shed, test/switch/scenarios/shed.test.ts) [F mod_event_socket.c socket_function()].
      this.socketEnded = true;
      if (this.parked) this.scheduleTick();
      return;
    }
    this.loseSocket();
  }

  /** The connection ended with nothing queued: the socket application returns into the dialplan. */
  private loseSocket(): void {
    this.controlled = false;
    for (const t of this.timers) t.unref();
    if (!this.up) return;
    this.socketLostWhileUp = true;
    if (!this.appRunning && !this.draining) this.leavePark();
  }

  protected leavePark(): void {
    if (!this.up) return;
    if (this.parked) {
      this.fire('CHANNEL_UNPARK');
      this.fire('CHANNEL_EXECUTE_COMPLETE', {
        post: [
          ['Application', 'socket'],
          ['Application-Data', SOCKET_APP_DATA],
          ['Application-Response', '_none_'],
          ['Application-UUID', randomUUID()],
        ],
        application: 'socket',
      });
      this.parked = false;
    }
    this.tornDown = true; // no second UNPARK
    this.up = false;
    this.hangupCause = normalizeCause(this.script.afterSocketHangupCause ?? 'NORMAL_CLEARING');
    this.answerState = 'hangup';
    this.stateNumber = 10;
    this.fire('CHANNEL_HANGUP');
    const w = this.downWaiters;
    this.downWaiters = [];
    for (const f of w) f();
    this.finalStates();
  }
}
