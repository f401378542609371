/**
 * The outbound event-socket listener: FreeSWITCH's `socket host:port async full` connects here,
 * once per call. Addresses outside ESL_ALLOW are closed at once, logged and counted.
 */
import net from 'node:net';
import type { Logger } from '../process/log.js';
import { AcceptQueue } from './backlog.js';
import { EslConnection, type EslConnectionOptions } from './esl-connection.js';

export interface ListenerOptions extends EslConnectionOptions {
  host: string;
  port: number;
  allow: readonly string[];
}

export interface ListenerHooks {
  rejected?(address: string): void;
  /**
   * Overload: false when a new connection is not to be taken as a call (process/shedding.ts); it
   * goes to `surplus` instead, with `take` to make it a call after all.
   */
  admit?(): boolean;
  surplus?(socket: net.Socket, take: () => void): Promise<void>;
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

/** A stop closes the port after this long without a new connection, and by STOP_WAIT_MS anyway. */
const STOP_QUIET_MS = 50;
const STOP_WAIT_MS = 1000;

export class EslListener {
  private readonly server: net.Server;
  private readonly allowed: net.BlockList;
  private readonly open = new Set<EslConnection>();
  private accepting = false;
  private backlog: AcceptQueue | undefined;
  /** Overload: connections being shed (hooks.surplus), counted as open until they close. */
  private readonly shedding = new Set<net.Socket>();
  /** Connections taken from the kernel so far. */
  private acceptedCount = 0;

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
        this.backlog = new AcceptQueue(addr.port, addr.family === 'IPv6');
        resolve({ host: addr.address, port: addr.port });
      });
    });
  }

  get listening(): boolean {
    return this.accepting;
  }

  /** Connections the kernel holds for the port, not yet accepted (backlog.ts); undefined when not known. */
  queued(): number | undefined {
    return this.accepting ? this.backlog?.read() : undefined;
  }

  get connections(): number {
    return this.open.size + this.shedding.size;
  }

  /**
   * Stops taking new calls; the calls in progress go on, and so do those the kernel already holds
   * for the port (closeWhenQuiet). Resolves once the port is closed to new connections
   * (net.Server's close callback would wait for every open call to end).
   */
  stopAccepting(): Promise<void> {
    if (!this.accepting) return Promise.resolve();
    return new Promise((resolve) => this.closeWhenQuiet(resolve));
  }

  /**
   * Closes the port once the kernel holds no connection for it. Closing a port resets the
   * connections the kernel holds for it that were not yet accepted, and FreeSWITCH parks a call
   * whose socket breaks before its first command (mod_event_socket.c socket_function():
   * switch_ivr_park after the listener ends). So the port is closed after a STOP_QUIET_MS spell
   * that accepted none (the signal may run before the turn's connections are read), and by
   * STOP_WAIT_MS anyway; until then connections are taken as calls. Overload never closes the port
   * for that reason: it sheds calls instead (shed.ts).
   */
  private closeWhenQuiet(closed: () => void): void {
    const deadline = Date.now() + STOP_WAIT_MS;
    let seen = this.acceptedCount;
    const check = () => {
      if (!this.accepting) return;
      if (this.acceptedCount === seen || Date.now() >= deadline) {
        if (this.server.listening) this.server.close();
        this.accepting = false;
        closed();
        return;
      }
      seen = this.acceptedCount;
      setTimeout(check, STOP_QUIET_MS);
    };
    setTimeout(check, STOP_QUIET_MS);
  }

  closeAll(): void {
    for (const conn of this.open) conn.close('shutdown');
    for (const socket of this.shedding) socket.destroy();
  }

  private accept(socket: net.Socket): void {
    this.acceptedCount++;
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
    const take = () => {
      const conn = new EslConnection(socket, this.options);
      // From here EslConnection's own listener is the only one: without it a reset would crash the
      // process (test/e2e/esl-defects.test.ts proves that it is there).
      socket.off('error', untilTakenOver);
      this.open.add(conn);
      conn.once('closed', () => this.open.delete(conn));
      this.onCall(conn);
    };
    const { admit, surplus } = this.hooks;
    if (surplus === undefined || admit === undefined || admit()) {
      take();
      return;
    }
    this.shedding.add(socket);
    void surplus(socket, () => {
      this.shedding.delete(socket);
      take();
      socket.resume(); // paused by the peek (shed.ts): a 'data' listener alone does not resume it
    }).finally(() => this.shedding.delete(socket));
  }
}
