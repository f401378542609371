/**
 * The pieces a channel event is built from: caller-profile header blocks
 * (switch_caller_profile_event_set_data order), cached header blocks, and the fired event whose
 * plain/JSON/XML serialisation is built once, lazily.
 */
import { plainHeaderLine, plainTail } from './esl-wire.js';
export function profileHeaders(prefix, p) {
    const h = [];
    const add = (n, v) => {
        h.push([prefix + '-' + n, v]);
    };
    add('Direction', p.direction);
    add('Logical-Direction', p.logicalDirection);
    if (p.username !== undefined)
        add('Username', p.username);
    add('Dialplan', p.dialplan);
    add('Caller-ID-Name', p.callerIdName);
    add('Caller-ID-Number', p.callerIdNumber);
    add('Orig-Caller-ID-Name', p.origCallerIdName);
    add('Orig-Caller-ID-Number', p.origCallerIdNumber);
    if (p.calleeIdName !== undefined)
        add('Callee-ID-Name', p.calleeIdName);
    if (p.calleeIdNumber !== undefined)
        add('Callee-ID-Number', p.calleeIdNumber);
    if (p.networkAddr !== undefined)
        add('Network-Addr', p.networkAddr);
    add('ANI', p.ani);
    add('Destination-Number', p.destinationNumber);
    add('Unique-ID', p.uniqueId);
    add('Source', p.source);
    if (p.transferSource !== undefined)
        add('Transfer-Source', p.transferSource);
    add('Context', p.context);
    if (p.rdnis !== undefined)
        add('RDNIS', p.rdnis);
    add('Channel-Name', p.channelName);
    if (p.withProfileIndex)
        add('Profile-Index', String(p.profileIndex ?? 1));
    add('Profile-Created-Time', String(p.created));
    add('Channel-Created-Time', String(p.created));
    add('Channel-Answered-Time', String(p.answered));
    add('Channel-Progress-Time', String(p.progress));
    add('Channel-Progress-Media-Time', String(p.progressMedia));
    add('Channel-Hangup-Time', String(p.hangup));
    add('Channel-Transfer-Time', '0');
    add('Channel-Resurrect-Time', '0');
    add('Channel-Bridged-Time', String(p.bridged));
    add('Channel-Last-Hold', '0');
    add('Channel-Hold-Accum', '0');
    add('Screen-Bit', 'true');
    add('Privacy-Hide-Name', p.hideName ? 'true' : 'false');
    add('Privacy-Hide-Number', p.hideNumber ? 'true' : 'false');
    return h;
}
export function block(list) {
    let plain = '';
    for (const [n, v] of list)
        plain += plainHeaderLine(n, v);
    return { list, plain };
}
export const EMPTY_BLOCK = { list: [], plain: '' };
export class BlocksEvent {
    name;
    uniqueId;
    blocks;
    body;
    application;
    hangupCause;
    plainCache = null;
    listCache = null;
    constructor(name, uniqueId, blocks, body, application, hangupCause) {
        this.name = name;
        this.uniqueId = uniqueId;
        this.blocks = blocks;
        this.body = body;
        this.application = application;
        this.hangupCause = hangupCause;
    }
    plain() {
        if (this.plainCache === null) {
            let s = '';
            for (const b of this.blocks)
                s += b.plain;
            this.plainCache = s + plainTail(this.body);
        }
        return this.plainCache;
    }
    headers() {
        if (this.listCache === null) {
            const l = [];
            for (const b of this.blocks)
                for (const h of b.list)
                    l.push(h);
            this.listCache = l;
        }
        return this.listCache;
    }
    get(name) {
        const n = name.toLowerCase();
        for (const [k, v] of this.headers())
            if (k.toLowerCase() === n)
                return v;
        return undefined;
    }
}
//# sourceMappingURL=event-blocks.js.map