/**
 * Bridge dial strings as switch_ivr_originate parses them: {globals}[leg vars]a,b|c — groups, legs, the number each leg
 * dials.
 */

export interface DialLeg {
  /** The leg dial string without [..] vars. */
  dial: string;
  vars: Record<string, string>;
}
export interface DialGroup {
  legs: DialLeg[];
}

export function splitTop(s: string, sep: string): string[] {
  // split on sep outside {} [] <> and quotes
  const out: string[] = [];
  let depth = 0;
  let quote = '';
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (quote) {
      if (c === quote) quote = '';
      cur += c;
      continue;
    }
    if (c === "'" || c === '"') {
      quote = c;
      cur += c;
      continue;
    }
    if (c === '\\' && i + 1 < s.length && s[i + 1] === sep) {
      cur += sep;
      i++;
      continue;
    }
    if (c === '{' || c === '[' || c === '<') depth++;
    if (c === '}' || c === ']' || c === '>') depth = Math.max(0, depth - 1);
    if (c === sep && depth === 0) {
      out.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  out.push(cur);
  return out;
}

export function parseVarList(inner: string, into: Record<string, string>): void {
  for (const kv of splitTop(inner, ',')) {
    const eq = kv.indexOf('=');
    if (eq < 0) continue;
    let v = kv.slice(eq + 1).trim();
    if ((v.startsWith("'") && v.endsWith("'")) || (v.startsWith('"') && v.endsWith('"'))) v = v.slice(1, -1);
    into[kv.slice(0, eq).trim()] = v;
  }
}

/** Parse a bridge dial string: {global}[leg]a,[leg]b|c ... */
export function parseDialString(data: string): { globals: Record<string, string>; groups: DialGroup[] } {
  let s = data.trim();
  const globals: Record<string, string> = {};
  while (s.startsWith('{') || s.startsWith('<')) {
    const close = s.startsWith('{') ? '}' : '>';
    const end = s.indexOf(close);
    if (end < 0) break;
    parseVarList(s.slice(1, end), globals);
    s = s.slice(end + 1).trim();
  }
  const groups: DialGroup[] = [];
  for (const g of splitTop(s.replace(/:_:/g, ','), '|')) {
    const legs: DialLeg[] = [];
    for (let l of splitTop(g, ',')) {
      l = l.trim();
      if (l === '') continue;
      const vars: Record<string, string> = {};
      while (l.startsWith('[') || l.startsWith('{')) {
        const close = l.startsWith('[') ? ']' : '}';
        const end = l.indexOf(close);
        if (end < 0) break;
        parseVarList(l.slice(1, end), vars);
        l = l.slice(end + 1).trim();
      }
      legs.push({ dial: l, vars });
    }
    if (legs.length > 0) groups.push({ legs });
  }
  return { globals, groups };
}

/** The number a leg dials: user/2003@dom -> 2003, sofia/gateway/x/491701@h -> 491701, loopback/2000/targets -> 2000. */
export function targetKey(dial: string): string {
  const parts = dial.split('/');
  const tech = (parts[0] ?? '').toLowerCase();
  if (tech === 'loopback') return parts[1] ?? '';
  const last = parts[parts.length - 1] ?? '';
  const at = last.indexOf('@');
  return at < 0 ? last : last.slice(0, at);
}
