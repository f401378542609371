/**
 * One outbound event-socket connection from FreeSWITCH, behind a small typed interface.
 *
 * modesl does the handshake (`connect` and its own subscription), sends the commands and keeps
 * the command/reply bookkeeping. Its Parser is not used: it rebuilds each event header by header
 * with a linear search (quadratic in the ~170 headers of a channel event) after a full
 * JSON.parse, and re-joins its whole buffer on every read — over half of the adapter's CPU time
 * per call (bench/README.md). esl-frames.ts reads the socket instead and hands modesl's
 * connection the same messages its Parser would have emitted.
 * Its known defects are contained here, from the outside, so that nothing above this file ever
 * sees them:
 *  - an 'error' on a socket or connection without a listener crashes the process
 *    → we listen on both before modesl can emit anything;
 *  - a reset connection ('close' without 'end') is never cleaned up
 *    → our own 'close' listener is the one teardown path;
 *  - pending command callbacks never fire when the socket goes away
 *    → every command is a promise of ours, rejected at teardown;
 *  - a raw '%' in a header value throws inside the socket's 'data' handler (decodeURIComponent)
 *    → values are decoded as FreeSWITCH decodes them (esl-frames.ts urlDecode), and the socket is
 *    read inside a guard: whatever else throws while a message is read (a broken XML event…)
 *    closes only that connection;
 *  - commands are written as they are given → a line break in a value would start another
 *    command; such a command is refused (EslUnsafeCommandError) before anything is written;
 *  - modesl buffers without bound → the guard counts bytes between parsed messages;
 *  - one write per command line and header (a packet each, with no-delay)
 *    → the guard writes what modesl sends in one tick at once;
 *  - no `linger`, no types → plain commands through `command()`, types here;
 *  - its subscription on `connect` (`event json …`) takes every channel's events of the switch
 *    until `myevents` → replaced by `myevents json`, this channel's events only.
 */
import { EventEmitter } from 'node:events';
import esl, {} from 'modesl';
import { BlockEvent, FrameReader, JsonEvent, plainEvent } from './esl-frames.js';
export class EslCommandError extends Error {
    command;
    reply;
    constructor(command, reply) {
        super(`FreeSWITCH answered "${command}" with "${reply}"`);
        this.command = command;
        this.reply = reply;
        this.name = 'EslCommandError';
    }
}
/**
 * A command that would not be one command on the wire: a line break (or any other control
 * character) in its line or a header value ends the header or the whole packet early and starts
 * another — FreeSWITCH reads a packet up to the first blank line (mod_event_socket.c
 * read_packet()), and with `async full` the next packet may be `api system …`. Values from the
 * channel (zammad_bridge), from Zammad (a dial reply's caller id) or from the directory never
 * reach the socket unchecked: this is refused before anything is written.
 */
export class EslUnsafeCommandError extends Error {
    command;
    field;
    constructor(command, field) {
        super(`not sent to FreeSWITCH: ${field} of "${command}" contains a line break or another control character`);
        this.command = command;
        this.field = field;
        this.name = 'EslUnsafeCommandError';
    }
}
const CONTROL = /[\x00-\x1f\x7f]/;
/** Events kept until the call follows them (a handful come before: CHANNEL_PARK at most). */
const EARLY_EVENTS = 64;
const HEADER_NAME = /^[A-Za-z0-9_-]+$/;
/** The part of a command that would break the packet apart, or undefined when it is one packet. */
function unsafePart(line, headers) {
    if (CONTROL.test(line))
        return 'the command line';
    for (const [name, value] of Object.entries(headers ?? {})) {
        if (!HEADER_NAME.test(name))
            return `header name "${name.replace(/[^\x20-\x7e]/g, '?').slice(0, 40)}"`;
        if (typeof value !== 'string' || CONTROL.test(value))
            return `header ${name}`;
    }
    return undefined;
}
export class EslClosedError extends Error {
    reason;
    detail;
    constructor(reason, detail) {
        super(`event socket closed (${reason}${detail ? `: ${detail}` : ''})`);
        this.reason = reason;
        this.detail = detail;
        this.name = 'EslClosedError';
    }
}
/** A header lookup over modesl's event; modesl already decoded plain and json bodies alike. */
function view(event) {
    // Strings only: in a JSON event a peer can put a number, an array or an object where a
    // header's text belongs (FreeSWITCH writes arrays for ARRAY:: headers only).
    const text = (v) => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined);
    return {
        name: text(event.getHeader('Event-Name')) ?? '',
        get: (header) => text(event.getHeader(header)),
    };
}
/**
 * The socket modesl sees. It never emits 'data' (the socket is read by EslConnection.feed); what
 * modesl writes in one tick (a command is a write per line) leaves in one write.
 */
class GuardedSocket extends EventEmitter {
    socket;
    queued = [];
    constructor(socket) {
        super();
        this.socket = socket;
    }
    write(data) {
        if (!this.socket.writable)
            return false;
        if (this.queued.length === 0)
            process.nextTick(this.flush);
        this.queued.push(data);
        return true;
    }
    end() {
        this.flush();
        this.socket.end();
    }
    flush = () => {
        if (this.queued.length === 0)
            return;
        const data = this.queued.length === 1 ? this.queued[0] : this.queued.join('');
        this.queued = [];
        if (this.socket.writable)
            this.socket.write(data);
    };
}
/** What modesl's Parser would have built for a message (Parser._parseEvent), for modesl's connection. */
function toEvent(headers, type, body, xml) {
    switch (type) {
        case 'text/event-json':
            return new JsonEvent(body ?? '');
        case 'text/event-plain':
            return plainEvent(body ?? '');
        case 'text/event-xml':
            return xml(body ?? '');
        default:
            return new BlockEvent(headers, body ?? '');
    }
}
export class EslConnection extends EventEmitter {
    socket;
    options;
    conn;
    guard;
    reader = new FrameReader();
    pending = new Set();
    bytesSinceMessage = 0;
    closedReason;
    socketError;
    handshakeTimer;
    channelData;
    remote;
    constructor(socket, options) {
        super();
        this.socket = socket;
        this.options = options;
        this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
        socket.setNoDelay(true);
        socket.setKeepAlive(true, 30_000);
        // Our listeners come first: no socket error can ever go unhandled. An error only records
        // why; 'close' (which node emits after every error, and after a reset without 'end') is the
        // one teardown path, so a connection that breaks in any way is cleaned up exactly once.
        socket.on('error', (err) => (this.socketError ??= err.message));
        socket.on('close', () => this.close(this.socketError !== undefined ? 'reset' : 'peer-closed', this.socketError));
        socket.on('end', () => this.close('peer-closed'));
        this.guard = new GuardedSocket(socket);
        socket.on('data', (chunk) => this.feed(chunk));
        this.conn = new esl.Connection(this.guard);
        // modesl answers `connect` with its own `event json BACKGROUND_JOB CHANNEL_EXECUTE_COMPLETE`.
        // On an outbound socket that is every channel's events switch-wide (event_handler() narrows to
        // this call only once `myevents` is on): seen on a real switch, a dozen other calls' events
        // reached each new call before our `myevents`. So its subscription is `myevents json`: this
        // channel's events only, as JSON, from the start (it sets the format too, as `event json` did).
        this.conn.subscribe = (_events, cb) => this.conn.sendRecv('myevents json', (reply) => {
            const text = reply.getHeader('Reply-Text') ?? '';
            // Without it the call could not be followed at all: say so rather than wait for nothing.
            if (text.startsWith('-ERR'))
                this.close('malformed-frame', `FreeSWITCH refused "myevents json": ${text}`);
            else
                cb?.();
        });
        this.conn.on('error', (err) => this.close('malformed-frame', err.message));
        this.conn.onAny((name, ...args) => this.dispatch(Array.isArray(name) ? name.join('::') : name, args[0]));
        this.channelData = new Promise((resolve, reject) => {
            this.pending.add(reject);
            this.conn.once('esl::ready', () => {
                this.pending.delete(reject);
                const data = this.conn.getInfo();
                this.conn.channelData = null; // ours is the only copy (see ready())
                if (data)
                    resolve(view(data));
                else {
                    // The reply to `connect` was not a CHANNEL_DATA block: nothing to follow on this
                    // connection. Closed now, not left open until the handshake timer fires.
                    reject(new EslClosedError('malformed-frame'));
                    this.close('malformed-frame', 'the reply to connect carried no channel data');
                }
            });
        });
        this.channelData.catch(() => { });
        this.handshakeTimer = setTimeout(() => this.close('handshake-timeout'), options.handshakeTimeoutMs);
        this.handshakeTimer.unref();
        void this.channelData.then(() => clearTimeout(this.handshakeTimer), () => { });
    }
    /**
     * The CHANNEL_DATA FreeSWITCH sends in reply to `connect` (modesl sends `connect` itself).
     * Handed out once: the connection keeps no reference to it, so that a call followed for hours
     * does not carry its ~7 KB of channel data once the caller has read what it needs
     * (bench/README.md, memory). A second call rejects.
     */
    ready() {
        const data = this.channelData;
        this.channelData = undefined;
        return data ?? Promise.reject(new Error('EslConnection.ready(): the channel data is handed out once'));
    }
    get isOpen() {
        return this.closedReason === undefined;
    }
    /** A plain command such as `myevents` or `linger`; resolves with the Reply-Text. */
    command(line, headers) {
        const unsafe = unsafePart(line, headers);
        if (unsafe !== undefined)
            return Promise.reject(new EslUnsafeCommandError(line.split(/[\r\n]/)[0]?.slice(0, 40) ?? '', unsafe));
        return this.request(line, (done) => this.conn.sendRecv(line, headers ?? null, (reply) => done(reply.getHeader('Reply-Text') ?? '')));
    }
    /** `sendmsg` execute: in async mode FreeSWITCH acknowledges at once; the outcome comes as events. */
    execute(app, arg) {
        return this.command('sendmsg', { 'call-command': 'execute', 'execute-app-name': app, 'execute-app-arg': arg });
    }
    hangup(cause) {
        return this.command('sendmsg', { 'call-command': 'hangup', 'hangup-cause': cause });
    }
    /**
     * `api X` over this socket; resolves with the response body, `-ERR …` included: for a look-up
     * that is an answer ("no such variable": user_data writes nothing, api_exec says `-ERR no
     * reply`), not a failure worth an Error and its stack on every call.
     */
    api(line) {
        if (CONTROL.test(line))
            return Promise.reject(new EslUnsafeCommandError('api', 'the command line'));
        return this.request(`api ${line}`, (done) => this.conn.api(line, (reply) => done(reply.getBody())), false);
    }
    /** Say goodbye: FreeSWITCH answers `+OK bye`, sends the disconnect notice and closes. */
    exit(graceMs = 2000) {
        if (!this.isOpen)
            return;
        this.conn.send('exit');
        setTimeout(() => this.close('exit'), graceMs).unref();
    }
    close(reason, detail) {
        if (this.closedReason !== undefined)
            return;
        this.closedReason = reason;
        clearTimeout(this.handshakeTimer);
        if (this.pending.size > 0) {
            const err = new EslClosedError(reason, detail); // an Error (and its stack) only when someone waits for it
            for (const reject of this.pending)
                reject(err);
            this.pending.clear();
        }
        this.conn.cmdCallbackQueue.length = 0;
        this.conn.apiCallbackQueue.length = 0;
        this.guard.emit('end'); // lets modesl drop its socket reference
        this.socket.destroy();
        this.emit('closed', reason, detail);
        this.removeAllListeners('event');
        this.removeAllListeners('notice');
    }
    /**
     * Events of the channel, to `listener`, starting with those that came before it listened: the
     * subscription is answered during the handshake, and an event can share a TCP read with that
     * reply, before the call has read its channel data.
     */
    follow(listener) {
        this.on('event', listener);
        const early = this.early;
        this.early = undefined;
        for (const e of early ?? [])
            listener(e);
    }
    early = [];
    forward(e) {
        if (this.early === undefined)
            this.emit('event', e);
        else if (this.early.length < EARLY_EVENTS)
            this.early.push(e);
    }
    request(what, send, errIsFailure = true) {
        if (!this.isOpen)
            return Promise.reject(new EslClosedError(this.closedReason ?? 'peer-closed'));
        return new Promise((resolve, reject) => {
            this.pending.add(reject);
            send((text) => {
                this.pending.delete(reject);
                if (errIsFailure && text.startsWith('-ERR'))
                    reject(new EslCommandError(what.split('\n')[0] ?? what, text));
                else
                    resolve(text);
            });
        });
    }
    feed(chunk) {
        if (!this.isOpen)
            return;
        this.bytesSinceMessage += chunk.length;
        if (this.bytesSinceMessage > this.options.maxFrameBytes) {
            this.close('frame-too-large', `${this.bytesSinceMessage} bytes without a complete message`);
            return;
        }
        try {
            this.reader.push(chunk, this.deliver);
        }
        catch (err) {
            this.close('malformed-frame', err instanceof Error ? err.message : String(err));
        }
    }
    /**
     * One message. Events go straight to the call: modesl's routing of them (three header look-ups
     * and an emit through EventEmitter2's wildcard tree per event) serves nothing here. Replies,
     * api responses and notices go into modesl's connection exactly where its own Parser would
     * emit them, for its command/reply bookkeeping.
     */
    deliver = (headers, body) => {
        if (!this.isOpen)
            return;
        const parser = this.conn.parser;
        const type = headers.get('Content-Type');
        const event = toEvent(headers, type, body, (text) => new esl.Event(parser._parseXmlBody(text)));
        if (type === 'text/event-json' || type === 'text/event-plain' || type === 'text/event-xml') {
            this.bytesSinceMessage = 0;
            const ev = view(event);
            if (!ev.name.startsWith('CHANNEL_DATA'))
                this.forward(ev);
            return;
        }
        // FreeSWITCH asks only inbound clients to log in (mod_event_socket.c sends auth/request to a
        // listener without a session); here it is a peer playing games, which modesl would answer
        // with "auth undefined" and a reply callback of its own in the queue of ours.
        if (type === 'auth/request')
            return;
        // Of the outer headers, modesl's connection reads these two.
        const outer = {};
        if (type !== undefined)
            outer['Content-Type'] = type;
        const name = headers.get('Event-Name');
        if (name !== undefined)
            outer['Event-Name'] = name;
        parser.emit('esl::event', event, outer, body);
    };
    dispatch(name, payload) {
        this.bytesSinceMessage = 0;
        if (!this.isOpen || !name.startsWith('esl::event::'))
            return;
        const rest = name.slice('esl::event::'.length);
        if (rest.startsWith('disconnect::notice')) {
            const ev = payload;
            this.emit('notice', ev.getHeader('Content-Disposition') ?? '');
            return;
        }
        if (rest.startsWith('command::reply') || rest.startsWith('api::response') || rest.startsWith('raw::') || rest.startsWith('CHANNEL_DATA') || rest.startsWith('logdata') || rest.startsWith('auth::')) {
            return;
        }
        const ev = payload;
        if (ev && typeof ev.getHeader === 'function')
            this.forward(view(ev));
    }
}
//# sourceMappingURL=esl-connection.js.map