/** The simulated FreeSWITCH instance: opens one outbound-socket connection per placed call (placeCall). */
import * as net from 'node:net';
import { randomUUID } from 'node:crypto';
import { plainHeaderLine, type Header } from './esl-wire.js';
import type { CallScript, SwitchCall } from './call-script.js';
import type { CallerChannel } from './caller-channel.js';
import { type Block, block, EMPTY_BLOCK, type FiredEvent } from './event-blocks.js';
import { Listener } from './outbound-connection.js';
import { fmtStamp, nowMicros } from './util.js';

export interface Target {
  host: string;
  port: number;
}

/** A simulated FreeSWITCH instance. Calls placed through the same instance share events (like one real switch). */
export class FakeSwitch {
  readonly coreUuid: string = randomUUID();
  readonly hostname: string;
  readonly ipv4: string;
  readonly ipv6: string;
  private readonly startedAt = Date.now();
  private seq = 1000;
  private sessionIds = 0;
  /** @internal */ readonly listeners = new Set<Listener>();
  /** @internal */ readonly channels = new Map<string, CallerChannel>();
  /** @internal Live B-legs (originated by a bridge or a queue) by uuid, for `api uuid_getvar`. */
  readonly legs = new Map<string, { vars: Record<string, string> }>();
  private staticTop: Block;

  constructor(opts: { hostname?: string; ipv4?: string; ipv6?: string } = {}) {
    this.hostname = opts.hostname ?? 'vm';
    this.ipv4 = opts.ipv4 ?? '192.0.2.2';
    this.ipv6 = opts.ipv6 ?? 'fd00::2';
    this.staticTop = block([
      ['Core-UUID', this.coreUuid],
      ['FreeSWITCH-Hostname', this.hostname],
      ['FreeSWITCH-Switchname', this.hostname],
      ['FreeSWITCH-IPv4', this.ipv4],
      ['FreeSWITCH-IPv6', this.ipv6],
    ]);
  }

  /** @internal */ nextSessionId(): number {
    return ++this.sessionIds;
  }

  private dateSec = -1;
  private dateBlock: Block = EMPTY_BLOCK;

  /** @internal The common top of every event (Event-Name ... Event-Sequence). Date strings are cached per second. */
  topBlock(name: string, calling: readonly [string, string, string] | undefined): Block {
    const now = Date.now();
    const sec = Math.floor(now / 1000);
    if (sec !== this.dateSec) {
      this.dateSec = sec;
      this.dateBlock = block([
        ['Event-Date-Local', fmtStamp(now)],
        ['Event-Date-GMT', new Date(now).toUTCString()],
      ]);
    }
    const c = calling ?? ['switch_event.c', 'switch_event_fire_detailed', '0'];
    const tail: Header[] = [
      ['Event-Date-Timestamp', String(nowMicros())],
      ['Event-Calling-File', c[0]],
      ['Event-Calling-Function', c[1]],
      ['Event-Calling-Line-Number', c[2]],
      ['Event-Sequence', String(++this.seq)],
    ];
    const tailPlain = block(tail).plain;
    return {
      list: [['Event-Name', name], ...this.staticTop.list, ...this.dateBlock.list, ...tail],
      plain: plainHeaderLine('Event-Name', name) + this.staticTop.plain + this.dateBlock.plain + tailPlain,
    };
  }

  /** @internal Deliver an event to every listener (each applies its own subscription/myevents filter). */
  fire(ev: FiredEvent): void {
    for (const l of this.listeners) l.onEvent(ev);
  }

  uptimeSeconds(): number {
    return Math.floor((Date.now() - this.startedAt) / 1000);
  }

  /** Connect to the adapter exactly as FreeSWITCH's `socket` application does and run the script. */
  placeCall(target: Target, script: CallScript): Promise<SwitchCall> {
    return new Promise<SwitchCall>((resolve, reject) => {
      const socket = net.connect({ host: target.host, port: target.port });
      const onError = (err: Error): void => reject(err);
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        const listener = new Listener(this, socket, script);
        resolve(listener.handle);
      });
    });
  }
}

/** The process-wide default switch used by placeCall(). */
export const defaultSwitch = new FakeSwitch();

/** Place a call on the default switch (see FakeSwitch.placeCall). */
export function placeCall(target: Target, script: CallScript): Promise<SwitchCall> {
  return defaultSwitch.placeCall(target, script);
}
