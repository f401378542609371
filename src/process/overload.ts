/**
 * Overload, decided: (state, sample, now) → state. No I/O, no clock of its own. The shell
 * (shedding.ts) samples the process and applies the level.
 *
 * Levels, each one including the one below it:
 *  0 normal;
 *  1 no decision wait: a ringing caller is routed at once, without Zammad's decision (its newCall
 *    is still stored and posted);
 *  2 shedding: only a share of the new calls (`admit`) is taken; the others are handed back to the
 *    dialplan at once, unreported (switch/shed.ts), so the gate's routing runs for them as if the
 *    adapter were down. The share is steered each sample, down while the loop is saturated and
 *    behind, up while it has room, so that what is taken is what the process can do in time.
 * A level is entered on the first sample above one of its high marks and left one step at a time,
 * only after every input has stayed below the level's low marks for its hold time (level 2: with
 * every call admitted again): no flapping while a burst lasts.
 */

export type Level = 0 | 1 | 2;

export interface LoadSample {
  /** How late the event loop ran a timer, ms: every command and every accept waits that long. */
  delayMs: number;
  /** Calls accepted whose routing command (hand-back, bridge, reject) is still due, not waiting for Zammad. */
  owed: number;
  /** newCalls posted that Zammad has not answered yet: past what it can answer in time, waiting is pointless. */
  unanswered: number;
  /** Share of the sample's time the event loop was busy (performance.eventLoopUtilization), 0–1. */
  busy: number;
  /** Calls routed during the sample, and its length (ms): with `owed`, how far behind the calls are. */
  routed: number;
  sampleMs: number;
  /**
   * Connections the kernel holds for the port, not yet accepted (switch/backlog.ts): callers whose
   * `socket` waits for its first command. Undefined where the kernel does not say.
   */
  queued?: number;
  /** Connections accepted during the sample: with `queued`, how long a connection waits to be accepted. */
  accepted: number;
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
  /** Level 2: loop delay and owed routing commands, or a saturated loop (busy) that is behind (lag, ms). */
  delay2: Marks;
  owed2: Marks;
  busy2: Marks;
  lag2: Marks;
  /**
   * Connections waiting in the kernel: below `low` they are no queue, however long they wait; `high`
   * is the least that counts towards entering level 2; `flood` enters it at once.
   */
  queued2: Marks & { flood: number };
  /** Level 2's share of new calls taken: where it starts, its floor, its cut (×) and its step (+) per sample. */
  admit: { start: number; floor: number; cut: number; step: number };
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
    // A loop busy 90 % of the time whose calls wait 100 ms for their routing command (besides
    // Zammad) is past what it can take: calls are queueing, first in the process, then in the
    // kernel's accept queue, where the adapter cannot see them (a full queue drops the switch's
    // SYNs: 1 s and 3 s of silence for the caller, bench/README.md, overload).
    busy2: { high: 0.9, low: 0.8 },
    lag2: { high: 100, low: 50 },
    // Half of Node's listen backlog (511) is a few hundred ms from dropped handshakes. Below it, how
    // long a connection waits to be accepted counts, against the lag marks — once more are waiting
    // than a switch's steady calls in progress would leave (a busy loop with 64 calls going keeps
    // some of them in the queue all the time: bench/README.md, overload).
    queued2: { high: 128, low: 32, flood: 256 },
    admit: { start: 0.5, floor: 0.02, cut: 0.75, step: 0.1 },
    hold1Ms: 3000,
    hold2Ms: 1000,
  };
}

export interface OverloadState {
  level: Level;
  /** Since when every input is below the current level's low marks; undefined while one is not. */
  calmSince?: number;
  /** The share of new calls taken (1 below level 2). */
  admit: number;
  /** Samples in a row, up to this one, saturated and behind (STRAIN_SAMPLES). */
  strained?: number;
}

export const NORMAL: OverloadState = { level: 0, admit: 1 };

/** How long a call waits for its routing command, besides Zammad, ms (Little's law: owed / routed a ms). */
export function lagMs(s: LoadSample): number {
  if (s.owed === 0) return 0;
  return (s.owed * s.sampleMs) / Math.max(1, s.routed);
}

/**
 * How long a connection waits in the kernel's queue to be accepted, ms (queued / accepted a ms);
 * 0 while fewer than `floor` wait.
 */
export function queueWaitMs(s: LoadSample, floor = 1): number {
  const queued = s.queued ?? 0;
  if (queued === 0 || queued < floor) return 0;
  return (queued * s.sampleMs) / Math.max(1, s.accepted);
}

export interface OverloadStep {
  state: OverloadState;
  /** Set when the level changed: from, to, and which input made it. */
  change?: { from: Level; to: Level; why: string };
}

/**
 * Samples in a row that are saturated and behind before level 2: a burst the loop is still working
 * through (a few hundred calls at once) is not yet overload.
 */
const STRAIN_SAMPLES = 2;

/** Fewer calls than this behind are not a queue, however long they wait (a peer that is slow to answer). */
const FEW_CALLS = 32;

const strainedNow = (s: LoadSample, l: OverloadLimits) =>
  (s.busy >= l.busy2.high && s.owed >= FEW_CALLS && lagMs(s) >= l.lag2.high) ||
  queueWaitMs(s, l.queued2.high) >= l.lag2.high;

/** The highest level a sample asks for, and the input that asks for it. */
function wanted(s: LoadSample, l: OverloadLimits, strained: number): { level: Level; why: string } {
  if (s.delayMs >= l.delay2.high) return { level: 2, why: `event loop ${Math.round(s.delayMs)} ms late` };
  if (s.owed >= l.owed2.high) return { level: 2, why: `${s.owed} calls accepted and not yet routed` };
  const queued = s.queued ?? 0;
  const wait = queueWaitMs(s, l.queued2.high);
  if (queued >= l.queued2.flood || (strained >= STRAIN_SAMPLES && wait >= l.lag2.high))
    return { level: 2, why: `${queued} connections waiting to be accepted (${Math.round(wait)} ms)` };
  const lag = lagMs(s);
  if (strained >= STRAIN_SAMPLES)
    return {
      level: 2,
      why: `event loop busy ${Math.round(s.busy * 100)} %, calls ${Math.round(lag)} ms behind`,
    };
  if (s.delayMs >= l.delay1.high) return { level: 1, why: `event loop ${Math.round(s.delayMs)} ms late` };
  if (s.unanswered >= l.unanswered1.high)
    return { level: 1, why: `${s.unanswered} newCalls not yet answered by Zammad` };
  return { level: 0, why: '' };
}

function calm(level: Level, s: LoadSample, l: OverloadLimits): boolean {
  if (level === 2)
    return (
      s.delayMs < l.delay2.low &&
      s.owed < l.owed2.low &&
      lagMs(s) < l.lag2.low &&
      queueWaitMs(s, l.queued2.low) < l.lag2.low
    );
  return s.delayMs < l.delay1.low && s.unanswered < l.unanswered1.low;
}

/**
 * Level 2's share of new calls, for the next sample: cut while the calls are behind (the loop late,
 * calls waiting in the process or in the kernel) and the loop is busy; raised while nothing waits
 * — where the kernel's queue is known, that is the measure, whatever the loop's busy share (a loop
 * busy all the time that leaves no connection waiting is keeping up); where it is not known, only
 * while the loop has room.
 */
function steer(admit: number, s: LoadSample, l: OverloadLimits): number {
  const a = l.admit;
  const behind =
    s.delayMs >= l.delay2.low ||
    s.owed >= l.owed2.high ||
    lagMs(s) >= l.lag2.low ||
    queueWaitMs(s, l.queued2.low) >= l.lag2.high;
  if (behind && s.busy >= l.busy2.low) return Math.max(a.floor, admit * a.cut);
  const room = !behind && (s.queued !== undefined || s.busy < l.busy2.high);
  // Rounded: 0.5 + 5 × 0.1 is 0.9999999999999999 in floating point, and level 2 is left only at 1.
  if (room) return Math.min(1, Math.round((admit + a.step) * 1000) / 1000);
  return admit;
}

export function overloadStep(state: OverloadState, sample: LoadSample, now: number, l: OverloadLimits): OverloadStep {
  const strained = strainedNow(sample, l) ? (state.strained ?? 0) + 1 : 0;
  const strain = strained > 0 ? { strained } : {};
  const want = wanted(sample, l, strained);
  if (want.level > state.level) {
    const admit = want.level === 2 ? l.admit.start : 1;
    return {
      state: { level: want.level, admit, ...strain },
      change: { from: state.level, to: want.level, why: want.why },
    };
  }
  if (state.level === 0) return { state: { level: 0, admit: 1, ...strain } };
  const admit = state.level === 2 ? steer(state.admit, sample, l) : 1;
  if (admit < 1 || !calm(state.level, sample, l)) return { state: { level: state.level, admit, ...strain } };
  const since = state.calmSince ?? now;
  const hold = state.level === 2 ? l.hold2Ms : l.hold1Ms;
  if (now - since < hold) return { state: { level: state.level, calmSince: since, admit, ...strain } };
  const to = (state.level - 1) as Level;
  return {
    state: { level: to, admit: 1, ...strain },
    change: { from: state.level, to, why: `calm for ${now - since} ms` },
  };
}
