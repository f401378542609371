/**
 * The caller channel's state and its event generator: variables, caller-profile blocks, the
 * events it fires (with their headers in FreeSWITCH's order), timers, ring/answer marks.
 * originate.ts adds the bridge, caller-channel.ts the application queue and the hangup.
 */
import { randomUUID } from 'node:crypto';
import { plainHeaderLine, type Header, type ParsedCommand } from './esl-wire.js';
import type { ChannelSpec, CallScript } from './call-script.js';
import { type Profile, profileHeaders, type Block, block, EMPTY_BLOCK, BlocksEvent } from './event-blocks.js';
import type { FakeSwitch } from './fake-switch.js';
import type { Listener } from './outbound-connection.js';
import { CALLING, SOCKET_APP_DATA } from './transcript-constants.js';
import { nowMicros, randToken } from './util.js';

/** @internal */
export abstract class ChannelEvents {
  readonly uuid: string;
  readonly channelName: string;
  readonly isSip: boolean;
  protected readonly spec: ChannelSpec;
  protected readonly ts: number;
  protected readonly parkTickMs: number;
  protected readonly profile: Profile;
  protected other: Profile | null = null;
  /** Other-Type: the leg this channel bridged ('originatee'), or the first party of a uuid_bridge ('originator'). */
  protected otherType: 'originatee' | 'originator' = 'originatee';
  /** Channel-Call-UUID: the channel's own uuid until a uuid_bridge makes the other party's call its call. */
  protected callUuid: string;
  protected readonly vars = new Map<string, string>();
  protected readonly varLines = new Map<string, string>();
  protected varsBlock: Block | null = null;
  protected profileBlock: Block | null = null;
  protected channelProfileBlock: Block | null = null;
  protected otherBlock: Block | null = null;

  up = true;
  hangupCause: string | null = null;
  protected answerState: 'ringing' | 'early' | 'answered' | 'hangup' = 'ringing';
  protected callState = 'RINGING';
  protected stateName = 'CS_EXECUTE';
  protected stateNumber = 4;
  protected ringReady = false;
  protected bridgedAt = 0;
  protected lastApp = 'socket';
  protected lastArg = SOCKET_APP_DATA;
  socketLostWhileUp = false;
  /** The connection ended with commands still queued: they run first (socketGone). */
  protected socketEnded = false;
  readonly bridges: string[] = [];

  protected parked = false;
  /** The socket application runs (parked or running the socket's sendmsg's). */
  protected controlled = true;
  /** The outbound connection is still open (it outlives the socket application after a hand-back). */
  protected attached = true;
  /** The socket application returned on a transfer: the dialplan routes the call, the connection only listens. */
  protected handedBack = false;
  protected readonly queue: ParsedCommand[] = [];
  protected tickTimer: NodeJS.Timeout | null = null;
  protected appRunning = false;
  protected draining = false;
  protected tornDown = false;
  protected noticeAfterComplete = false;
  protected readonly timers = new Set<NodeJS.Timeout>();
  protected downWaiters: Array<() => void> = [];
  protected resolveDone!: (cause: string) => void;
  readonly done: Promise<string>;
  protected readonly rnd = Math.random;

  constructor(
    protected readonly sw: FakeSwitch,
    protected readonly listener: Listener,
    protected readonly script: CallScript,
  ) {
    this.spec = script.channel;
    this.ts = script.timeScale ?? 1;
    this.parkTickMs = script.parkTickMs ?? 20;
    this.uuid = this.spec.uuid ?? randomUUID();
    this.callUuid = this.uuid;
    this.isSip = this.spec.sip === true;
    this.done = new Promise<string>((r) => {
      this.resolveDone = r;
    });
    const num = this.spec.callerNumber;
    const name = this.spec.callerName ?? num;
    const dest = this.spec.destination;
    const context = this.spec.context ?? 'public';
    const created = nowMicros();
    this.channelName = this.isSip ? `sofia/lo-in/${num}@127.0.0.1` : `loopback/${dest}-b`;
    this.profile = {
      direction: 'inbound',
      logicalDirection: 'inbound',
      dialplan: this.isSip ? 'XML' : 'xml',
      callerIdName: name,
      callerIdNumber: num,
      origCallerIdName: name,
      origCallerIdNumber: num,
      ani: num,
      destinationNumber: dest,
      uniqueId: this.uuid,
      source: this.isSip ? 'mod_sofia' : 'mod_loopback',
      context,
      channelName: this.channelName,
      withProfileIndex: true,
      created,
      answered: 0,
      progress: 0,
      progressMedia: 0,
      hangup: 0,
      bridged: 0,
      hideName: this.spec.hideName === true,
      hideNumber: this.spec.hideNumber === true,
    };
    if (this.spec.transferSource !== undefined) {
      this.profile.transferSource = this.spec.transferSource;
      this.profile.rdnis = dest;
      this.profile.profileIndex = 2;
    }
    if (this.isSip) {
      this.profile.username = num;
      this.profile.networkAddr = '127.0.0.1';
    } else {
      // mod_loopback's B side carries the A side's callee id ("Outbound Call" / context) [T answered-normal]
      this.profile.calleeIdName = 'Outbound Call';
      this.profile.calleeIdNumber = context;
    }
    this.initVars(num, name, dest, created);
    // CallerChannel's constructor then registers the channel with the switch (sw.channels).
  }

  // ----- variables ------------------------------------------------------------

  protected initVars(num: string, name: string, dest: string, created: number): void {
    const sid = String(this.sw.nextSessionId());
    const v: Array<[string, string]> = [];
    if (this.isSip) {
      const callId = `${randomUUID().slice(0, 8)}-632d-1240-20a4-a29a517ad9dc`;
      const fromTag = randToken(13, this.rnd);
      const branch = `z9hG4bK${randToken(13, this.rnd)}`;
      const hide = this.spec.hideNumber === true;
      v.push(
        ['direction', 'inbound'],
        ['uuid', this.uuid],
        ['session_id', sid],
        ['sip_from_user', num],
        ['sip_from_uri', `${num}@127.0.0.1`],
        ['sip_from_host', '127.0.0.1'],
        ['video_media_flow', 'disabled'],
        ['text_media_flow', 'disabled'],
        ['channel_name', this.channelName],
        ['sip_call_id', callId],
        ['sip_local_network_addr', '127.0.0.1'],
        ['sip_network_ip', '127.0.0.1'],
        ['sip_network_port', '5091'],
        ['sip_invite_stamp', String(created)],
        ['sip_received_ip', '127.0.0.1'],
        ['sip_received_port', '5091'],
        ['sip_via_protocol', 'udp'],
        ['sip_from_user_stripped', num],
        ['sip_from_tag', fromTag],
        ['sofia_profile_name', 'lo-in'],
        ['sofia_profile_url', 'sip:mod_sofia@127.0.0.1:5090'],
        ['recovery_profile_name', 'lo-in'],
      );
      if (hide) {
        // Privacy: id + P-Asserted-Identity: the real number still arrives [F]
        v.push(
          ['sip_P-Asserted-Identity', `"${name}" <sip:${num}@127.0.0.1>`],
          ['sip_Privacy', 'id'],
          ['sip_cid_type', 'pid'],
        );
      } else {
        v.push(
          ['sip_Remote-Party-ID', `"${name}" <sip:${num}@127.0.0.1>;party=calling;screen=yes;privacy=off`],
          ['sip_cid_type', 'rpid'],
        );
      }
      v.push(
        ['sip_full_via', `SIP/2.0/UDP 127.0.0.1:5091;rport=5091;branch=${branch}`],
        ['sip_from_display', name],
        ['sip_full_from', `"${name}" <sip:${num}@127.0.0.1>;tag=${fromTag}`],
        ['sip_full_to', `<sip:${dest}@127.0.0.1:5090>`],
        ['sip_allow', 'INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, INFO, UPDATE, REGISTER, REFER, NOTIFY'],
        ['sip_req_user', dest],
        ['sip_req_port', '5090'],
        ['sip_req_uri', `${dest}@127.0.0.1:5090`],
        ['sip_req_host', '127.0.0.1'],
        ['sip_to_user', dest],
        ['sip_to_port', '5090'],
        ['sip_to_uri', `${dest}@127.0.0.1:5090`],
        ['sip_to_host', '127.0.0.1'],
        ['sip_contact_user', 'mod_sofia'],
        ['sip_contact_port', '5091'],
        ['sip_contact_uri', 'mod_sofia@127.0.0.1:5091'],
        ['sip_contact_host', '127.0.0.1'],
        ['sip_user_agent', 'FreeSWITCH-mod_sofia/1.10.12-release~64bit'],
        ['sip_via_host', '127.0.0.1'],
        ['sip_via_port', '5091'],
        ['sip_via_rport', '5091'],
        ['max_forwards', '70'],
        [
          'switch_r_sdp',
          'v=0\r\no=FreeSWITCH 1795565024 1795565025 IN IP4 127.0.0.1\r\ns=FreeSWITCH\r\nc=IN IP4 127.0.0.1\r\n' +
            't=0 0\r\nm=audio 16738 RTP/AVP 0 8 101 13\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n' +
            'a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=rtpmap:13 CN/8000\r\na=ptime:20\r\n',
        ],
        ['ep_codec_string', 'CORE_PCM_MODULE.PCMU@8000h@20i@64000b,CORE_PCM_MODULE.PCMA@8000h@20i@64000b'],
        ['rtp_use_codec_string', 'PCMU,PCMA'],
        ['remote_video_media_flow', 'inactive'],
        ['remote_text_media_flow', 'inactive'],
        ['remote_audio_media_flow', 'sendrecv'],
        ['audio_media_flow', 'sendrecv'],
        ['remote_media_ip', '127.0.0.1'],
        ['remote_media_port', '16738'],
        ['rtp_audio_recv_pt', '0'],
        ['rtp_use_codec_name', 'PCMU'],
        ['rtp_use_codec_rate', '8000'],
        ['rtp_use_codec_ptime', '20'],
        ['rtp_use_codec_channels', '1'],
        ['rtp_last_audio_codec_string', 'PCMU@8000h@20i@1c'],
        ['read_codec', 'PCMU'],
        ['original_read_codec', 'PCMU'],
        ['read_rate', '8000'],
        ['original_read_rate', '8000'],
        ['write_codec', 'PCMU'],
        ['write_rate', '8000'],
        ['dtmf_type', 'rfc2833'],
        ['endpoint_disposition', 'RECEIVED'],
      );
    } else {
      const orig = randomUUID();
      v.push(
        ['direction', 'inbound'],
        ['uuid', this.uuid],
        ['session_id', sid],
        ['channel_name', this.channelName],
        ['read_codec', 'L16'],
        ['read_rate', '8000'],
        ['write_codec', 'L16'],
        ['write_rate', '8000'],
        ['origination_uuid', orig],
        ['origination_caller_id_number', num],
        ['origination_caller_id_name', name],
        ['other_loopback_leg_uuid', orig],
        ['loopback_leg', 'B'],
      );
    }
    v.push(['DP_MATCH', `ARRAY::${dest}|:${dest}`], ['call_uuid', this.uuid], ['loopback_no_pre_answer', 'true']);
    if (this.spec.transferSource !== undefined)
      v.push(['transfer_source', this.spec.transferSource], ['transfer_history', this.spec.transferSource]);
    const extra = this.spec.variables ?? {};
    const inTemplate = new Set(v.map(([k]) => k));
    for (let i = 0; i < v.length; i++) {
      const e = v[i] as [string, string];
      const x = extra[e[0]];
      if (x !== undefined) v[i] = [e[0], x];
    }
    for (const [k, x] of Object.entries(extra)) if (!inTemplate.has(k)) v.push([k, x]);
    v.push(
      ['current_application_data', SOCKET_APP_DATA],
      ['current_application', 'socket'],
      ['socket_host', '127.0.0.1'],
    );
    for (const [k, x] of v) this.vars.set(k, x);
  }

  /** switch_channel_set_variable(): delete + append (a re-set moves the variable to the end); null deletes. */
  setVar(name: string, value: string | null): void {
    if (name === '') return;
    this.vars.delete(name);
    this.varLines.delete(name);
    if (value !== null && value !== '') this.vars.set(name, value);
    this.varsBlock = null;
  }

  /** Append to an ARRAY:: variable (switch_channel_add_variable_var_check(..., SWITCH_STACK_PUSH)). */
  protected pushVar(name: string, value: string): void {
    const cur = this.vars.get(name);
    if (cur === undefined) {
      this.vars.set(name, value);
    } else {
      const items = cur.startsWith('ARRAY::') ? cur.slice(7).split('|:') : [cur];
      items.push(value);
      this.vars.set(name, `ARRAY::${items.join('|:')}`);
    }
    this.varLines.delete(name);
    this.varsBlock = null;
  }

  getVar(name: string): string | undefined {
    return this.vars.get(name);
  }

  variableMap(): Record<string, string> {
    return Object.fromEntries(this.vars);
  }

  protected getVarsBlock(): Block {
    if (this.varsBlock === null) {
      const list: Header[] = [];
      let plain = '';
      for (const [k, v] of this.vars) {
        const n = `variable_${k}`;
        list.push([n, v]);
        let line = this.varLines.get(k);
        if (line === undefined) {
          line = plainHeaderLine(n, v);
          this.varLines.set(k, line);
        }
        plain += line;
      }
      this.varsBlock = { list, plain };
    }
    return this.varsBlock;
  }

  protected touchProfile(): void {
    this.profileBlock = null;
    this.channelProfileBlock = null;
  }

  protected getProfileBlock(): Block {
    if (this.profileBlock === null) this.profileBlock = block(profileHeaders('Caller', this.profile));
    return this.profileBlock;
  }

  protected getOtherBlock(): Block {
    if (this.other === null) return EMPTY_BLOCK;
    if (this.otherBlock === null) {
      this.otherBlock = block([['Other-Type', this.otherType], ...profileHeaders('Other-Leg', this.other)]);
    }
    return this.otherBlock;
  }

  protected stateBlock(): Block {
    const h: Header[] = [
      ['Channel-State', this.stateName],
      ['Channel-Call-State', this.callState],
      ['Channel-State-Number', String(this.stateNumber)],
      ['Channel-Name', this.channelName],
      ['Unique-ID', this.uuid],
      ['Call-Direction', 'inbound'],
      ['Presence-Call-Direction', 'inbound'],
      ['Channel-HIT-Dialplan', 'true'],
      ['Channel-Call-UUID', this.callUuid],
      ['Answer-State', this.answerState],
    ];
    if (this.hangupCause !== null) h.push(['Hangup-Cause', this.hangupCause]);
    if (this.isSip) {
      h.push(
        ['Channel-Read-Codec-Name', 'PCMU'],
        ['Channel-Read-Codec-Rate', '8000'],
        ['Channel-Read-Codec-Bit-Rate', '64000'],
        ['Channel-Write-Codec-Name', 'PCMU'],
        ['Channel-Write-Codec-Rate', '8000'],
        ['Channel-Write-Codec-Bit-Rate', '64000'],
      );
    } else {
      h.push(
        ['Channel-Read-Codec-Name', 'L16'],
        ['Channel-Read-Codec-Rate', '8000'],
        ['Channel-Read-Codec-Bit-Rate', '128000'],
        ['Channel-Write-Codec-Name', 'L16'],
        ['Channel-Write-Codec-Rate', '8000'],
        ['Channel-Write-Codec-Bit-Rate', '128000'],
      );
    }
    return block(h);
  }

  /** The CHANNEL_DATA headers for the connect reply (without the reply headers). */
  channelDataHeaders(): Header[] {
    if (this.channelProfileBlock === null) this.channelProfileBlock = block(profileHeaders('Channel', this.profile));
    const top = this.sw.topBlock('CHANNEL_DATA', CALLING.CHANNEL_DATA);
    return [
      ...top.list,
      ...this.channelProfileBlock.list,
      ...this.stateBlock().list,
      ...this.getProfileBlock().list,
      ...this.getOtherBlock().list,
      ...this.getVarsBlock().list,
    ];
  }

  // ----- event firing ---------------------------------------------------------

  protected fire(
    name: string,
    opts: { pre?: Header[]; post?: Header[]; withVars?: boolean; application?: string } = {},
  ): void {
    const blocks: Block[] = [this.sw.topBlock(name, CALLING[name])];
    if (opts.pre) blocks.push(block(opts.pre));
    blocks.push(this.stateBlock(), this.getProfileBlock(), this.getOtherBlock());
    if (opts.withVars !== false) blocks.push(this.getVarsBlock());
    if (opts.post) blocks.push(block(opts.post));
    const hc =
      name === 'CHANNEL_HANGUP' || name === 'CHANNEL_HANGUP_COMPLETE' ? (this.hangupCause ?? undefined) : undefined;
    this.sw.fire(new BlocksEvent(name, this.uuid, blocks, undefined, opts.application, hc));
  }

  // ----- timers -----------------------------------------------------------------

  protected after(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(
      () => {
        this.timers.delete(t);
        fn();
      },
      Math.max(0, ms),
    );
    // once the socket is gone nobody waits for this channel any more: don't keep the process alive for it
    // (a call the dialplan routes goes on, and tests wait for its end)
    if (!this.controlled && !this.handedBack) t.unref();
    this.timers.add(t);
    return t;
  }
  protected cancel(t: NodeJS.Timeout | null): void {
    if (t) {
      clearTimeout(t);
      this.timers.delete(t);
    }
  }
  protected scaled(ms: number): number {
    return ms * this.ts;
  }
  protected sleep(ms: number): Promise<void> {
    return new Promise((r) => this.after(ms, r));
  }
  /** Resolves when the channel goes down (immediately if it already is). */
  protected whenDown(): Promise<void> {
    if (!this.up) return Promise.resolve();
    return new Promise((r) => this.downWaiters.push(r));
  }

  protected markRingReady(): void {
    if (this.ringReady || this.answerState === 'answered') return;
    this.ringReady = true;
    this.profile.progress = nowMicros();
    this.touchProfile();
    this.fire('CHANNEL_PROGRESS');
  }

  protected markAnswered(): void {
    if (this.answerState === 'answered' || !this.up) return;
    this.answerState = 'answered';
    this.profile.answered = nowMicros();
    this.touchProfile();
    if (this.isSip) this.setSipAnswerVars();
    this.fire('CHANNEL_ANSWER');
    // the ANSWER event still shows Channel-Call-State RINGING [T answered-normal]
    this.callState = 'ACTIVE';
  }

  protected setSipAnswerVars(): void {
    this.setVar(
      'switch_m_sdp',
      'v=0\r\no=FreeSWITCH 1795564794 1795564795 IN IP4 192.0.2.2\r\ns=FreeSWITCH\r\nc=IN IP4 127.0.0.1\r\n' +
        't=0 0\r\nm=audio 16968 RTP/AVP 0 101 13\r\na=rtpmap:0 PCMU/8000\r\n' +
        'a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=rtpmap:13 CN/8000\r\na=ptime:20\r\n',
    );
    this.setVar('video_media_flow', 'inactive');
    this.setVar('text_media_flow', 'inactive');
    this.setVar(
      'rtp_local_sdp_str',
      'v=0\r\no=FreeSWITCH 1795565188 1795565189 IN IP4 127.0.0.1\r\ns=FreeSWITCH\r\nc=IN IP4 127.0.0.1\r\n' +
        't=0 0\r\nm=audio 16574 RTP/AVP 0 101 13\r\na=rtpmap:0 PCMU/8000\r\n' +
        'a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=rtpmap:13 CN/8000\r\na=ptime:20\r\na=sendrecv\r\n',
    );
    this.setVar('local_media_ip', '127.0.0.1');
    this.setVar('local_media_port', '16574');
    this.setVar('advertised_media_ip', '127.0.0.1');
    this.setVar('rtp_use_timer_name', 'soft');
    this.setVar('rtp_use_pt', '0');
    this.setVar('rtp_use_ssrc', String(Math.floor(this.rnd() * 4294967295)));
    this.setVar('rtp_2833_send_payload', '101');
    this.setVar('rtp_2833_recv_payload', '101');
  }
}
