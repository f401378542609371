/**
 * Small helpers of the switch simulator: timestamps as FreeSWITCH writes them, tokens, a seeded PRNG, switch_true().
 */

export function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}
/** "2026-11-25 04:38:51" (the capture host ran on UTC; we always use UTC). */
export function fmtStamp(ms: number): string {
  const d = new Date(ms);
  return (
    d.getUTCFullYear() +
    '-' +
    pad2(d.getUTCMonth() + 1) +
    '-' +
    pad2(d.getUTCDate()) +
    ' ' +
    pad2(d.getUTCHours()) +
    ':' +
    pad2(d.getUTCMinutes()) +
    ':' +
    pad2(d.getUTCSeconds())
  );
}
export function nowMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}
export function randToken(len: number, rnd: () => number = Math.random): string {
  const a = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let s = '';
  for (let i = 0; i < len; i++) s += a[Math.floor(rnd() * a.length)];
  return s;
}
/** mulberry32: a small seeded PRNG, so that a failing run can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
export function isTrue(v: string | undefined): boolean {
  if (v === undefined) return false;
  const t = v.trim().toLowerCase();
  return (
    t === 'true' ||
    t === 'yes' ||
    t === 'on' ||
    t === 'enabled' ||
    t === 'active' ||
    t === 'allow' ||
    (/^\d+$/.test(t) && parseInt(t, 10) > 0)
  );
}
