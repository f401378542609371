/**
 * Overload, decided: (state, sample, now) → state. No I/O, no clock of its own. The shell
 * (shedding.ts) samples the process and applies the level.
 *
 * Levels, each one including the one below it:
 *  0 normal;
 *  1 no decision wait: a ringing caller is routed at once, without Zammad's decision (its newCall
 *    is still stored and posted);
 *  2 refusing: the event-socket port is closed, so FreeSWITCH's `socket` fails at once and the
 *    gate's routing runs (docs/reference/freeswitch.md, "Calls routed by the dialplan", 11).
 * A level is entered on the first sample above one of its high marks and left one step at a time,
 * only after every input has stayed below the level's low marks for its hold time: no flapping of
 * the port while a burst lasts.
 */

export type Level = 0 | 1 | 2;

export interface LoadSample {
  /** How late the event loop ran a timer, ms: every command and every accept waits that long. */
  delayMs: number;
  /** Calls accepted whose routing command (hand-back, bridge, reject) is still due, not waiting for Zammad. */
  owed: number;
  /** newCalls posted that Zammad has not answered yet: past what it can answer in time, waiting is pointless. */
  unanswered: number;
}

export interface Marks {
  /** Enter at or above. */
  high: number;
  /** Leave only below. */
  low: number;
}

export interface OverloadLimits {
  /** Level 1: loop delay and unanswered newCalls. */
  delay1: Marks;
  unanswered1: Marks;
  /** Level 2: loop delay and owed routing commands. */
  delay2: Marks;
  owed2: Marks;
  /** How long every input must stay below a level's low marks before the level is left, ms. */
  hold1Ms: number;
  hold2Ms: number;
}

/**
 * The limits from the configuration. `newCallTimeoutMs` is the bound a caller waits for Zammad: a
 * loop a quarter of it late eats that budget (level 1), half of it late cannot keep up with
 * calls at all (level 2). `maxConnections` newCalls are in flight at a time: at 40 ms per answer
 * Zammad decides maxConnections × timeout / 40 ms calls within the timeout, no more.
 */
export function overloadLimits(newCallTimeoutMs: number, maxConnections: number): OverloadLimits {
  const t = newCallTimeoutMs;
  const unanswered = Math.max(20, Math.round((maxConnections * t) / 40));
  return {
    delay1: { high: Math.max(100, t / 4), low: Math.max(50, t / 10) },
    delay2: { high: Math.max(200, t / 2), low: Math.max(100, t / 5) },
    unanswered1: { high: unanswered, low: Math.round(unanswered / 2) },
    // About a second of the adapter's own work (bench/README.md: several hundred calls a second).
    owed2: { high: 500, low: 100 },
    hold1Ms: 3000,
    hold2Ms: 1000,
  };
}

export interface OverloadState {
  level: Level;
  /** Since when every input is below the current level's low marks; undefined while one is not. */
  calmSince?: number;
}

export const NORMAL: OverloadState = { level: 0 };

export interface OverloadStep {
  state: OverloadState;
  /** Set when the level changed: from, to, and which input made it. */
  change?: { from: Level; to: Level; why: string };
}

/** The highest level a sample asks for, and the input that asks for it. */
function wanted(s: LoadSample, l: OverloadLimits): { level: Level; why: string } {
  if (s.delayMs >= l.delay2.high) return { level: 2, why: `event loop ${Math.round(s.delayMs)} ms late` };
  if (s.owed >= l.owed2.high) return { level: 2, why: `${s.owed} calls accepted and not yet routed` };
  if (s.delayMs >= l.delay1.high) return { level: 1, why: `event loop ${Math.round(s.delayMs)} ms late` };
  if (s.unanswered >= l.unanswered1.high)
    return { level: 1, why: `${s.unanswered} newCalls not yet answered by Zammad` };
  return { level: 0, why: '' };
}

function calm(level: Level, s: LoadSample, l: OverloadLimits): boolean {
  if (level === 2) return s.delayMs < l.delay2.low && s.owed < l.owed2.low;
  return s.delayMs < l.delay1.low && s.unanswered < l.unanswered1.low;
}

export function overloadStep(state: OverloadState, sample: LoadSample, now: number, l: OverloadLimits): OverloadStep {
  const want = wanted(sample, l);
  if (want.level > state.level)
    return { state: { level: want.level }, change: { from: state.level, to: want.level, why: want.why } };
  if (state.level === 0) return { state };
  if (!calm(state.level, sample, l)) return { state: { level: state.level } };
  const since = state.calmSince ?? now;
  const hold = state.level === 2 ? l.hold2Ms : l.hold1Ms;
  if (now - since < hold) return { state: { level: state.level, calmSince: since } };
  const to = (state.level - 1) as Level;
  return { state: { level: to }, change: { from: state.level, to, why: `calm for ${now - since} ms` } };
}
