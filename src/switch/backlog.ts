/**
 * The connections the kernel holds for the event-socket port: established by TCP, not yet accepted
 * by the adapter. Each is a caller whose `socket` application has connected and waits for its first
 * command, and the adapter cannot see them any other way. When the queue is full (511, Node's
 * listen backlog) the kernel drops the switch's handshake, and the caller waits for TCP's
 * retransmission: 1 s, then 3 s.
 *
 * Linux shows a listening socket's queue in /proc/net/tcp (tcp6 for IPv6) as its rx_queue
 * (sk_ack_backlog: net/ipv4/tcp_ipv4.c get_tcp4_sock()), and lists listening sockets before any
 * other (tcp_seq_start(): listening_get_first() first), so only the first pages are read, not a
 * line for every call. Elsewhere, or when the file cannot be read, the queue is not known.
 */
import { closeSync, openSync, readSync } from 'node:fs';

/** LISTEN in /proc/net/tcp's `st` column (include/net/tcp_states.h TCP_LISTEN = 10). */
const LISTEN = '0A';
const PAGE = 16 * 1024;
/** Read no further than this: a host with this many listening sockets is not one to look at every 100 ms. */
const MAX_BYTES = 256 * 1024;

/**
 * The queue of the listening socket(s) on `port` in the text of /proc/net/tcp or tcp6, and whether
 * the text went past the listening sockets (then the answer is final).
 */
export function listenQueue(text: string, port: number): { queued: number; found: boolean; past: boolean } {
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let queued = 0;
  let found = false;
  let past = false;
  let start = text.indexOf('\n') + 1; // the header line
  while (start > 0 && start < text.length) {
    const end = text.indexOf('\n', start);
    if (end < 0) break; // a line cut by the read: read on
    const fields = text.slice(start, end).trim().split(/\s+/);
    start = end + 1;
    const [, local = '', , st = '', queues = ''] = fields;
    if (st !== LISTEN) {
      past = true;
      break;
    }
    if (!local.endsWith(hexPort)) continue;
    found = true;
    queued += Number.parseInt(queues.split(':')[1] ?? '0', 16) || 0;
  }
  return { queued, found, past };
}

export class AcceptQueue {
  private readonly file: string;
  private readonly buffer = Buffer.allocUnsafe(MAX_BYTES);
  private broken = false;

  constructor(
    private readonly port: number,
    ipv6: boolean,
  ) {
    this.file = ipv6 ? '/proc/net/tcp6' : '/proc/net/tcp';
  }

  /** Connections waiting to be accepted; undefined when not known (not Linux, file unreadable, port not found). */
  read(): number | undefined {
    if (this.broken || process.platform !== 'linux') return undefined;
    let fd: number | undefined;
    try {
      fd = openSync(this.file, 'r');
      let size = 0;
      for (;;) {
        const n = readSync(fd, this.buffer, size, Math.min(PAGE, MAX_BYTES - size), null);
        size += n;
        const q = listenQueue(this.buffer.toString('latin1', 0, size), this.port);
        if (q.past || n === 0 || size >= MAX_BYTES) return q.found ? q.queued : undefined;
      }
    } catch {
      this.broken = true; // not readable here (a sandbox, another OS): the other inputs decide alone
      return undefined;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
}
