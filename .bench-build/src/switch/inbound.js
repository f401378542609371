/**
 * FreeSWITCH's inbound event socket (we connect to it, with its password), used only after a
 * restart: to ask whether the calls an earlier run was following still exist, and to watch
 * their events to the end. modesl's inbound mode does the talking; its defects are contained
 * as in esl-connection.ts (error listeners first, one teardown on 'close', every command a
 * promise rejected at teardown). Events are asked for as JSON, so no header of an event goes
 * through modesl's URL decoding.
 */
import { EventEmitter } from 'node:events';
import esl, {} from 'modesl';
/** The events readSignal() reads (CHANNEL_EXECUTE for voicemail). */
const FOLLOWED = 'CHANNEL_BRIDGE CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE';
export class InboundEsl extends EventEmitter {
    conn;
    pending = new Set();
    closedWith;
    constructor(options, onReady) {
        super();
        this.conn = new esl.Connection(options.host, options.port, options.password, () => onReady());
        this.conn.on('error', (err) => {
            onReady(err);
            this.close(`error: ${err.message}`);
        });
        this.conn.on('esl::event::auth::fail', () => {
            onReady(new Error('FreeSWITCH refused the password (FS_INBOUND_PASSWORD)'));
            this.close('auth failed');
        });
        const socket = this.conn.socket;
        socket?.on('close', () => {
            onReady(new Error('FreeSWITCH closed the inbound event socket'));
            this.close('closed by FreeSWITCH');
        });
        this.conn.onAny((name, ev) => {
            const n = Array.isArray(name) ? name.join('::') : name;
            if (!n.startsWith('esl::event::CHANNEL_'))
                return;
            const e = ev;
            if (e && typeof e.getHeader === 'function')
                this.emit('event', { name: e.getHeader('Event-Name') ?? '', get: (h) => e.getHeader(h) ?? undefined });
        });
    }
    static connect(options) {
        return new Promise((resolve, reject) => {
            let settled = false;
            const timer = setTimeout(() => done(new Error(`no answer from FreeSWITCH's inbound event socket within ${options.timeoutMs} ms`)), options.timeoutMs);
            const done = (err) => {
                if (settled)
                    return;
                settled = true;
                clearTimeout(timer);
                if (err) {
                    client.close(err.message);
                    reject(err);
                }
                else
                    resolve(client);
            };
            const client = new InboundEsl(options, done);
        });
    }
    /** `api uuid_exists <uuid>`: does the switch still have this channel? */
    async exists(uuid) {
        if (!/^[\w-]{1,128}$/.test(uuid))
            return false;
        const body = await this.request((done) => this.conn.api(`uuid_exists ${uuid}`, (r) => done(r.getBody())));
        return body.trim() === 'true';
    }
    /** Events of these channels only, as JSON. */
    async follow(uuids) {
        await this.request((done) => this.conn.sendRecv(`event json ${FOLLOWED}`, (r) => done(r.getHeader('Reply-Text') ?? '')));
        for (const uuid of uuids) {
            if (!/^[\w-]{1,128}$/.test(uuid))
                continue;
            await this.request((done) => this.conn.sendRecv(`filter Unique-ID ${uuid}`, (r) => done(r.getHeader('Reply-Text') ?? '')));
        }
    }
    close(reason = 'done') {
        if (this.closedWith !== undefined)
            return;
        this.closedWith = reason;
        const err = new Error(`inbound event socket closed (${reason})`);
        for (const reject of this.pending)
            reject(err);
        this.pending.clear();
        const socket = this.conn.socket;
        socket?.destroy?.();
        this.emit('closed', reason);
    }
    request(send) {
        if (this.closedWith !== undefined)
            return Promise.reject(new Error(`inbound event socket closed (${this.closedWith})`));
        return new Promise((resolve, reject) => {
            this.pending.add(reject);
            send((text) => {
                this.pending.delete(reject);
                if (text.startsWith('-ERR'))
                    reject(new Error(`FreeSWITCH answered "${text}"`));
                else
                    resolve(text);
            });
        });
    }
}
//# sourceMappingURL=inbound.js.map