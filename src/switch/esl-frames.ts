/**
 * Reading what FreeSWITCH writes on an event socket, for esl-connection.ts (which hands the
 * result to modesl's connection in place of modesl's own Parser; see there and bench/README.md).
 *
 * Same results as modesl's Parser, at a fraction of the cost:
 *  - framing: a header block up to the first blank line, then Content-Length bytes; chunks are
 *    kept in a list and joined once per message (modesl joins the whole buffer on every read);
 *  - header blocks: "Name: value" lines, values URL-decoded as FreeSWITCH decodes them (urlDecode:
 *    unlike modesl's decodeURIComponent it does not throw on a raw '%'), Content-Length as a
 *    number, the last of duplicate names wins;
 *  - text/event-json bodies are not copied into header objects: a header is looked up in the
 *    body text (cJSON's compact form, as FreeSWITCH writes it) and JSON.parse runs only when that
 *    lookup cannot give JSON.parse's exact answer (escapes, arrays, other spacing, many lookups);
 *  - text/event-plain bodies are read as modesl reads them.
 */

/** The part of modesl's Event the adapter and modesl's connection use. */
export interface EventLike {
  getHeader(name: string): string | null;
  getBody(): string;
}

const LFLF = Buffer.from('\n\n');

/**
 * A header value as FreeSWITCH's own switch_url_decode() reads it: every '%' with two hex digits
 * is that byte, anything else stays as it is; the bytes are UTF-8. decodeURIComponent (modesl's
 * choice) gives the same for every well-formed value, but throws on a raw '%' or an escape that
 * is not UTF-8 ("100%", "%zz", "M%FCller") — and FreeSWITCH sends such values: its
 * switch_url_encode() leaves a '%' followed by two upper-case hex digits as it is
 * (switch_utils.h, switch_needs_url_encode()), so a caller whose SIP display name is "M%FCller"
 * arrives as "M%FCller". Throwing there would drop that caller's call: not a reason to close a
 * connection (test/e2e/esl-defects.test.ts, 4a).
 */
export function urlDecode(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    const src = Buffer.from(raw, 'utf8');
    const out = Buffer.allocUnsafe(src.length);
    let n = 0;
    for (let i = 0; i < src.length; i++) {
      const b = src[i] as number;
      if (b === 0x25 && i + 2 < src.length) {
        const hi = hexDigit(src[i + 1] as number);
        const lo = hexDigit(src[i + 2] as number);
        if (hi >= 0 && lo >= 0) {
          out[n++] = hi * 16 + lo;
          i += 2;
          continue;
        }
      }
      out[n++] = b;
    }
    return out.toString('utf8', 0, n);
  }
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * A header block ("Name: value" lines) as modesl's _parseHeaderText reads it — the value after the
 * first ': ' URL-decoded (by urlDecode, which never throws), Content-Length as a number, the last
 * of duplicate names winning — but kept as its text and looked up on demand: a channel's
 * CHANNEL_DATA (~170 headers) stays with the call as one string instead of an object of ~170
 * properties and ~140 decoded strings.
 */
export class HeaderText {
  constructor(readonly text: string) {}

  get(name: string): string | number | undefined {
    const t = this.text;
    // The last line that starts with `name` followed by ': ' or the end of the line. Searched
    // forwards: V8's indexOf is several times faster than its lastIndexOf.
    let line = keyEnds(t, 0, name) ? 0 : -1;
    const needle = `\n${name}`;
    for (let at = t.indexOf(needle); at >= 0; at = t.indexOf(needle, at + 1))
      if (keyEnds(t, at + 1, name)) line = at + 1;
    if (line < 0) return undefined;
    const end = line + name.length;
    let value = '';
    if (end < t.length && t.charCodeAt(end) !== 0x0a) {
      const nl = t.indexOf('\n', end + 2);
      const raw = t.slice(end + 2, nl < 0 ? t.length : nl);
      value = raw.includes('%') ? urlDecode(raw) : own(raw);
    }
    return name === 'Content-Length' ? parseInt(value, 10) : value;
  }
}

/**
 * A string of its own. V8 makes a slice of 13 or more characters a view into the string it was
 * cut from: a call's facts (its 36-character Unique-ID…) would keep the whole CHANNEL_DATA text
 * (~7 KB) or an event's (~9 KB) alive for as long as the call lasts. Prefixing a character makes a
 * new string of its own (flattened when sliced), the slice after it a view of that one only: an
 * order of magnitude cheaper than a copy through a Buffer, which every value returned pays.
 */
function own(slice: string): string {
  return slice.length < 13 ? slice : ` ${slice}`.slice(1);
}

/** `name` starts the line at `at` as its key: followed by ': ', or by the end of the line (a line without ': '). */
function keyEnds(t: string, at: number, name: string): boolean {
  if (!t.startsWith(name, at)) return false;
  const end = at + name.length;
  return (
    end === t.length || t.charCodeAt(end) === 0x0a || (t.charCodeAt(end) === 0x3a && t.charCodeAt(end + 1) === 0x20)
  );
}

/**
 * Incremental framing of the FreeSWITCH → app byte stream. `push` calls `onMessage` for every
 * complete message, in order; it throws (and is then not to be used again) if onMessage throws.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private size = 0;
  /** The last buffered byte of a header block is '\n' (the blank line may start in the next read). */
  private endsWithNewline = false;
  private head: HeaderText | undefined;
  private need = 0;

  /** Bytes buffered towards the next message. */
  get buffered(): number {
    return this.size;
  }

  push(chunk: Buffer, onMessage: (headers: HeaderText, body: string | undefined) => void): void {
    let data = chunk;
    while (data.length > 0) {
      if (this.head === undefined) {
        let end: number;
        if (this.endsWithNewline && data[0] === 0x0a) end = 1;
        else {
          const at = data.indexOf(LFLF);
          end = at < 0 ? -1 : at + 2;
        }
        if (end < 0) {
          this.keep(data);
          this.endsWithNewline = data[data.length - 1] === 0x0a;
          return;
        }
        const block = this.take(data.subarray(0, end));
        data = data.subarray(end);
        this.endsWithNewline = false;
        const headers = new HeaderText(block.toString('utf8', 0, block.length - 2));
        const length = headers.get('Content-Length');
        if (typeof length === 'number' && length > 0) {
          this.head = headers;
          this.need = length;
          continue;
        }
        onMessage(headers, undefined);
      } else {
        if (this.size + data.length < this.need) {
          this.keep(data);
          return;
        }
        const cut = this.need - this.size;
        const body = this.take(data.subarray(0, cut)).toString('utf8');
        data = data.subarray(cut);
        const headers = this.head;
        this.head = undefined;
        onMessage(headers, body);
      }
    }
  }

  private keep(data: Buffer): void {
    this.chunks.push(data);
    this.size += data.length;
  }

  /** The buffered bytes followed by `last`, as one buffer; the buffer is then empty. */
  private take(last: Buffer): Buffer {
    const out = this.chunks.length === 0 ? last : Buffer.concat([...this.chunks, last], this.size + last.length);
    this.chunks = [];
    this.size = 0;
    return out;
  }
}

/** An event or reply whose headers are a header block (command/reply, api/response, notices, plain events). */
export class BlockEvent implements EventLike {
  constructor(
    private readonly headers: HeaderText,
    private readonly body: string,
  ) {}
  getHeader(name: string): string | null {
    const v = this.headers.get(name);
    return v === undefined ? null : (v as string);
  }
  getBody(): string {
    return this.body;
  }
}

const QUOTE = 0x22;
const COLON = 0x3a;
const COMMA = 0x2c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const RBRACKET = 0x5d;

/**
 * The string value of key `name` in JSON text, exactly as JSON.parse would give it (the last of
 * duplicate keys); null when there is no such key; undefined when only JSON.parse can tell
 * (a value with escapes, a value that is not a string, spacing other than cJSON's compact form).
 * In JSON every '"' inside a string is escaped, so `"name"` followed by ':' and preceded by '{'
 * or ',' can only be a key, and `"name"` followed by ',', '}' or ']' only a string value.
 */
export function jsonStringValue(text: string, name: string): string | null | undefined {
  if (name.includes('"') || name.includes('\\')) return undefined;
  const needle = `"${name}"`;
  let key = -1;
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) {
    const seen = occurrence(text, at, needle.length);
    if (seen === CANNOT_TELL) return undefined;
    if (seen === IS_KEY) key = at;
  }
  return key < 0 ? null : valueAfter(text, key + needle.length + 1);
}

const IS_KEY = 1;
const IS_VALUE = 0;
const CANNOT_TELL = -1;

/** What the `"name"` at `at` is: a key (after '{' or ','), a string value, or something only JSON.parse can tell. */
function occurrence(text: string, at: number, length: number): number {
  const after = text.charCodeAt(at + length);
  if (after === COLON) {
    const before = text.charCodeAt(at - 1);
    return before === LBRACE || before === COMMA ? IS_KEY : CANNOT_TELL;
  }
  return after === COMMA || after === RBRACE || after === RBRACKET ? IS_VALUE : CANNOT_TELL;
}

/** The string value starting at `start` (its opening quote); undefined when it is no string or has escapes. */
function valueAfter(text: string, start: number): string | undefined {
  if (text.charCodeAt(start) !== QUOTE) return undefined;
  const end = text.indexOf('"', start + 1);
  if (end < 0) return undefined;
  const value = text.slice(start + 1, end);
  return value.includes('\\') ? undefined : own(value);
}

/**
 * The names looked up in JSON events so far (a call asks for the same dozen or so: Event-Name,
 * Unique-ID, Application, Hangup-Cause…), and one pattern matching any of them. An event asked
 * for a second name is read for all of them in one pass: one scan of its ~8 KB instead of one per
 * name. The answers are jsonStringValue()'s, name by name: the pass sees every occurrence of
 * every name (the next search starts one character after a match, and two names cannot match at
 * the same place: a name holds no quote).
 */
const BATCH_NAMES_MAX = 32;
const batchNames: string[] = [];
let batchPattern: RegExp | undefined;

function learn(name: string): void {
  if (batchNames.length >= BATCH_NAMES_MAX || !BATCH_NAME.test(name) || batchNames.includes(name)) return;
  batchNames.push(name);
  batchPattern = patternOf(batchNames);
}

const BATCH_NAME = /^[\w.-]+$/;
const patternOf = (names: readonly string[]) =>
  new RegExp(`"(${names.map((n) => n.replace(/[.-]/g, '\\$&')).join('|')})"`, 'g');

/** jsonStringValue() of every learned name, into `memo` (names only JSON.parse can answer are left out). */
function readLearned(
  text: string,
  memo: Map<string, string | null>,
  names: readonly string[] = batchNames,
  re: RegExp | undefined = batchPattern,
): void {
  if (re === undefined) return;
  const keys = new Map<string, number>();
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const name = m[1] as string;
    re.lastIndex = m.index + 1;
    if (keys.get(name) === CANNOT_TELL) continue;
    const seen = occurrence(text, m.index, m[0].length);
    if (seen === CANNOT_TELL) keys.set(name, CANNOT_TELL);
    else if (seen === IS_KEY) keys.set(name, m.index + m[0].length + 1);
  }
  for (const name of names) {
    if (memo.has(name)) continue;
    const start = keys.get(name);
    if (start === undefined) memo.set(name, null);
    else if (start !== CANNOT_TELL) {
      const v = valueAfter(text, start);
      if (v !== undefined) memo.set(name, v);
    }
  }
}

/**
 * jsonStringValue() of each of `names` (letters, digits, _ . -), read in one pass; those only
 * JSON.parse can tell are left out.
 */
export function jsonStringValues(text: string, names: readonly string[]): Map<string, string | null> {
  const usable = names.filter((n) => BATCH_NAME.test(n));
  const memo = new Map<string, string | null>();
  if (usable.length > 0) readLearned(text, memo, usable, patternOf(usable));
  return memo;
}

/** After this many look-ups an event is parsed once and read from the object. */
const SCANS_BEFORE_PARSE = 16;

/**
 * A text/event-json event. modesl parses the body into an object (Content-Length as a number,
 * `_body` as the body, not a header); here the same answers come from the text until a parse is
 * cheaper or needed. A body that is not JSON throws at that parse, inside the socket's read.
 */
export class JsonEvent implements EventLike {
  private data: Record<string, unknown> | undefined;
  private scans = 0;
  private readonly memo = new Map<string, string | null>();

  constructor(private readonly text: string) {}

  getHeader(name: string): string | null {
    if (name === '_body') return null;
    if (this.data === undefined && name !== 'Content-Length') {
      const known = this.memo.get(name);
      if (known !== undefined) return known;
      learn(name);
      if (++this.scans === 2) {
        readLearned(this.text, this.memo);
        const v = this.memo.get(name);
        if (v !== undefined) return v;
      }
      if (this.scans <= SCANS_BEFORE_PARSE) {
        const v = jsonStringValue(this.text, name);
        if (v !== undefined) {
          this.memo.set(name, v);
          return v;
        }
      }
    }
    const data = this.parsed();
    if (!Object.hasOwn(data, name)) return null;
    const v = data[name];
    return (name === 'Content-Length' ? parseInt(String(v), 10) : v) as string;
  }

  getBody(): string {
    const body = this.parsed()['_body'];
    return typeof body === 'string' && body !== '' ? body : '';
  }

  private parsed(): Record<string, unknown> {
    if (this.data === undefined) {
      const data: unknown = JSON.parse(this.text);
      this.data = data !== null && typeof data === 'object' ? (data as Record<string, unknown>) : {};
    }
    return this.data;
  }
}

/** modesl's _parsePlainBody: a header block, then (with Content-Length) the event's own body. */
export function plainEvent(text: string): EventLike {
  const end = text.indexOf('\n\n');
  const headers = new HeaderText(text.substring(0, end));
  let body = '';
  const length = headers.get('Content-Length');
  if (typeof length === 'number' && length > 0)
    body = Buffer.from(text)
      .subarray(end + 2, end + 2 + length)
      .toString('utf8');
  return new BlockEvent(headers, body);
}
