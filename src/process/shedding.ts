/**
 * The shell around overload.ts: samples the process every 100 ms (how late that timer fires is the
 * event loop's delay; the call counts come from the sessions), steps the levels and applies them —
 * level 1 ends every decision wait and starts none, level 2 also closes the event-socket port
 * until the adapter has caught up. One log line per level change, not one per call.
 */
import type { Logger } from './log.js';
import type { CallLoad } from '../call/session.js';
import type { Metrics } from '../status/metrics.js';
import { NORMAL, overloadStep, type Level, type OverloadLimits, type OverloadState } from './overload.js';

const SAMPLE_MS = 100;

export interface PortControl {
  refuse(): void;
  resume(): Promise<boolean>;
}

const WHAT: Record<Level, string> = {
  0: 'normal',
  1: "not waiting for Zammad's decision",
  2: 'refusing new calls',
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
  private refusingSince: number | undefined;

  constructor(
    private readonly limits: OverloadLimits,
    private readonly port: PortControl,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.last = performance.now();
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

  /** The `load` check of /readyz: not ready while refusing, so that a balancer or monitor sees it. */
  readiness(): { ok: boolean; detail: string } {
    const counts =
      `event loop ${Math.round(this.delayMs)} ms late, ${this.pending} calls not yet routed, ` +
      `${this.unansweredCount} newCalls not yet answered`;
    return { ok: this.state.level < 2, detail: `${WHAT[this.state.level]} (level ${this.state.level}): ${counts}` };
  }

  accepted(): void {
    this.pending++;
  }

  routed(): void {
    this.pending--;
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
    this.countRefusing(Date.now());
  }

  private sample(): void {
    const now = performance.now();
    this.delayMs = Math.max(0, now - this.last - SAMPLE_MS);
    this.last = now;
    const sample = {
      delayMs: this.delayMs,
      owed: Math.max(0, this.pending - this.waits.size),
      unanswered: this.unansweredCount,
    };
    const { state, change } = overloadStep(this.state, sample, now, this.limits);
    this.state = state;
    if (change) this.apply(change.from, change.to, change.why);
  }

  private apply(from: Level, to: Level, why: string): void {
    const wall = Date.now();
    const fields = {
      level: to,
      from,
      loopDelayMs: Math.round(this.delayMs),
      callsNotRouted: this.pending,
      newCallsUnanswered: this.unansweredCount,
      ...(to < from ? { afterMs: wall - this.since } : {}),
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
      this.refusingSince = wall;
      this.port.refuse();
    } else if (from === 2) {
      this.countRefusing(wall);
      this.refusingSince = undefined;
      void this.port.resume().then((ok) => {
        if (!ok) this.state = { level: 2 }; // still closed: stepped down again once the port is had
        if (!ok) this.refusingSince = Date.now();
      });
    }
    if (to === 2)
      this.log.warn(
        `overload (${why}): refusing new calls — FreeSWITCH's socket fails at once and the gate routes them ` +
          "without Zammad; calls already taken go on without waiting for Zammad's decision",
        fields,
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

  /** Adds the time spent refusing since the last count to its counter. */
  private countRefusing(wall: number): void {
    if (this.refusingSince === undefined) return;
    this.metrics.refusingSeconds.inc(Math.max(0, wall - this.refusingSince) / 1000);
    this.refusingSince = wall;
  }
}
