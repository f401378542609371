/**
 * Phone numbers as Zammad wants them: E.164 digits without '+' (e.g. `493055571600`),
 * internal extensions unchanged, `anonymous` for a withheld caller.
 * Pure: no I/O, never throws.
 *
 * Build choice: `libphonenumber-js/max`. `/min` (~80 kB metadata) only checks lengths, so its
 * `isValid()` is `isPossible()`; `/max` (~145 kB) checks the digits too. This service runs on a
 * server where 65 kB more metadata, loaded once, costs nothing, and the digit check is what
 * tells an unprefixed number's two readings apart: `6912345678` is Frankfurt (069) with the
 * trunk prefix dropped, but `/min` would also accept it as +691 234 5678 (Micronesia).
 */
import { parsePhoneNumberFromString, type CountryCode, type PhoneNumber } from 'libphonenumber-js/max';
import metadata from 'libphonenumber-js/max/metadata';

export interface NumberRules {
  /** Country calling code, digits only (e.g. '49'); national forms are read as this country's. */
  defaultCountryCode: string;
  /** Numbers with at most this many digits (and no '+') are internal extensions and stay as they are (e.g. 6). */
  extensionMaxDigits: number;
}

export const WITHHELD = 'anonymous';

/** Inputs longer than this are not a phone number (a SIP URI's user part is far shorter). */
const MAX_RAW_CHARS = 2048;
/** A cleaned number (digits, maybe '+') longer than this is junk, not a number. */
const MAX_CLEAN_CHARS = 64;
/**
 * Longest result we hand out. E.164 allows 15 digits; the 5 extra digits leave room for the
 * fallback path, which keeps a number libphonenumber cannot validate (e.g. a national number
 * behind a carrier-selection prefix: '01013 030 55571600' -> '49101303055571600') instead of
 * dropping it. Anything longer is not a phone number.
 */
const MAX_RESULT_DIGITS = 20;
/** '+' followed by fewer digits than this is not a number ('+', '+1', '+12'). */
const MIN_INTERNATIONAL_DIGITS = 3;

/** Caller-id user parts that mean "no number" (compared lower-case). */
const WITHHELD_WORDS: ReadonlySet<string> = new Set([
  'anonymous',
  'unknown',
  'restricted',
  'private',
  'unavailable',
  'withheld',
]);

/**
 * Zammad wants E.164 digits without '+': '030 5557 1600', '0049305557 1600', '+49 30 55571600',
 * '493055571600' -> '493055571600' (with defaultCountryCode 49); extension '2003' stays '2003';
 * strips SIP decorations like 'sip:', '@host', ';params', spaces, dashes, parentheses; returns ''
 * for nothing usable. Never throws.
 *
 * How a cleaned number is read:
 * - no '+', at most `extensionMaxDigits` digits: an extension or short code, returned unchanged.
 * - '+…': international. libphonenumber splits off the calling code (and a stray national
 *   prefix, '+49 (0)30…'); if it cannot (unknown code, odd length) the digits are kept as they are.
 * - leading '0' (national prefix '0' or international prefix '00', the default country's rules):
 *   parsed as dialled in the default country. Valid -> its E.164 digits. Not valid but parseable
 *   -> libphonenumber's split anyway (national prefix stripped, country code prepended:
 *   '0800 123456' -> '49800123456'). Not parseable -> by hand: '00…' drops the '00', '0…' drops
 *   the '0' and prepends the country code.
 * - other digits: either E.164 without '+' ('41446681800', '12125550100', '493055571600') or a
 *   national number whose trunk prefix was dropped ('3055571600'). The international reading is
 *   tried first (a number starting with the default country code counts as international even
 *   when it does not validate), the national one second, each only if valid; if neither is, the
 *   digits stay as they are (nothing invented, nothing dropped).
 */
export function toE164Digits(raw: string, rules: NumberRules): string {
  if (typeof raw !== 'string' || raw.length > MAX_RAW_CHARS) return '';
  const key = `${rules.defaultCountryCode}|${rules.extensionMaxDigits}|${raw}`;
  const known = recent.get(key);
  if (known !== undefined) return known;
  const digits = readNumber(raw, rules);
  if (recent.size >= RECENT_MAX) recent.clear();
  recent.set(key, digits);
  return digits;
}

/**
 * The numbers read lately, by rules and text. Reading one with libphonenumber is a few hundred
 * parses of metadata patterns; a shop's destination numbers (its DIDs, its extensions) and many
 * of its callers come back call after call. Bounded: emptied when full.
 */
const RECENT_MAX = 2000;
const recent = new Map<string, string>();

function readNumber(raw: string, rules: NumberRules): string {
  try {
    const cleaned = cleanNumber(raw);
    if (cleaned === null) return '';
    const result = normalise(cleaned, rules);
    return result.length <= MAX_RESULT_DIGITS && /^[0-9]+$/.test(result) ? result : '';
  } catch {
    return '';
  }
}

/**
 * Withheld caller id -> 'anonymous': privacy flag set (Caller-Privacy-Hide-Number true), empty,
 * 'anonymous', 'unknown', 'restricted', 'private', 'unavailable', 'withheld', '0000000000' (any
 * all-zero; FreeSWITCH's own default caller id number is 0000000000), case-insensitive, also as
 * SIP URIs like 'sip:anonymous@anonymous.invalid'. Otherwise the normalised number.
 * A caller id with nothing usable in it (e.g. 'abc') is treated like an empty one, so the
 * result is always digits or 'anonymous', never ''.
 */
export function callerNumber(raw: string | undefined, hidden: boolean, rules: NumberRules): string {
  if (hidden) return WITHHELD;
  if (typeof raw !== 'string' || raw.length > MAX_RAW_CHARS) return WITHHELD;
  const user = stripSeparators(userPart(raw)).toLowerCase();
  if (user === '' || WITHHELD_WORDS.has(user) || /^\+?0+$/.test(user)) return WITHHELD;
  const digits = toE164Digits(raw, rules);
  return digits === '' ? WITHHELD : digits;
}

/**
 * A caller id from Zammad's dial reply goes into a SIP/ESL header: accept only digits with an
 * optional leading '+', nothing else (no spaces, letters, newlines, '%', ';'). Return the digits
 * with the '+' kept if it was there, or null.
 *
 * Lengths: at least 3 digits. With '+' at most 15: that is E.164's maximum and a '+' number is
 * international by definition. Without '+' at most 19: Zammad's admin types the caller id freely
 * and may enter it the way the trunk wants it dialled, i.e. an international prefix before a
 * full E.164 number (up to 4 digits, '0011' in Australia; '00' here) - 4 + 15 = 19.
 * Only strings: a JSON number could already have lost digits.
 */
export function safeCallerId(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  // `$` without the m flag matches only at the very end, so a trailing '\n' fails.
  if (/^\+[0-9]{3,15}$/.test(value)) return value;
  if (/^[0-9]{3,19}$/.test(value)) return value;
  return null;
}

// ---------------------------------------------------------------------------------------------

interface CleanNumber {
  plus: boolean;
  digits: string;
}

/**
 * The user part of a SIP/tel URI or of a name-addr ('"Bob" <sip:+4930…@host;user=phone>'),
 * percent-decoded; a plain number comes back as it is (trimmed).
 */
function userPart(raw: string): string {
  let s = raw.trim();
  const lt = s.indexOf('<');
  if (lt >= 0) {
    const gt = s.indexOf('>', lt + 1);
    s = s.slice(lt + 1, gt >= 0 ? gt : undefined).trim();
  }
  s = s.replace(/^(?:sips?|tel):/i, '');
  const end = s.search(/[@;?]/);
  if (end >= 0) s = s.slice(0, end);
  if (s.includes('%')) {
    try {
      s = decodeURIComponent(s);
    } catch {
      // malformed escape: keep it, the digit check below rejects it
    }
  }
  return s.trim();
}

/** Visual separators people and switches put into numbers. */
function stripSeparators(s: string): string {
  return s.replace(/[\s\-\u2010-\u2015.()/]/g, '');
}

function cleanNumber(raw: string): CleanNumber | null {
  if (typeof raw !== 'string' || raw.length > MAX_RAW_CHARS) return null;
  let s = userPart(raw);
  // '+49 (0)30 …' / '0049 (0)30 …': the '(0)' is the national prefix, not part of the number.
  if (/^(?:\+|00)/.test(s)) s = s.replace(/\(\s*0\s*\)/g, '');
  s = stripSeparators(s);
  if (s.length === 0 || s.length > MAX_CLEAN_CHARS) return null;
  const m = /^(\+?)([0-9]+)$/.exec(s);
  if (m === null) return null;
  const plus = m[1] === '+';
  const digits = m[2] ?? '';
  // '+0…' is never E.164: someone put a '+' in front of a dialled prefix; read it as dialled.
  if (plus && digits.startsWith('0')) return { plus: false, digits };
  return { plus, digits };
}

function normalise({ plus, digits }: CleanNumber, rules: NumberRules): string {
  if (plus) {
    if (digits.length < MIN_INTERNATIONAL_DIGITS) return '';
    return joined(parse(`+${digits}`)) ?? digits;
  }
  if (digits.length <= rules.extensionMaxDigits) return digits;

  const cc = callingCode(rules);
  if (digits.startsWith('0')) {
    const split = joined(parse(digits, cc));
    if (split !== undefined) return split;
    // libphonenumber could not even split it (too long, unknown calling code after '00').
    if (digits.startsWith('00')) return digits.slice(2);
    return cc + digits.slice(1);
  }

  const international = parse(`+${digits}`);
  if (international?.isValid()) return joined(international) ?? digits;
  // Starts with our own country code: already international, even if of unusual length. Reading
  // it nationally would prepend the code a second time ('4912345' -> '494912345').
  if (cc !== '' && digits.startsWith(cc)) return digits;
  const national = parse(digits, cc);
  if (national?.isValid()) return joined(national) ?? digits;
  return digits;
}

function callingCode(rules: NumberRules): string {
  return String(rules.defaultCountryCode ?? '')
    .replace(/[^0-9]/g, '')
    .replace(/^0+/, '');
}

/** The main country of a calling code ('1' -> US, '7' -> RU, '44' -> GB), if it has one. */
function mainCountry(cc: string): CountryCode | undefined {
  return metadata.country_calling_codes[cc]?.[0];
}

/** Parses `text` as a whole (no extraction from surrounding text); national forms per `cc`. */
function parse(text: string, cc?: string): PhoneNumber | undefined {
  try {
    if (cc === undefined) return parsePhoneNumberFromString(text, { extract: false });
    const country = mainCountry(cc);
    // With a country, libphonenumber also knows its international prefix ('00' for DE);
    // a calling code without a country (e.g. 800) only gets the national-prefix rules.
    return country !== undefined
      ? parsePhoneNumberFromString(text, { defaultCountry: country, extract: false })
      : cc !== ''
        ? parsePhoneNumberFromString(text, { defaultCallingCode: cc, extract: false })
        : undefined;
  } catch {
    return undefined;
  }
}

function joined(n: PhoneNumber | undefined): string | undefined {
  if (n === undefined) return undefined;
  const digits = `${n.countryCallingCode}${n.nationalNumber}`;
  return /^[0-9]+$/.test(digits) ? digits : undefined;
}
