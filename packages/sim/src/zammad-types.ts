/**
 * The Zammad double's public types: its settings and options, what it records of each request
 * (ReceivedPost), its caller log entries (CtiLogEntry, Zammad's Cti::Log), and the faults it can
 * be told to inject. Re-exported by zammad.ts.
 */

export interface OutboundRoute {
  /** routing_table dest: matched as /^dest$/ with `*` standing for one or more characters */
  dest: string;
  callerId: string;
}

export interface ZammadSettings {
  /** valid token in POST /api/v1/cti/:token */
  token: string;
  /** Setting cti_integration; false → 422 "Feature is disabled, …" (default true) */
  enabled: boolean;
  /** cti_config with inbound and outbound present; false → 422 "Feature not configured, …" (default true) */
  configured: boolean;
  /** inbound.block_caller_ids: inbound newCall from exactly equal → reject/busy */
  blockedNumbers: string[];
  /** outbound.routing_table */
  outboundRoutes: OutboundRoute[];
  /** outbound.default_caller_id ('' or undefined = none) */
  defaultCallerId: string | undefined;
  /** key of the caller id in dial replies: real Zammad code uses 'caller_id', the public text 'callerId' */
  dialKey: 'caller_id' | 'callerId';
  /**
   * How the error format (JSON or HTML page) of *exception* replies (422 unknown event / missing
   * call id, 500s, 404) is chosen:
   *  - 'strict' (default, per docs/reference/zammad.md): JSON only when Accept names application/json;
   *  - 'rails': Rails' own negotiation: JSON also for a lone `Accept: *∕*` (what fetch/undici send
   *    by default), HTML for no Accept or a browser-like one.
   * Replies the controller renders itself (200, 401, disabled/not configured/direction 422) are JSON always.
   */
  acceptNegotiation: 'strict' | 'rails';
}

export interface ZammadDoubleOptions extends Partial<Omit<ZammadSettings, 'token'>> {
  token: string;
  host?: string;
  /** default 0 (any free port) */
  port?: number;
  /** clock in ms since the epoch (default Date.now); inject one to test start/end times without sleeping */
  now?: () => number;
}

export type Params = Record<string, string | string[]>;

export interface ReceivedPost {
  /** 1-based arrival number */
  seq: number;
  /** clock time when the request body was complete */
  at: number;
  method: string;
  /** path and query as requested */
  path: string;
  /** token from the path ('' if the path is not /api/v1/cti/:token) */
  token: string;
  contentType: string;
  accept: string | undefined;
  /** parsed body (form or JSON) merged over the query; `user[]` repeated → array under `user` */
  params: Params;
  raw: string;
  /** convenience: params.event / params.callId (or call_id) when they are strings */
  event: string | undefined;
  callId: string | undefined;
  /** the fault applied to this request, if any */
  fault: Fault['kind'] | undefined;
  /** HTTP status sent; 0 while unanswered, or if never answered (hang, reset, stop) */
  status: number;
  /** body sent (for hugeBody / neverEndingBody: the JSON part, without the padding) */
  reply: string;
  repliedAt: number | undefined;
}

export interface CtiLogEntry {
  /** creation order, 1-based */
  id: number;
  /** call id as stored (cut at 250 chars) */
  callId: string;
  direction: 'in' | 'out';
  /** as stored, cut at 100; for an outbound call that got a dial reply: the caller id Zammad chose */
  from: string | null;
  to: string | null;
  /** user(s) of the newCall, joined with ", " (null when none was sent) */
  users: string | null;
  /** Zammad's from_comment / to_comment as far as the double knows them (no customer lookup) */
  fromComment: string | null;
  toComment: string | null;
  queue: string | null;
  state: 'newCall' | 'answer' | 'hangup';
  done: boolean;
  /** Zammad's `comment`: the cause of the latest applied event (each event overwrites it) */
  cause?: string;
  /** user sent with the latest applied answer */
  answeredBy?: string;
  /** answeringNumber of the latest applied answer/hangup (not stored by Zammad; kept for tests) */
  answeringNumber?: string;
  initializedAt: number;
  startAt?: number;
  endAt?: number;
  /** seconds, computed as Zammad does (to_i differences) */
  durationWaitingTime?: number;
  durationTalkingTime?: number;
  /** hangups applied (> 1 means a repeated hangup reached Zammad) */
  hangups: number;
  /** answers applied */
  answers: number;
  /** answers that arrived after the hangup and were ignored */
  ignoredAnswers: number;
}

export type Fault =
  | { kind: 'none' }
  /** reply with this status (e.g. 503 from a proxy, an HTML 500 page); process=true: Zammad stored the event first */
  | {
      kind: 'status';
      status: number;
      body?: string;
      contentType?: string;
      headers?: Record<string, string>;
      process?: boolean;
    }
  /** slow Zammad: the event is processed (stored) at once unless process='last', the reply is sent after ms */
  | { kind: 'delay'; ms: number; process?: 'first' | 'last' }
  /** read the request, never answer (until stop / refuseConnections); process=true: stored anyway */
  | { kind: 'hang'; process?: boolean }
  /** read the request, then reset the TCP connection; process=true: stored before the connection died */
  | { kind: 'reset'; process?: boolean }
  /** 200 with the normal JSON reply padded with whitespace to `bytes` (Content-Length set); processed */
  | { kind: 'hugeBody'; bytes: number }
  /** 200 headers and the start of the reply, then one byte every intervalMs (default 50) forever; processed */
  | { kind: 'neverEndingBody'; intervalMs?: number }
  /** 302 to location; not processed */
  | { kind: 'redirect'; location: string };

export interface FaultOptions {
  /** apply to the next N matching requests (default: until cleared) */
  times?: number;
  /** only requests whose `event` param is one of these */
  events?: string[];
}
