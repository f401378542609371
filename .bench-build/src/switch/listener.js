/**
 * The outbound event-socket listener: FreeSWITCH's `socket host:port async full` connects here,
 * once per call. Addresses outside ESL_ALLOW are closed at once, logged and counted.
 */
import net from 'node:net';
import { EslConnection } from './esl-connection.js';
export function allowList(entries) {
    const list = new net.BlockList();
    for (const entry of entries) {
        const [addr = '', bits] = entry.split('/');
        const type = net.isIPv6(addr) ? 'ipv6' : 'ipv4';
        if (bits === undefined)
            list.addAddress(addr, type);
        else
            list.addSubnet(addr, Number(bits), type);
    }
    return list;
}
function isAllowed(list, address) {
    const v4 = address.startsWith('::ffff:') ? address.slice(7) : undefined;
    if (v4 && net.isIPv4(v4))
        return list.check(v4, 'ipv4');
    return list.check(address, net.isIPv6(address) ? 'ipv6' : 'ipv4');
}
export class EslListener {
    options;
    onCall;
    log;
    hooks;
    server;
    allowed;
    open = new Set();
    accepting = false;
    constructor(options, onCall, log, hooks = {}) {
        this.options = options;
        this.onCall = onCall;
        this.log = log;
        this.hooks = hooks;
        this.allowed = allowList(options.allow);
        this.server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
        this.server.on('error', (err) => this.log.error('ESL listener error', { error: err.message }));
    }
    listen() {
        return new Promise((resolve, reject) => {
            const fail = (err) => reject(err);
            this.server.once('error', fail);
            this.server.listen(this.options.port, this.options.host, () => {
                this.server.off('error', fail);
                this.accepting = true;
                const addr = this.server.address();
                resolve({ host: addr.address, port: addr.port });
            });
        });
    }
    get listening() {
        return this.accepting;
    }
    get connections() {
        return this.open.size;
    }
    /**
     * Stops taking new calls; the calls in progress go on. Resolves once the port is closed to new
     * connections (net.Server's close callback would wait for every open call to end).
     */
    stopAccepting() {
        this.accepting = false;
        this.server.close();
        return Promise.resolve();
    }
    closeAll() {
        for (const conn of this.open)
            conn.close('shutdown');
    }
    accept(socket) {
        const address = socket.remoteAddress ?? '';
        const untilTakenOver = () => { }; // a reset before EslConnection listens must not crash
        socket.on('error', untilTakenOver);
        if (address === '') {
            socket.destroy(); // reset before it was accepted: nothing to refuse or to follow
            return;
        }
        if (!this.accepting || !isAllowed(this.allowed, address)) {
            if (this.accepting) {
                this.log.warn('refused an event-socket connection from an address outside ESL_ALLOW', { address });
                this.hooks.rejected?.(address);
            }
            socket.destroy();
            return;
        }
        const conn = new EslConnection(socket, this.options);
        // From here EslConnection's own listener is the only one: without it a reset would crash the
        // process (test/e2e/esl-defects.test.ts proves that it is there).
        socket.off('error', untilTakenOver);
        this.open.add(conn);
        conn.once('closed', () => this.open.delete(conn));
        this.onCall(conn);
    }
}
//# sourceMappingURL=listener.js.map