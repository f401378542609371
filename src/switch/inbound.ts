/**
 * FreeSWITCH's inbound event socket (we connect to it, with its password), used only after a
 * restart: to ask whether the calls an earlier run was following still exist, and to watch
 * their events to the end. modesl's inbound mode does the talking (esl.ts); its defects are
 * contained as in esl-connection.ts (error listeners first, one teardown on 'close', every
 * command a promise rejected at teardown). Events are asked for as JSON, so no header of an event
 * goes through modesl's URL decoding.
 */
import { EventEmitter } from 'node:events';
import { isChannelId } from './channel-id.js';
import { InboundProtocol } from './esl.js';
import type { SwitchEvent } from './esl-connection.js';

export interface InboundOptions {
  host: string;
  port: number;
  password: string;
  timeoutMs: number;
}

type Events = { event: [SwitchEvent]; closed: [reason: string] };

/** The events readSignal() reads (CHANNEL_EXECUTE for voicemail). */
const FOLLOWED = 'CHANNEL_BRIDGE CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE';

export class InboundEsl extends EventEmitter<Events> {
  private readonly esl: InboundProtocol;
  private readonly pending = new Set<(err: Error) => void>();
  private closedWith: string | undefined;

  private constructor(options: InboundOptions, onReady: (err?: Error) => void) {
    super();
    this.esl = new InboundProtocol(options.host, options.port, options.password, {
      ready: () => onReady(),
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
      const timer = setTimeout(() => done(new Error(`no answer from FreeSWITCH's inbound event socket within ${options.timeoutMs} ms`)), options.timeoutMs);
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
    const body = await this.request((done) => this.esl.api(`uuid_exists ${uuid}`, done));
    return body.trim() === 'true';
  }

  /** Events of these channels only, as JSON. */
  async follow(uuids: string[]): Promise<void> {
    await this.request((done) => this.esl.command(`event json ${FOLLOWED}`, done));
    for (const uuid of uuids) {
      if (!isChannelId(uuid)) continue;
      await this.request((done) => this.esl.command(`filter Unique-ID ${uuid}`, done));
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

  private request(send: (done: (text: string) => void) => void): Promise<string> {
    if (this.closedWith !== undefined) return Promise.reject(new Error(`inbound event socket closed (${this.closedWith})`));
    return new Promise((resolve, reject) => {
      this.pending.add(reject);
      send((text) => {
        this.pending.delete(reject);
        if (text.startsWith('-ERR')) reject(new Error(`FreeSWITCH answered "${text}"`));
        else resolve(text);
      });
    });
  }
}
