/**
 * Wire helpers for the FreeSWITCH outbound event-socket protocol, as spoken by
 * FreeSWITCH 1.10.12 (`socket <host>:<port> async full`).
 *
 * Sources of truth (see test/fixtures/esl/README.md):
 *  - the real wire captures (transcripts) – they always win;
 *  - mod_event_socket.c (parse_command, read_packet, listener_run, send_disconnect),
 *    switch_event.c (switch_event_serialize, switch_event_serialize_json),
 *    switch_utils.c (switch_url_encode_opt) of FreeSWITCH 1.10.
 *
 * Everything here is pure (no sockets) so the benchmark can reuse it.
 */

/** One header of an event, in order. Duplicates are allowed (FreeSWITCH events can carry them). */
export type Header = readonly [name: string, value: string];

// ---------------------------------------------------------------------------
// URL encoding exactly as FreeSWITCH's switch_url_encode()
// ---------------------------------------------------------------------------

/**
 * SWITCH_URL_UNSAFE from switch_utils.h: "\r\n #%&+:;<=>?@[\\]^`{|}\"".
 * Everything else in 0x20..0x7e is left alone, so ',' '/' '(' ')' '!' '*' '\'' '$' '~' '-' '.' '_'
 * are NOT encoded (transcripts: "sip_allow: INVITE,%20ACK", "sofia/lo-in/2001%40127.0.0.1%3A5091").
 */
const URL_UNSAFE = new Set<number>([...'\r\n #%&+:;<=>?@[\\]^`{|}"'].map((c) => c.charCodeAt(0)));
const HEX = '0123456789ABCDEF';
const HEX_UPPER_CODES = new Set<number>([...HEX].map((c) => c.charCodeAt(0)));

/** Fast path: true when no byte of `s` needs encoding (pure printable ASCII without unsafe chars). */
function isUrlSafe(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || URL_UNSAFE.has(c)) return false;
  }
  return true;
}

/**
 * switch_url_encode(): switch_url_encode_opt(url, buf, len, double_encode = SWITCH_FALSE).
 *
 * Works on the UTF-8 bytes (C `char`): every byte < 0x20 or > 0x7e (incl. all UTF-8 multibyte
 * bytes, because `char` is signed) and every SWITCH_URL_UNSAFE byte becomes %XX (upper-case hex).
 *
 * Quirk reproduced on purpose: because double_encode is FALSE, a '%' that is followed by two
 * UPPER-CASE hex digits ("%41", "%2B") is considered "already encoded" and is copied verbatim.
 * So a channel value "100%41" goes over the wire as "100%41" and decodes to "100A" – FreeSWITCH
 * itself does not round-trip such values. A '%' not followed by two upper-case hex digits
 * ("50%", "%zz", "%2b") is encoded as %25 and round-trips.
 */
export function fsUrlEncode(value: string): string {
  if (isUrlSafe(value)) return value;
  const bytes = Buffer.from(value, 'utf8');
  let out = '';
  const last = bytes.length - 1; // end_of_p(): index of the last byte
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    let ok = false;
    if (b === 0x25 /* % */ && last - i > 1) {
      if (HEX_UPPER_CODES.has(bytes[i + 1] as number) && HEX_UPPER_CODES.has(bytes[i + 2] as number)) ok = true;
    }
    if (!ok && (b < 0x20 || b > 0x7e || URL_UNSAFE.has(b))) {
      out += `%${HEX[(b >> 4) & 0x0f]}${HEX[b & 0x0f]}`;
    } else {
      out += String.fromCharCode(b);
    }
  }
  return out;
}

/**
 * switch_url_decode(): every '%' followed by (at least) two chars that sscanf("%2x") accepts
 * is replaced by that byte; anything else is copied. Result bytes are read as UTF-8.
 * (Tolerant, unlike decodeURIComponent which throws on a stray '%'.)
 */
export function fsUrlDecode(value: string): string {
  if (!value.includes('%')) return value;
  const src = Buffer.from(value, 'utf8');
  const out: number[] = [];
  for (let i = 0; i < src.length; i++) {
    const b = src[i] as number;
    if (b === 0x25 && src.length - i > 2) {
      const h = parseHex2(src[i + 1] as number, src[i + 2] as number);
      if (h !== null) {
        out.push(h);
        i += 2;
        continue;
      }
    }
    out.push(b);
  }
  return Buffer.from(out).toString('utf8');
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  return -1;
}

/** sscanf("%2x") semantics: one or two hex digits. */
function parseHex2(a: number, b: number): number | null {
  const x = hexVal(a);
  if (x < 0) return null;
  const y = hexVal(b);
  return y < 0 ? x : x * 16 + y;
}

// ---------------------------------------------------------------------------
// Event serialisation (switch_event_serialize / switch_event_serialize_json)
// ---------------------------------------------------------------------------

/** "Name: value\n" with the value URL-encoded, empty value -> "_undef_" (switch_event_serialize). */
export function plainHeaderLine(name: string, value: string): string {
  const enc = fsUrlEncode(value);
  return `${name}: ${enc === '' ? '_undef_' : enc}\n`;
}

/** Serialise an event as text/event-plain body: header lines, then "\n" or "Content-Length: n\n\n<body>". */
export function serializePlain(headers: readonly Header[], body?: string): string {
  let s = '';
  for (const [n, v] of headers) s += plainHeaderLine(n, v);
  return s + plainTail(body);
}

/** The end of a plain-serialised event. */
export function plainTail(body?: string): string {
  if (body !== undefined && body.length > 0) {
    return `Content-Length: ${Buffer.byteLength(body, 'utf8')}\n\n${body}`;
  }
  return '\n';
}

/**
 * One JSON member as switch_event_serialize_json writes it (cJSON, unformatted): values are not
 * URL-encoded; "ARRAY::a|:b" array headers become JSON arrays (variable_DP_MATCH in
 * answered-normal-json.txt). Duplicated header names are kept (cJSON allows them:
 * CHANNEL_HANGUP_COMPLETE carries "Hangup-Cause" twice).
 */
export function jsonMember(name: string, value: string): string {
  if (value.startsWith('ARRAY::')) {
    const parts = value.slice(7).split('|:');
    return `${JSON.stringify(name)}:${JSON.stringify(parts)}`;
  }
  return `${JSON.stringify(name)}:${JSON.stringify(value)}`;
}

export function serializeJson(headers: readonly Header[], body?: string): string {
  const members: string[] = [];
  for (const [n, v] of headers) members.push(jsonMember(n, v));
  if (body !== undefined) members.push(`${JSON.stringify('_body')}:${JSON.stringify(body)}`);
  return `{${members.join(',')}}`;
}

function xmlEscape(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** Approximation of switch_event_xmlize()+switch_xml_toxml() (not covered by any transcript). */
export function serializeXml(headers: readonly Header[], body?: string): string {
  let s = '<event>\n  <headers>\n';
  for (const [n, v] of headers) s += `    <${n}>${xmlEscape(fsUrlEncode(v))}</${n}>\n`;
  s += '  </headers>\n';
  if (body !== undefined && body.length > 0) {
    s +=
      '  <Content-Length>' +
      Buffer.byteLength(body, 'utf8') +
      '</Content-Length>\n  <body>' +
      xmlEscape(body) +
      '</body>\n';
  }
  return `${s}</event>`;
}

export type EventFormat = 'plain' | 'json' | 'xml';

/**
 * Frame around a serialised event, exactly as read_packet() writes it:
 *   "Content-Length: N\nContent-Type: text/event-<fmt>\n\n" + N bytes   (Content-Length FIRST).
 */
export function eventFrame(serialized: string, format: EventFormat): string {
  return (
    'Content-Length: ' +
    Buffer.byteLength(serialized, 'utf8') +
    '\nContent-Type: text/event-' +
    format +
    '\n\n' +
    serialized
  );
}

/** Convenience: encode an event from an ordered header list into a complete frame. */
export function encodeEvent(headers: readonly Header[], format: EventFormat = 'plain', body?: string): string {
  const ser =
    format === 'plain'
      ? serializePlain(headers, body)
      : format === 'json'
        ? serializeJson(headers, body)
        : serializeXml(headers, body);
  return eventFrame(ser, format);
}

// ---------------------------------------------------------------------------
// Replies and notices
// ---------------------------------------------------------------------------

/** "Content-Type: command/reply\nReply-Text: <text>\n\n" (not URL-encoded). */
export function commandReply(text: string): string {
  return `Content-Type: command/reply\nReply-Text: ${text}\n\n`;
}

/** bgapi reply: reply string "~Reply-Text: +OK Job-UUID: %s\nJob-UUID: %s\n\n" (mod_event_socket.c). */
export function bgapiReply(jobUuid: string): string {
  return `Content-Type: command/reply\nReply-Text: +OK Job-UUID: ${jobUuid}\nJob-UUID: ${jobUuid}\n\n`;
}

/** "Content-Type: api/response\nContent-Length: N\n\n<body>"; an empty body becomes "-ERR no reply\n" (api_exec). */
export function apiResponse(body: string): string {
  const b = body.length === 0 ? '-ERR no reply\n' : body;
  return `Content-Type: api/response\nContent-Length: ${Buffer.byteLength(b, 'utf8')}\n\n${b}`;
}

/** The 67-byte body of the disconnect notice sent by listener_run() on exit. */
export const GOODBYE = 'Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n';

/** send_disconnect(): with a session the notice names it; Content-Length is the message length. */
export function disconnectNotice(sessionUuid: string | null, message: string = GOODBYE): string {
  const len = Buffer.byteLength(message, 'utf8');
  if (sessionUuid) {
    return (
      'Content-Type: text/disconnect-notice\nControlled-Session-UUID: ' +
      sessionUuid +
      '\nContent-Disposition: disconnect\nContent-Length: ' +
      len +
      '\n\n' +
      message
    );
  }
  return `Content-Type: text/disconnect-notice\nContent-Length: ${len}\n\n${message}`;
}

/** The linger notice (read_packet(), LFLAG_LINGER): Channel-Name is NOT URL-encoded; Linger-Time -1 = forever. */
export function lingerNotice(sessionUuid: string, channelName: string, lingerTime: number): string {
  return (
    'Content-Type: text/disconnect-notice\nControlled-Session-UUID: ' +
    sessionUuid +
    '\nContent-Disposition: linger\nChannel-Name: ' +
    channelName +
    '\nLinger-Time: ' +
    lingerTime +
    '\nContent-Length: 0\n\n'
  );
}

/**
 * The reply to "connect": a serialised CHANNEL_DATA event whose last headers are the reply headers,
 * no Content-Length, no body (README obs. 1). "+OK\n" is URL-encoded to "%2BOK%0A".
 */
export function connectReply(channelData: readonly Header[], mode: 'async' | 'static' = 'async', full = true): string {
  return serializePlain([
    ...channelData,
    ['Content-Type', 'command/reply'],
    ['Reply-Text', '+OK\n'],
    ['Socket-Mode', mode],
    ['Control', full ? 'full' : 'single-channel'],
  ]);
}

// ---------------------------------------------------------------------------
// Parser for what the APP sends (commands) – mirrors read_packet()
// ---------------------------------------------------------------------------

export interface ParsedCommand {
  /** The raw packet text (header block incl. the terminating blank line, plus body if any). */
  raw: string;
  /** First line of the packet ("sendmsg <uuid>", "api uptime", ...), CR stripped. */
  line: string;
  /** First word of the first line, lower-cased ("sendmsg", "api", "myevents", ...). */
  name: string;
  /** Rest of the first line after the first space ('' if none). */
  args: string;
  /** Headers after the first line; first occurrence wins (switch_event_get_header), names as sent. */
  headers: Record<string, string>;
  /** Same, in order, with duplicates. */
  headerList: Header[];
  /** Body read because of a content-length header. */
  body?: string;
}

/** Case-insensitive header lookup (FreeSWITCH's switch_event_get_header is case-insensitive). */
export function getHeader(cmd: Pick<ParsedCommand, 'headerList'>, name: string): string | undefined {
  const n = name.toLowerCase();
  for (const [k, v] of cmd.headerList) if (k.toLowerCase() === n) return v;
  return undefined;
}

/**
 * Incremental parser for the app->FreeSWITCH byte stream, following read_packet():
 *  - CR/LF bytes at the very start of a packet are skipped;
 *  - a packet ends at the second consecutive '\n' ('\r' does not break the run);
 *  - the first line is the command; further "name: value" lines become headers (value after ':'
 *    with leading spaces removed; lines without ':' are ignored);
 *  - a "content-length" header makes it read exactly that many bytes of body right after the block.
 */
export class CommandParser {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer | string): ParsedCommand[] {
    const b = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    this.buf = this.buf.length === 0 ? b : Buffer.concat([this.buf, b]);
    const out: ParsedCommand[] = [];
    for (;;) {
      const cmd = this.next();
      if (!cmd) break;
      out.push(cmd);
    }
    return out;
  }

  /** Bytes received but not yet forming a complete packet. */
  get pending(): number {
    return this.buf.length;
  }

  private next(): ParsedCommand | null {
    let start = 0;
    while (start < this.buf.length && (this.buf[start] === 0x0d || this.buf[start] === 0x0a)) start++;
    if (start > 0) this.buf = this.buf.subarray(start);
    let crcount = 0;
    let end = -1;
    for (let i = 0; i < this.buf.length; i++) {
      const c = this.buf[i];
      if (c === 0x0a) {
        crcount++;
        if (crcount === 2) {
          end = i + 1;
          break;
        }
      } else if (c !== 0x0d) {
        crcount = 0;
      }
    }
    if (end < 0) return null;
    const block = this.buf.subarray(0, end).toString('utf8');
    const rawLines = block.split('\n');
    const first = (rawLines[0] ?? '').replace(/\r.*$/, '');
    const headerList: Header[] = [];
    let clen = 0;
    for (let i = 1; i < rawLines.length; i++) {
      const line = (rawLines[i] ?? '').replace(/\r.*$/, '');
      if (line === '') continue;
      const colon = line.indexOf(':');
      if (colon < 0) continue;
      const name = line.slice(0, colon);
      const value = line.slice(colon + 1).replace(/^ +/, '');
      headerList.push([name, value]);
      if (name.toLowerCase() === 'content-length') clen = parseInt(value, 10) || 0;
    }
    let consumed = end;
    let body: string | undefined;
    if (clen > 0) {
      if (this.buf.length < end + clen) return null; // wait for the body
      body = this.buf.subarray(end, end + clen).toString('utf8');
      consumed = end + clen;
    }
    const raw = this.buf.subarray(0, consumed).toString('utf8');
    this.buf = this.buf.subarray(consumed);
    const sp = first.indexOf(' ');
    const headers: Record<string, string> = {};
    for (const [k, v] of headerList) if (!(k in headers)) headers[k] = v;
    const cmd: ParsedCommand = {
      raw,
      line: first,
      name: (sp < 0 ? first : first.slice(0, sp)).toLowerCase(),
      args: sp < 0 ? '' : first.slice(sp + 1),
      headers,
      headerList,
    };
    if (body !== undefined) cmd.body = body;
    return cmd;
  }
}

/** Build a command packet the way an app would send it (used by tests and the benchmark). */
export function encodeCommand(line: string, headers: readonly Header[] = [], body?: string): string {
  let s = `${line}\n`;
  for (const [k, v] of headers) s += `${k}: ${v}\n`;
  if (body !== undefined) {
    s += `Content-Length: ${Buffer.byteLength(body, 'utf8')}\n\n${body}`;
    return s;
  }
  return `${s}\n`;
}

// ---------------------------------------------------------------------------
// Parser for what FreeSWITCH sends (frames) – demultiplex by Content-Type
// ---------------------------------------------------------------------------

export interface FsFrame {
  /** Outer header block, values as on the wire (the connect reply's CHANNEL_DATA values are still URL-encoded). */
  headers: Record<string, string>;
  headerList: Header[];
  /** Body (Content-Length bytes), '' if none. */
  body: string;
}

/** Incremental parser of the FreeSWITCH->app stream (header block up to "\n\n", then Content-Length bytes). */
export class FrameParser {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer | string): FsFrame[] {
    const b = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    this.buf = this.buf.length === 0 ? b : Buffer.concat([this.buf, b]);
    const out: FsFrame[] = [];
    for (;;) {
      const idx = this.buf.indexOf('\n\n');
      if (idx < 0) break;
      const head = this.buf.subarray(0, idx).toString('utf8');
      const headerList: Header[] = [];
      const headers: Record<string, string> = {};
      for (const line of head.split('\n')) {
        const c = line.indexOf(': ');
        if (c < 0) continue;
        const k = line.slice(0, c);
        const v = line.slice(c + 2);
        headerList.push([k, v]);
        if (!(k in headers)) headers[k] = v;
      }
      const clen = headers['Content-Length'] !== undefined ? parseInt(headers['Content-Length'], 10) : 0;
      if (this.buf.length < idx + 2 + clen) break;
      const body = this.buf.subarray(idx + 2, idx + 2 + clen).toString('utf8');
      this.buf = this.buf.subarray(idx + 2 + clen);
      out.push({ headers, headerList, body });
    }
    return out;
  }
}

/** Parse a text/event-plain body into ordered, URL-decoded headers (and the event body, if any). */
export function parsePlainEvent(body: string): { headers: Header[]; map: Record<string, string>; body?: string } {
  const idx = body.indexOf('\n\n');
  const head = idx < 0 ? body : body.slice(0, idx);
  const headers: Header[] = [];
  const map: Record<string, string> = {};
  for (const line of head.split('\n')) {
    const c = line.indexOf(': ');
    if (c < 0) continue;
    const k = line.slice(0, c);
    const v = fsUrlDecode(line.slice(c + 2));
    headers.push([k, v]);
    if (!(k in map)) map[k] = v;
  }
  const out: { headers: Header[]; map: Record<string, string>; body?: string } = { headers, map };
  if (idx >= 0 && map['Content-Length'] !== undefined) out.body = body.slice(idx + 2);
  return out;
}
