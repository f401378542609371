/**
 * The shell around overload.ts: samples the process every 100 ms (how late that timer fires is the
 * event loop's delay, performance.eventLoopUtilization() how busy it was; the call counts come from
 * the sessions), steps the levels and applies them — level 1 ends every decision wait and starts
 * none, level 2 also takes only its share of new calls (admit()) and the others are shed. One log
 * line per level change, not one per call.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from './log.js';
import type { CallLoad } from '../call/session.js';
import type { Metrics } from '../status/metrics.js';
import { NORMAL, overloadStep, type Level, type OverloadLimits, type OverloadState } from './overload.js';

const SAMPLE_MS = 100;
const REMIND_MS = 10_000;

const WHAT: Record<Level, string> = {
  0: 'normal',
  1: "not waiting for Zammad's decision",
  2: 'shedding new calls',
};

export class Shedding implements CallLoad {
  private state: OverloadState = NORMAL;
  private readonly waits = new Set<() => void>();
  private pending = 0;
  private unansweredCount = 0;
  private delayMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private last = 0;
  /** When the current level was entered (Date.now()), for the log line that leaves it. */
  private since = Date.now();
  private sheddingSince: number | undefined;
  private utilization = performance.eventLoopUtilization();
  private busy = 0;
  private routedCount = 0;
  private acceptedCount = 0;
  /** Level 2: new calls owed a place, by the admitted share (admit()). */
  private credit = 0;
  /** Calls shed since the level was entered, for the line that leaves it. */
  private shedCount = 0;

  private queuedCount: number | undefined;

  /** `queued`: the connections the kernel holds for the port (listener.ts), when it is known. */
  constructor(
    private readonly limits: OverloadLimits,
    private readonly queued: () => number | undefined,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.last = performance.now();
    this.utilization = performance.eventLoopUtilization();
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  get level(): Level {
    return this.state.level;
  }

  get shedding(): boolean {
    return this.state.level >= 1;
  }

  /** The `load` check of /readyz: not ready while shedding, so that a balancer or monitor sees it. */
  readiness(): { ok: boolean; detail: string } {
    const share = this.state.level === 2 ? `, taking ${Math.round(this.state.admit * 100)} % of new calls` : '';
    const counts =
      `event loop ${Math.round(this.delayMs)} ms late and ${Math.round(this.busy * 100)} % busy, ` +
      (this.queuedCount !== undefined ? `${this.queuedCount} connections waiting to be accepted, ` : '') +
      `${this.pending} calls not yet routed, ${this.unansweredCount} newCalls not yet answered`;
    return {
      ok: this.state.level < 2,
      detail: `${WHAT[this.state.level]} (level ${this.state.level}${share}): ${counts}`,
    };
  }

  /**
   * Whether a new connection is taken as a call: always below level 2; at level 2 its admitted
   * share, spread evenly over the connections (one in four at 25 %), not in bursts.
   */
  admit(): boolean {
    this.acceptedCount++;
    if (this.state.level < 2) return true;
    this.credit = Math.min(1, this.credit + this.state.admit);
    if (this.credit < 1) return false;
    this.credit -= 1;
    return true;
  }

  /** A call was handed back to the dialplan unreported (switch/shed.ts). */
  shed(): void {
    this.shedCount++;
    this.metrics.callsShed.inc();
  }

  accepted(): void {
    this.pending++;
  }

  routed(): void {
    this.pending--;
    this.routedCount++;
  }

  waiting(release: () => void): () => void {
    this.waits.add(release);
    return () => void this.waits.delete(release);
  }

  unanswered(): () => void {
    this.unansweredCount++;
    return () => void this.unansweredCount--;
  }

  /** Refreshes the gauges (on every scrape). */
  refresh(): void {
    this.metrics.overloadLevel.set(this.state.level);
    this.metrics.loopDelay.set(this.delayMs / 1000);
    this.metrics.callsPending.set(this.pending);
    this.metrics.newCallsUnanswered.set(this.unansweredCount);
    this.metrics.admitRatio.set(this.state.admit);
    this.countShedding(Date.now());
  }

  private sample(): void {
    const now = performance.now();
    const sampleMs = now - this.last;
    this.delayMs = Math.max(0, sampleMs - SAMPLE_MS);
    this.last = now;
    const utilization = performance.eventLoopUtilization();
    this.busy = performance.eventLoopUtilization(utilization, this.utilization).utilization;
    this.utilization = utilization;
    this.queuedCount = this.queued();
    const sample = {
      delayMs: this.delayMs,
      owed: Math.max(0, this.pending - this.waits.size),
      unanswered: this.unansweredCount,
      busy: this.busy,
      routed: this.routedCount,
      sampleMs,
      ...(this.queuedCount !== undefined ? { queued: this.queuedCount } : {}),
      accepted: this.acceptedCount,
    };
    this.routedCount = 0;
    this.acceptedCount = 0;
    const { state, change } = overloadStep(this.state, sample, now, this.limits);
    this.state = state;
    if (change) this.apply(change.from, change.to, change.why);
    else if (state.level === 2) this.remind();
  }

  private remindedAt = 0;
  private remindedCount = 0;

  /** While shedding lasts, one line every REMIND_MS with what it shed meanwhile. */
  private remind(): void {
    const wall = Date.now();
    if (wall - Math.max(this.since, this.remindedAt) < REMIND_MS) return;
    const shed = this.shedCount - this.remindedCount;
    this.remindedAt = wall;
    this.remindedCount = this.shedCount;
    this.log.warn('overload: still shedding new calls', {
      level: 2,
      admit: Math.round(this.state.admit * 100) / 100,
      callsShed: shed,
      overMs: REMIND_MS,
      loopDelayMs: Math.round(this.delayMs),
      loopBusy: Math.round(this.busy * 100) / 100,
    });
  }

  private apply(from: Level, to: Level, why: string): void {
    const wall = Date.now();
    const fields = {
      level: to,
      from,
      loopDelayMs: Math.round(this.delayMs),
      callsNotRouted: this.pending,
      newCallsUnanswered: this.unansweredCount,
      loopBusy: Math.round(this.busy * 100) / 100,
      ...(this.queuedCount !== undefined ? { connectionsWaiting: this.queuedCount } : {}),
      ...(to < from ? { afterMs: wall - this.since } : {}),
      ...(from === 2 ? { callsShed: this.shedCount } : {}),
    };
    this.since = wall;
    this.metrics.overloadLevel.set(to);
    if (to > from) this.metrics.overloadEntered.inc({ level: String(to) });
    if (to >= 1) {
      const released = [...this.waits];
      this.waits.clear();
      for (const release of released) release();
    }
    if (to === 2) {
      this.sheddingSince = wall;
      this.shedCount = 0;
      this.remindedCount = 0;
      this.remindedAt = 0;
      this.credit = 0;
    } else if (from === 2) {
      this.countShedding(wall);
      this.sheddingSince = undefined;
    }
    this.metrics.admitRatio.set(this.state.admit);
    if (to === 2)
      this.log.warn(
        `overload (${why}): shedding new calls — only a share is taken, the others are handed back to ` +
          "the dialplan at once and routed without Zammad; calls taken go on without waiting for Zammad's decision",
        { ...fields, admit: this.state.admit },
      );
    else if (to === 1 && from === 0)
      this.log.warn(
        `overload (${why}): calls go on at once without waiting for Zammad's decision; ` +
          'their newCall is still stored and posted',
        fields,
      );
    else if (to === 1)
      this.log.warn(
        `overload easing (${why}): taking new calls again, still not waiting for Zammad's decision`,
        fields,
      );
    else this.log.info(`overload over (${why}): waiting for Zammad's decision again`, fields);
  }

  /** Adds the time spent shedding since the last count to its counter. */
  private countShedding(wall: number): void {
    if (this.sheddingSince === undefined) return;
    this.metrics.sheddingSeconds.inc(Math.max(0, wall - this.sheddingSince) / 1000);
    this.sheddingSince = wall;
  }
}
