/**
 * A hand-driven event-socket peer for the attack tests: it connects to the adapter the way
 * FreeSWITCH's `socket` application does, records the commands it receives and writes whatever
 * bytes a test gives it — well-formed frames from packages/sim/src/esl-wire.ts, or broken ones. Plus
 * small probes of the adapter process: /metrics values, resident memory, open descriptors.
 */
import net from 'node:net';
import { readFileSync, readdirSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import {
  CommandParser,
  commandReply,
  connectReply,
  encodeEvent,
  type Header,
  type ParsedCommand,
} from '@freeswitch-zammad-cti/sim/esl-wire';

export type CloseKind = 'end' | 'reset' | 'destroyed';

export class RawSwitch {
  readonly commands: ParsedCommand[] = [];
  /** How the connection ended, once it has. */
  closedBy: CloseKind | undefined;
  readonly closed: Promise<CloseKind>;
  private readonly parser = new CommandParser();
  private consumed = 0;
  private readonly watchers = new Set<() => void>();

  private constructor(readonly socket: net.Socket) {
    let gotEnd = false;
    let gotError = false;
    socket.on('data', (d: Buffer) => {
      for (const c of this.parser.push(d)) this.commands.push(c);
      this.notify();
    });
    socket.on('end', () => (gotEnd = true));
    socket.on('error', () => (gotError = true));
    this.closed = new Promise<CloseKind>((resolve) =>
      socket.once('close', () => {
        this.closedBy = gotError ? 'reset' : gotEnd ? 'end' : 'destroyed';
        this.notify();
        resolve(this.closedBy);
      }),
    );
  }

  static connect(port: number, host = '127.0.0.1', localAddress?: string): Promise<RawSwitch> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host, ...(localAddress ? { localAddress } : {}) });
      socket.setNoDelay(true);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawSwitch(socket));
      });
    });
  }

  get isClosed(): boolean {
    return this.closedBy !== undefined;
  }

  /** The next command not yet taken (optionally: the next one with this name), waiting for it. */
  next(name?: string, timeoutMs = 10_000): Promise<ParsedCommand> {
    return new Promise((resolve, reject) => {
      const check = () => {
        while (this.consumed < this.commands.length) {
          const cmd = this.commands[this.consumed++] as ParsedCommand;
          if (name === undefined || cmd.name === name) {
            done();
            resolve(cmd);
            return;
          }
        }
        if (this.isClosed) {
          done();
          reject(
            new Error(
              `connection closed (${this.closedBy}) while waiting for ${name ?? 'a command'}; got: ` +
                `${this.commands.map((c) => c.line).join(' | ')}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `no ${name ?? 'command'} within ${timeoutMs} ms; got: ${this.commands.map((c) => c.line).join(' | ')}`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.watchers.delete(check);
      };
      this.watchers.add(check);
      check();
    });
  }

  write(data: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  /** A TCP reset (RST), as when the switch's host dies or a firewall cuts the connection. */
  reset(): void {
    if (!this.socket.destroyed) this.socket.resetAndDestroy();
  }

  end(): void {
    this.socket.end();
  }

  /** Waits for the adapter to close the connection; rejects after timeoutMs. */
  async waitClosed(timeoutMs = 10_000): Promise<CloseKind> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>(
      (_, reject) =>
        (timer = setTimeout(
          () => reject(new Error(`the adapter did not close the connection within ${timeoutMs} ms`)),
          timeoutMs,
        )),
    );
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private notify(): void {
    for (const w of [...this.watchers]) w();
  }
}

export interface ChannelOptions {
  uuid?: string;
  caller?: string;
  callerName?: string;
  destination?: string;
  context?: string;
  variables?: Record<string, string>;
  /** Headers to leave out (e.g. 'Unique-ID'). */
  omit?: string[];
  /** Extra headers, verbatim (they are URL-encoded by connectReply like all the others). */
  extra?: Header[];
}

/** The headers of a CHANNEL_DATA block as FreeSWITCH 1.10 sends them (the part the adapter reads). */
export function channelData(o: ChannelOptions = {}): Header[] {
  const uuid = o.uuid ?? randomUUID();
  const headers: Header[] = [
    ['Event-Name', 'CHANNEL_DATA'],
    ['Core-UUID', '6f7cde36-0000-4000-8000-000000000001'],
    ['Event-Calling-File', 'mod_event_socket.c'],
    ['Event-Calling-Function', 'parse_command'],
    ['Channel-State', 'CS_EXECUTE'],
    ['Channel-Call-State', 'RINGING'],
    ['Unique-ID', uuid],
    ['Call-Direction', 'inbound'],
    ['Answer-State', 'ringing'],
    ['Caller-Direction', 'inbound'],
    ['Caller-Caller-ID-Name', o.callerName ?? o.caller ?? '03055571600'],
    ['Caller-Caller-ID-Number', o.caller ?? '03055571600'],
    ['Caller-ANI', o.caller ?? '03055571600'],
    ['Caller-Destination-Number', o.destination ?? '491711234567890'],
    ['Caller-Unique-ID', uuid],
    ['Caller-Context', o.context ?? 'public'],
    ['Caller-Channel-Name', `sofia/internal/${o.caller ?? '03055571600'}@192.0.2.10`],
    ['Caller-Privacy-Hide-Number', 'false'],
    ['variable_domain_name', 'pbx.example'],
    ...Object.entries(o.variables ?? {}).map(([k, v]) => [`variable_${k}`, v] as Header),
    ...(o.extra ?? []),
  ];
  const omit = new Set(o.omit ?? []);
  return headers.filter(([name]) => !omit.has(name));
}

export function uuidOf(headers: readonly Header[]): string {
  return headers.find(([n]) => n === 'Unique-ID')?.[1] ?? '';
}

/** A text/event-plain event of the call (FreeSWITCH's framing, values URL-encoded). */
export function channelEvent(name: string, uuid: string, extra: Header[] = []): string {
  return encodeEvent([['Event-Name', name], ['Unique-ID', uuid], ['Caller-Unique-ID', uuid], ...extra]);
}

/**
 * The opening of a call: `connect` → channel data (or `reply`, raw), the connection's
 * `myevents json` subscription → +OK. Stops there: the adapter's `linger` is the next command.
 */
export async function handshake(peer: RawSwitch, channel: readonly Header[] | string): Promise<void> {
  const reply = typeof channel === 'string' ? channel : connectReply(channel);
  await peer.next('connect');
  peer.write(reply);
  for (;;) {
    const cmd = await peer.next();
    // An adapter under overload may look at a call before it takes it: FreeSWITCH answers a second
    // `connect` with the channel data again (mod_event_socket.c parse_command()).
    if (cmd.name === 'connect') peer.write(reply);
    else if (cmd.name === 'myevents') break;
  }
  peer.write(commandReply('+OK Events Enabled'));
}

/** `linger`, answered as FreeSWITCH answers it. */
export async function opening(peer: RawSwitch): Promise<void> {
  await peer.next('linger');
  peer.write(commandReply('+OK will linger'));
}

/**
 * A call up to its bridge: channel data from `channel`, the handshake, `linger`, then
 * the adapter's `sendmsg` (the bridge) acknowledged as async mode does. The peer is ready for events.
 */
export async function bridgedCall(port: number, channel: ChannelOptions): Promise<{ peer: RawSwitch; uuid: string }> {
  const headers = channelData(channel);
  const peer = await RawSwitch.connect(port);
  await handshake(peer, headers);
  await opening(peer);
  await peer.next('sendmsg');
  peer.write(commandReply('+OK'));
  return { peer, uuid: uuidOf(headers) };
}

/** The end of a call as FreeSWITCH reports it (answered-normal.txt), then goodbye on `exit`. */
export async function endCall(peer: RawSwitch, uuid: string, cause = 'NORMAL_CLEARING'): Promise<void> {
  peer.write(channelEvent('CHANNEL_HANGUP', uuid, [['Hangup-Cause', cause]]));
  peer.write(channelEvent('CHANNEL_HANGUP_COMPLETE', uuid, [['Hangup-Cause', cause]]));
  await peer.next('exit');
  peer.write(commandReply('+OK bye'));
  peer.end();
}

// ---------------------------------------------------------------------------------------------
// The adapter process from outside

/** All samples of /metrics as "name{labels}" → value. */
export async function metrics(statusPort: number): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${statusPort}/metrics`);
  const text = await res.text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

/** One sample, 0 when absent: metric(port, 'cti_esl_connection_errors_total{reason="reset"}'). */
export async function metric(statusPort: number, sample: string): Promise<number> {
  return (await metrics(statusPort)).get(sample) ?? 0;
}

/** Resident memory of a process, from /proc (Linux). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Open file descriptors of a process (sockets included), from /proc (Linux). */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Polls until `pred` holds; rejects with `what` after timeoutMs. */
export async function waitUntil(
  pred: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await pred()) return;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export { prng } from '@freeswitch-zammad-cti/sim/switch';
