/**
 * The pieces a channel event is built from: caller-profile header blocks
 * (switch_caller_profile_event_set_data order), cached header blocks, and the fired event whose
 * plain/JSON/XML serialisation is built once, lazily.
 */
import { plainHeaderLine, plainTail, type Header } from './esl-wire.js';

export interface Profile {
  direction: string;
  logicalDirection: string;
  username?: string;
  /** Absent on a leg an inbound-ESL `originate` created (no dialplan, no caller id name given). */
  dialplan?: string;
  callerIdName: string;
  callerIdNumber: string;
  origCallerIdName?: string;
  origCallerIdNumber: string;
  calleeIdName?: string;
  calleeIdNumber?: string;
  networkAddr?: string;
  ani: string;
  destinationNumber: string;
  uniqueId: string;
  source: string;
  context: string;
  channelName: string;
  withProfileIndex: boolean;
  /** Profile-Index when withProfileIndex (default 1; each transfer clones the profile: 2, 3, ...). */
  profileIndex?: number;
  /** Set on the profile a transfer created: its transfer_source, and the number it was transferred from. */
  transferSource?: string;
  rdnis?: string;
  created: number;
  answered: number;
  progress: number;
  progressMedia: number;
  hangup: number;
  bridged: number;
  hideName: boolean;
  hideNumber: boolean;
}

export function profileHeaders(prefix: string, p: Profile): Header[] {
  const h: Header[] = [];
  const add = (n: string, v: string): void => {
    h.push([`${prefix}-${n}`, v]);
  };
  add('Direction', p.direction);
  add('Logical-Direction', p.logicalDirection);
  if (p.username !== undefined) add('Username', p.username);
  if (p.dialplan !== undefined) add('Dialplan', p.dialplan);
  add('Caller-ID-Name', p.callerIdName);
  add('Caller-ID-Number', p.callerIdNumber);
  if (p.origCallerIdName !== undefined) add('Orig-Caller-ID-Name', p.origCallerIdName);
  add('Orig-Caller-ID-Number', p.origCallerIdNumber);
  if (p.calleeIdName !== undefined) add('Callee-ID-Name', p.calleeIdName);
  if (p.calleeIdNumber !== undefined) add('Callee-ID-Number', p.calleeIdNumber);
  if (p.networkAddr !== undefined) add('Network-Addr', p.networkAddr);
  add('ANI', p.ani);
  add('Destination-Number', p.destinationNumber);
  add('Unique-ID', p.uniqueId);
  add('Source', p.source);
  if (p.transferSource !== undefined) add('Transfer-Source', p.transferSource);
  add('Context', p.context);
  if (p.rdnis !== undefined) add('RDNIS', p.rdnis);
  add('Channel-Name', p.channelName);
  if (p.withProfileIndex) add('Profile-Index', String(p.profileIndex ?? 1));
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

/** A header block with its plain serialisation cached (immutable once built). */
export interface Block {
  readonly list: readonly Header[];
  readonly plain: string;
}
export function block(list: Header[]): Block {
  let plain = '';
  for (const [n, v] of list) plain += plainHeaderLine(n, v);
  return { list, plain };
}
export const EMPTY_BLOCK: Block = { list: [], plain: '' };

/** An event fired on the switch; serialisation is lazy and cached. */
export interface FiredEvent {
  readonly name: string;
  /** Unique-ID header (for the myevents filter), null if none. */
  readonly uniqueId: string | null;
  readonly application?: string;
  readonly hangupCause?: string;
  readonly body?: string;
  headers(): readonly Header[];
  /** text/event-plain body. */
  plain(): string;
  /** Case-insensitive header lookup (for `filter`). */
  get(name: string): string | undefined;
}

export class BlocksEvent implements FiredEvent {
  private plainCache: string | null = null;
  private listCache: Header[] | null = null;
  constructor(
    readonly name: string,
    readonly uniqueId: string | null,
    private readonly blocks: readonly Block[],
    readonly body?: string,
    readonly application?: string,
    readonly hangupCause?: string,
  ) {}
  plain(): string {
    if (this.plainCache === null) {
      let s = '';
      for (const b of this.blocks) s += b.plain;
      this.plainCache = s + plainTail(this.body);
    }
    return this.plainCache;
  }
  headers(): readonly Header[] {
    if (this.listCache === null) {
      const l: Header[] = [];
      for (const b of this.blocks) for (const h of b.list) l.push(h);
      this.listCache = l;
    }
    return this.listCache;
  }
  get(name: string): string | undefined {
    const n = name.toLowerCase();
    for (const [k, v] of this.headers()) if (k.toLowerCase() === n) return v;
    return undefined;
  }
}
