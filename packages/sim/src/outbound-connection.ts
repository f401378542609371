/**
 * One outbound-socket connection (mod_event_socket listener_t): reads the adapter's commands,
 * answers them, sends the events it subscribed to, linger and disconnect notices. The caller
 * channel (caller-channel.ts) runs the sendmsg's; api-commands.ts answers `api`/`bgapi`.
 */
import type * as net from 'node:net';
import { randomUUID } from 'node:crypto';
import {
  CommandParser,
  GOODBYE,
  apiResponse,
  bgapiReply,
  commandReply,
  connectReply,
  disconnectNotice,
  eventFrame,
  getHeader,
  lingerNotice,
  serializeJson,
  serializeXml,
  type EventFormat,
  type Header,
  type ParsedCommand,
} from './esl-wire.js';
import { apiCommand } from './api-commands.js';
import { passesFilters } from './event-filter.js';
import type { CallScript, ReceivedCommand, SentFrame, SwitchCall } from './call-script.js';
import { UuidBridgeChannel } from './uuid-bridge.js';
import { Output } from './chunked-output.js';
import { block, type FiredEvent, BlocksEvent } from './event-blocks.js';
import type { FakeSwitch } from './fake-switch.js';
import { EVENT_NAMES, MYEVENTS_LIST, CALLING } from './transcript-constants.js';

/** @internal */
export class Listener {
  readonly handle: SwitchCall;
  readonly channel: UuidBridgeChannel;
  private readonly out: Output;
  private readonly parser = new CommandParser();
  private readonly openedAt = Date.now();
  private readonly commands: ReceivedCommand[] = [];
  private readonly eventsSent: string[] = [];
  private readonly framesSent: SentFrame[] = [];
  private firstPacketDone = false;
  private firstTimer: NodeJS.Timeout | null = null;
  connected = false;
  private eventsOn = false;
  private myevents = false;
  private format: EventFormat = 'plain';
  private readonly eventList = new Set<string>();
  private readonly subclasses = new Set<string>();
  private filters: Header[] = [];
  linger = false;
  lingerTime = -1;
  private lingerTimer: NodeJS.Timeout | null = null;
  private discoHandled = false;
  private running = true;
  private closedFlag = false;
  private repliesAfterConnect = 0;
  private readonly parkAfter: number;
  private readonly parkExplicit: boolean;
  private resolveClosed!: () => void;

  constructor(
    readonly sw: FakeSwitch,
    readonly socket: net.Socket,
    readonly script: CallScript,
  ) {
    socket.setNoDelay(true);
    this.out = new Output(socket, script.chunking ?? 'whole', script.seed ?? 1);
    this.parkAfter = script.parkAfterReplies ?? 3;
    this.parkExplicit = script.parkAfterReplies !== undefined;
    this.channel = new UuidBridgeChannel(sw, this, script);
    const closed = new Promise<void>((r) => {
      this.resolveClosed = r;
    });
    const self = this;
    this.handle = {
      uuid: this.channel.uuid,
      commands: this.commands,
      eventsSent: this.eventsSent,
      framesSent: this.framesSent,
      hangup: (cause?: string) => self.channel.externalHangup(cause),
      closed,
      channelDone: this.channel.done,
      socket,
      variables: () => self.channel.variableMap(),
      get hangupCause() {
        return self.channel.hangupCause;
      },
      get socketLostWhileUp() {
        return self.channel.socketLostWhileUp;
      },
      get bridges() {
        return self.channel.bridges;
      },
      uuidTransfer: (dest: string, context?: string) => self.channel.transferFromOutside(dest, context, 'uuid'),
      get appsRun() {
        return self.channel.appsRun;
      },
      uuidBridge: (dial: string, opts?: { talkMs?: number }) => self.channel.uuidBridgeFromOutside(dial, opts?.talkMs),
      get phoneActs() {
        return self.channel.phoneActs;
      },
    };
    sw.listeners.add(this);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', () => {
      /* ECONNRESET etc.: treated like a close */
    });
    socket.on('close', () => this.onSocketClosed());
    const t = (script.firstCommandTimeoutMs ?? 25000) * (script.timeScale ?? 1);
    this.firstTimer = setTimeout(() => {
      // read_packet(listener, &ievent, 25) timed out: "Socket Error!" -> listener ends
      this.firstTimer = null;
      if (!this.firstPacketDone) this.finish();
    }, t);
    this.firstTimer.unref();
  }

  // ----- output ---------------------------------------------------------

  private at(): number {
    return Date.now() - this.openedAt;
  }

  private record(f: Omit<SentFrame, 'at'>): void {
    const full: SentFrame = { ...f, at: this.at() };
    this.framesSent.push(full);
    this.eventsSent.push(full.label);
  }

  private sendReply(text: string): void {
    if (!this.canWrite()) return;
    this.out.write(commandReply(text));
    this.record({ kind: 'reply', label: `reply:${text}`, replyText: text });
  }

  private canWrite(): boolean {
    return !this.closedFlag && this.running && !this.socket.destroyed;
  }

  /** An event fired somewhere on the switch (event_handler() + the listener's queue). */
  onEvent(ev: FiredEvent): void {
    if (!this.canWrite() || !this.eventsOn) return;
    let send = false;
    if (this.eventList.has('ALL')) send = true;
    else if (this.eventList.has(ev.name)) send = true;
    if (send && this.filters.length > 0) send = passesFilters(this.filters, (h) => ev.get(h));
    if (send && this.myevents) {
      if (!ev.uniqueId || ev.uniqueId !== this.channel.uuid) send = false;
    }
    if (!send) return;
    let ser: string;
    if (this.format === 'plain') ser = ev.plain();
    else if (this.format === 'json') ser = serializeJson(ev.headers(), ev.body);
    else ser = serializeXml(ev.headers(), ev.body);
    this.out.write(eventFrame(ser, this.format));
    const f: Omit<SentFrame, 'at'> = { kind: 'event', label: ev.name, eventName: ev.name };
    if (ev.application !== undefined) f.application = ev.application;
    if (ev.hangupCause !== undefined) f.hangupCause = ev.hangupCause;
    this.record(f);
  }

  /**
   * The channel went down (read_packet(): switch_channel_down() && !LFLAG_HANDLE_DISCO).
   * With linger: the linger notice, the socket stays open. Without: disconnect notice and close.
   */
  channelWentDown(): void {
    if (this.discoHandled || !this.canWrite()) return;
    this.discoHandled = true;
    if (this.linger) {
      this.out.write(lingerNotice(this.channel.uuid, this.channel.channelName, this.lingerTime));
      this.record({ kind: 'disconnect-notice', label: 'disconnect-notice:linger' });
      if (this.lingerTime >= 0) {
        this.lingerTimer = setTimeout(() => this.finish(), this.lingerTime * 1000 * (this.script.timeScale ?? 1));
        this.lingerTimer.unref();
      }
    } else {
      this.finish();
    }
  }

  /** listener_run() "done:" – flush nothing further, send the disconnect notice, close. */
  private finish(): void {
    if (!this.running) return;
    this.running = false;
    if (this.firstTimer) clearTimeout(this.firstTimer);
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    if (!this.socket.destroyed && !this.closedFlag) {
      this.out.write(disconnectNotice(this.channel.uuid, GOODBYE));
      this.record({ kind: 'disconnect-notice', label: 'disconnect-notice:disconnect' });
      this.out.end();
    }
    this.sw.listeners.delete(this);
    this.channel.socketGone();
  }

  private onSocketClosed(): void {
    this.closedFlag = true;
    if (this.firstTimer) clearTimeout(this.firstTimer);
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    if (this.running) {
      this.running = false;
      this.sw.listeners.delete(this);
      this.channel.socketGone();
    }
    this.resolveClosed();
  }

  // ----- input ------------------------------------------------------------

  private onData(d: Buffer): void {
    if (!this.running) return;
    for (const cmd of this.parser.push(d)) {
      if (!this.running) break;
      const rc: ReceivedCommand = { raw: cmd.raw, name: cmd.name, args: cmd.args, headers: cmd.headers, at: this.at() };
      if (cmd.body !== undefined) rc.body = cmd.body;
      this.commands.push(rc);
      this.handleCommand(cmd);
    }
  }

  private handleCommand(cmd: ParsedCommand): void {
    if (!this.firstPacketDone) {
      // listener_run(): the first packet is parsed, but its reply (if any) is never sent;
      // only "connect" answers, by writing the CHANNEL_DATA block itself.
      this.firstPacketDone = true;
      if (this.firstTimer) {
        clearTimeout(this.firstTimer);
        this.firstTimer = null;
      }
      this.parseCommand(cmd, true);
      return;
    }
    this.parseCommand(cmd, false);
  }

  /** Port of parse_command() for an outbound (session) listener in async full mode. */
  private parseCommand(cmd: ParsedCommand, suppressReply: boolean): void {
    const line = cmd.line;
    const lc = line.toLowerCase();
    let reply: string | null = null;
    let after: (() => void) | null = null;
    let isSendmsg = false;

    const done = (): void => {
      if (reply !== null && !suppressReply) {
        this.sendReply(reply === '' ? '-ERR command not found' : reply);
        if (this.connected) this.countReply(isSendmsg);
      }
      if (after) after();
    };

    if (lc.startsWith('exit') || lc.startsWith('...')) {
      reply = '+OK bye';
      after = () => this.finish();
      return done();
    }
    if (lc.startsWith('filter')) {
      reply = this.filterCommand(line.slice(6));
      return done();
    }
    if (lc.startsWith('resume')) {
      this.channel.setVar('socket_resume', 'true');
      reply = '+OK';
      return done();
    }
    if (lc.startsWith('connect')) {
      this.connected = true;
      if (!this.socket.destroyed) {
        this.out.write(connectReply(this.channel.channelDataHeaders()));
        this.record({ kind: 'connect-reply', label: 'connect-reply' });
      }
      if (this.parkAfter <= 0) this.channel.startPark();
      else if (this.parkExplicit) {
        // an explicit count never starves queued sendmsg's: the socket app parks shortly after connect anyway
        setTimeout(() => this.channel.startPark(), 100).unref();
      }
      return;
    }
    if (lc.startsWith('getvar')) {
      const sp = line.indexOf(' ');
      reply = sp < 0 ? '' : (this.channel.getVar(line.slice(sp + 1)) ?? '');
      return done();
    }
    if (lc.startsWith('myevents')) {
      if (this.myevents) {
        reply = '-ERR aready enabled.';
        return done();
      }
      for (const e of MYEVENTS_LIST) this.eventList.add(e);
      this.myevents = true;
      this.eventsOn = true;
      if (line.includes('xml') || line.includes('XML')) this.format = 'xml';
      if (line.includes('json') || line.includes('JSON')) this.format = 'json';
      reply = '+OK Events Enabled';
      return done();
    }
    if (lc.startsWith('divert_events')) {
      const v = line.slice(13).trim();
      reply =
        v === '' ? '-ERR missing value.' : v.toLowerCase() === 'on' ? '+OK events diverted' : '+OK events not diverted';
      return done();
    }
    if (lc.startsWith('sendmsg')) {
      isSendmsg = true;
      let uuid: string | undefined = line.slice(7).trim();
      if (uuid === '') uuid = getHeader(cmd, 'session-id');
      if (uuid !== undefined && uuid === this.channel.uuid) uuid = undefined;
      if (uuid === undefined || uuid === '') {
        reply = '+OK';
        after = () => this.channel.queuePrivate(cmd);
      } else {
        const other = this.sw.channels.get(uuid);
        if (other) {
          reply = '+OK';
          after = () => other.queuePrivate(cmd);
        } else {
          reply = `-ERR invalid session id [${uuid}]`;
        }
      }
      return done();
    }
    // LFLAG_FULL is set ("async full"): everything below is allowed
    if (lc.startsWith('sendevent')) {
      reply = `+OK ${randomUUID()}`;
      return done();
    }
    if (lc.startsWith('api ')) {
      const apiCmd = line.slice(4).trim();
      const body = this.api(apiCmd);
      if (!suppressReply && this.canWrite()) {
        this.out.write(apiResponse(body.text));
        this.record({
          kind: 'api-response',
          label: 'api-response',
          replyText: body.text.length === 0 ? '-ERR no reply\n' : body.text,
        });
        if (this.connected) this.countReply(false);
      }
      if (body.after) setImmediate(body.after);
      return;
    }
    if (lc.startsWith('bgapi ')) {
      const apiCmd = line.slice(6).trim();
      const jobUuid = getHeader(cmd, 'job-uuid') ?? randomUUID();
      if (!suppressReply && this.canWrite()) {
        this.out.write(bgapiReply(jobUuid));
        this.record({ kind: 'reply', label: `reply:+OK Job-UUID: ${jobUuid}`, replyText: `+OK Job-UUID: ${jobUuid}` });
        if (this.connected) this.countReply(false);
      }
      setImmediate(() => {
        const r = this.api(apiCmd);
        if (r.after) r.after();
        const sp = apiCmd.indexOf(' ');
        const hdrs: Header[] = [
          ['Job-UUID', jobUuid],
          ['Job-Command', sp < 0 ? apiCmd : apiCmd.slice(0, sp)],
        ];
        if (sp >= 0) hdrs.push(['Job-Command-Arg', apiCmd.slice(sp + 1)]);
        const top = this.sw.topBlock('BACKGROUND_JOB', CALLING.BACKGROUND_JOB);
        this.sw.fire(
          new BlocksEvent(
            'BACKGROUND_JOB',
            null,
            [top, block(hdrs)],
            r.text.length === 0 ? 'Command returned no output!' : r.text,
          ),
        );
      });
      return;
    }
    if (lc.startsWith('log')) {
      const lvl = line.slice(3).trim();
      const levels: Record<string, number> = {
        console: 0,
        alert: 1,
        crit: 2,
        err: 3,
        error: 3,
        warning: 4,
        notice: 5,
        info: 6,
        debug: 7,
      };
      const n = lvl === '' ? 7 : /^\d+$/.test(lvl) ? parseInt(lvl, 10) : levels[lvl.toLowerCase()];
      reply = n === undefined ? '-ERR invalid log level' : `+OK log level ${lvl} [${n}]`;
      return done();
    }
    if (lc.startsWith('linger')) {
      const arg = line.slice(6);
      if (arg.startsWith(' ') && arg.length > 1) {
        this.lingerTime = parseInt(arg.slice(1), 10) || 0;
        reply = `+OK will linger ${this.lingerTime} seconds`;
      } else {
        this.lingerTime = -1;
        reply = '+OK will linger';
      }
      this.linger = true;
      return done();
    }
    if (lc.startsWith('nolinger')) {
      this.linger = false;
      reply = '+OK will not linger';
      return done();
    }
    if (lc.startsWith('nolog')) {
      reply = '-ERR not loging';
      return done();
    }
    if (lc.startsWith('event')) {
      reply = this.eventCommand(line.slice(5));
      return done();
    }
    if (lc.startsWith('nixevent')) {
      reply = this.nixeventCommand(line.slice(8));
      return done();
    }
    if (lc.startsWith('noevents')) {
      if (this.eventsOn) {
        this.eventsOn = false;
        this.eventList.clear();
        this.subclasses.clear();
        reply = '+OK no longer listening for events';
      } else {
        reply = '-ERR not listening for events';
      }
      return done();
    }
    reply = '-ERR command not found';
    return done();
  }

  private countReply(isSendmsg: boolean): void {
    this.repliesAfterConnect++;
    if (this.repliesAfterConnect >= this.parkAfter || (isSendmsg && !this.parkExplicit)) this.channel.startPark();
  }

  /** "event [plain|json|xml] NAME ..." – additive, CUSTOM subclasses after CUSTOM. */
  private eventCommand(rest: string): string {
    const words = rest
      .trim()
      .split(' ')
      .filter((w) => w !== '');
    let keys = 0;
    let custom = false;
    words.forEach((w, i) => {
      const lw = w.toLowerCase();
      if (i === 0 && (lw === 'plain' || lw === 'json' || lw === 'xml')) {
        this.format = lw;
        return;
      }
      if (custom) {
        this.subclasses.add(w);
        return;
      }
      const name = w.toUpperCase().replace(/^SWITCH_EVENT_/, '');
      if (EVENT_NAMES.has(name)) {
        keys++;
        this.eventList.add(name);
        if (name === 'CUSTOM') custom = true;
      }
    });
    if (keys === 0) return '-ERR no keywords supplied';
    this.eventsOn = true;
    return `+OK event listener enabled ${this.format}`;
  }

  private nixeventCommand(rest: string): string {
    const words = rest
      .trim()
      .split(' ')
      .filter((w) => w !== '');
    let keys = 0;
    let custom = false;
    for (const w of words) {
      if (custom) {
        this.subclasses.delete(w);
        continue;
      }
      const name = w.toUpperCase();
      if (!EVENT_NAMES.has(name)) continue;
      keys++;
      if (name === 'CUSTOM') custom = true;
      else if (name === 'ALL') this.eventList.clear();
      else {
        if (this.eventList.has('ALL')) {
          this.eventList.delete('ALL');
          for (const e of EVENT_NAMES) if (e !== 'ALL') this.eventList.add(e);
        }
        this.eventList.delete(name);
      }
    }
    if (keys === 0) return '-ERR no keywords supplied';
    this.eventsOn = true;
    return '+OK events nixed';
  }

  private filterCommand(rest: string): string {
    const t = rest.trim();
    const parts = t.split(' ');
    const first = parts[0] ?? '';
    if (first.toLowerCase() === 'delete' && parts.length > 1) {
      const h = parts[1] ?? '';
      const v = parts.slice(2).join(' ');
      if (h.toLowerCase() === 'all') this.filters = [];
      else this.filters = this.filters.filter(([fh, fv]) => !(fh === h && (v === '' || fv === v)));
      return `+OK filter deleted. [${h}][${v === '' ? '(null)' : v}]`;
    }
    let h = first;
    let rest2 = parts.slice(1);
    if (h.toLowerCase() === 'add') {
      h = rest2[0] ?? '';
      rest2 = rest2.slice(1);
    }
    if (h === '' || rest2.length === 0) return '-ERR invalid syntax';
    const v = rest2.join(' ');
    this.filters.push([h, v]);
    return `+OK filter added. [${h}]=[${v}]`;
  }

  // ----- api (api-commands.ts) -----------------------------------------------

  private api(cmdline: string): { text: string; after?: () => void } {
    return apiCommand(this.sw, this.script, cmdline);
  }
}
