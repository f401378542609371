/**
 * FreeSWITCH's inbound event socket (we connect to it, with its password), used only after a
 * restart: to ask whether the calls an earlier run was following still exist, and to follow
 * their events to the end. modesl's inbound mode does the talking (esl.ts); its defects are
 * contained as in esl-connection.ts (error listeners first, one teardown on 'close', every
 * command a promise rejected at teardown). Events are asked for as JSON, so no header of an event
 * goes through modesl's URL decoding. Every wait has a bound (`timeoutMs`): the connect and login
 * together, then each command and api on its own; a command not answered in time closes the
 * connection (a reply arriving later would be taken for the next command's) with the reason.
 */
import { EventEmitter } from 'node:events';
import { isChannelId } from './channel-id.js';
import { InboundProtocol } from './esl.js';
import type { SwitchEvent } from './esl-connection.js';

export interface InboundOptions {
  host: string;
  port: number;
  password: string;
  /** The bound on the connect and login, and on each command and api after it. */
  timeoutMs: number;
}

type Events = { event: [SwitchEvent]; closed: [reason: string] };

/** The events readSignal() reads (CHANNEL_EXECUTE for voicemail). */
const FOLLOWED = 'CHANNEL_BRIDGE CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE';

export class InboundEsl extends EventEmitter<Events> {
  private readonly esl: InboundProtocol;
  private readonly pending = new Set<(err: Error) => void>();
  private closedWith: string | undefined;
  private readonly timeoutMs: number;

  /** How far the login got, for the reason a connect timeout gives. */
  private stage = 'no TCP connection';

  private constructor(options: InboundOptions, onReady: (err?: Error) => void) {
    super();
    this.timeoutMs = options.timeoutMs;
    this.esl = new InboundProtocol(options.host, options.port, options.password, {
      ready: () => onReady(),
      progress: (stage) => {
        this.stage =
          stage === 'connected' ? 'connected, FreeSWITCH never asked for the password' : 'password sent, no reply';
      },
      error: (err) => {
        onReady(err);
        this.close(`error: ${err.message}`);
      },
      authFailed: () => {
        onReady(new Error('FreeSWITCH refused the password (FS_INBOUND_PASSWORD)'));
        this.close('auth failed');
      },
      closed: () => {
        onReady(new Error('FreeSWITCH closed the inbound event socket'));
        this.close('closed by FreeSWITCH');
      },
      channelEvent: (e) =>
        this.emit('event', { name: e.getHeader('Event-Name') ?? '', get: (h) => e.getHeader(h) ?? undefined }),
    });
  }

  static connect(options: InboundOptions): Promise<InboundEsl> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        const why = `no login on FreeSWITCH's inbound event socket within ${options.timeoutMs} ms (${client.stage})`;
        done(new Error(why));
      }, options.timeoutMs);
      const done = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          client.close(err.message);
          reject(err);
        } else resolve(client);
      };
      const client: InboundEsl = new InboundEsl(options, done);
    });
  }

  /** `api uuid_exists <uuid>`: does the switch still have this channel? */
  async exists(uuid: string): Promise<boolean> {
    if (!isChannelId(uuid)) return false;
    const body = await this.request(`api uuid_exists ${uuid}`, (done) => this.esl.api(`uuid_exists ${uuid}`, done));
    return body.trim() === 'true';
  }

  /** Events of these channels only, as JSON. */
  async follow(uuids: string[]): Promise<void> {
    await this.request(`event json ${FOLLOWED}`, (done) => this.esl.command(`event json ${FOLLOWED}`, done));
    for (const uuid of uuids) {
      if (!isChannelId(uuid)) continue;
      await this.request(`filter Unique-ID ${uuid}`, (done) => this.esl.command(`filter Unique-ID ${uuid}`, done));
    }
  }

  close(reason = 'done'): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = reason;
    const err = new Error(`inbound event socket closed (${reason})`);
    for (const reject of this.pending) reject(err);
    this.pending.clear();
    this.esl.destroy();
    this.emit('closed', reason);
  }

  /** `line`: the command as sent, for the reason a timeout gives. */
  private request(line: string, send: (done: (text: string) => void) => void): Promise<string> {
    if (this.closedWith !== undefined) {
      return Promise.reject(new Error(`inbound event socket closed (${this.closedWith})`));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.close(`no reply to "${line}" within ${this.timeoutMs} ms`), this.timeoutMs);
      const fail = (err: Error) => {
        clearTimeout(timer);
        reject(err);
      };
      this.pending.add(fail);
      send((text) => {
        clearTimeout(timer);
        this.pending.delete(fail);
        if (text.startsWith('-ERR')) reject(new Error(`FreeSWITCH answered "${text}"`));
        else resolve(text);
      });
    });
  }
}
