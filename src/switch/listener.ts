/**
 * The outbound event-socket listener: FreeSWITCH's `socket host:port async full` connects here,
 * once per call. Addresses outside ESL_ALLOW are closed at once, logged and counted.
 */
import net from 'node:net';
import type { Logger } from '../process/log.js';
import { EslConnection, type EslConnectionOptions } from './esl-connection.js';

export interface ListenerOptions extends EslConnectionOptions {
  host: string;
  port: number;
  allow: readonly string[];
}

export interface ListenerHooks {
  rejected?(address: string): void;
}

function allowList(entries: readonly string[]): net.BlockList {
  const list = new net.BlockList();
  for (const entry of entries) {
    const [addr = '', bits] = entry.split('/');
    const type = net.isIPv6(addr) ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(bits), type);
  }
  return list;
}

function isAllowed(list: net.BlockList, address: string): boolean {
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : undefined;
  if (v4 && net.isIPv4(v4)) return list.check(v4, 'ipv4');
  return list.check(address, net.isIPv6(address) ? 'ipv6' : 'ipv4');
}

export class EslListener {
  private readonly server: net.Server;
  private readonly allowed: net.BlockList;
  private readonly open = new Set<EslConnection>();
  private accepting = false;

  constructor(
    private readonly options: ListenerOptions,
    private readonly onCall: (conn: EslConnection) => void,
    private readonly log: Logger,
    private readonly hooks: ListenerHooks = {},
  ) {
    this.allowed = allowList(options.allow);
    this.server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server.on('error', (err) => this.log.error('ESL listener error', { error: err.message }));
  }

  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const fail = (err: Error) => reject(err);
      this.server.once('error', fail);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', fail);
        this.accepting = true;
        const addr = this.server.address() as net.AddressInfo;
        resolve({ host: addr.address, port: addr.port });
      });
    });
  }

  get listening(): boolean {
    return this.accepting;
  }

  get connections(): number {
    return this.open.size;
  }

  /**
   * Stops taking new calls; the calls in progress go on. Resolves once the port is closed to new
   * connections (net.Server's close callback would wait for every open call to end).
   */
  stopAccepting(): Promise<void> {
    this.accepting = false;
    this.server.close();
    return Promise.resolve();
  }

  closeAll(): void {
    for (const conn of this.open) conn.close('shutdown');
  }

  private accept(socket: net.Socket): void {
    const address = socket.remoteAddress ?? '';
    const untilTakenOver = () => {}; // a reset before EslConnection listens must not crash
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
