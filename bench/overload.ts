/**
 * The overload phase (dialplan mode): new calls at twice the capacity the same run measured, open
 * loop, with the load generator playing FreeSWITCH's gate — a call falls open where the switch
 * would route it itself (loadgen.ts `Overload`). What is measured is whatever the adapter does
 * when more calls come than it can take: every call of the window is counted, fallen open or not.
 */
import type { Overload } from './loadgen.js';
import { type Bench, type Subject, pidOf, runJob, tagOf, target } from './measure.js';
import { sampleTree, treeCpuMs } from './procstat.js';
import { percentile, round, sleep } from './util.js';

export interface OverloadFigures {
  /** New calls a second offered, and the capacity (sustained cycles/s, same run) it is twice of. */
  rate: number;
  capacityPerSec: number;
  durationS: number;
  /** A call not given its first command, or not routed, within this bound waited too long. */
  boundMs: number;
  /** Calls started in the window. */
  calls: number;
  /** Calls of the window that waited past the bound (routed late, or no clean end), or failed otherwise. */
  callsFailed: number;
  /** Set-up of every call of the window: routed (less Zammad's own time), fallen open, failed (the call timeout). */
  setupP50Ms: number;
  setupP99Ms: number;
  /** Calls of the window routed, ended cleanly and reported to Zammad (newCall, answer, hangup), a second. */
  goodputPerSec: number;
  goodputVsCapacity: number;
  fellOpen: number;
  fellOpenBy: Overload['fellOpen'];
  routed: number;
  routedLate: number;
  /** Events of routed calls (and of any call Zammad heard of) that did not reach Zammad in order. */
  eventsLost: number;
  cpuMsPerCall: number;
  subjectCores: number;
}

const CALL_TIMEOUT_MS = 20_000;

export async function overloadPhase(
  b: Bench,
  s: Subject,
  capacityPerSec: number,
  rate: number,
  durationMs: number,
  boundMs: number,
): Promise<OverloadFigures> {
  const tag = tagOf();
  b.zammad.reset();
  const pid = pidOf(s);
  let at0: { tree: ReturnType<typeof sampleTree>; t: number } | undefined;
  let at1: typeof at0;
  const result = await runJob(
    b,
    (share) => ({
      mode: 'rate',
      target: target(s),
      tag,
      rate: rate * share,
      warmupMs: 0,
      durationMs,
      callTimeoutMs: CALL_TIMEOUT_MS,
      routing: 'dialplan',
      overloadBoundMs: boundMs,
    }),
    (what) => {
      if (what === 'window-start') at0 = { tree: sampleTree(pid), t: performance.now() };
      if (what === 'window-end') at1 = { tree: sampleTree(pid), t: performance.now() };
    },
  );
  const o = result.overload;
  if (!o || !at0 || !at1) throw new Error('the generator did not report the overload phase');
  const { byCall, zammadMs } = await reported(b, s, tag, o.routedAll.length);
  // Every call Zammad must have complete: those routed, and any other it heard of.
  let lost = 0;
  const expected = new Set([...o.routedAll, ...byCall.keys()]);
  for (const id of expected) {
    const events = byCall.get(id) ?? [];
    const have = new Set(events);
    lost += ['newCall', 'answer', 'hangup'].filter((e) => !have.has(e)).length;
    if (have.size === 3 && events.join(',') !== 'newCall,answer,hangup') lost++;
  }
  const complete = (id: string) => (byCall.get(id) ?? []).join(',') === 'newCall,answer,hangup';
  const good = o.completedRouted.filter(complete).length;
  const setup: number[] = [];
  for (const [id, ms] of o.routed) setup.push(Math.max(0, ms - (zammadMs.get(id) ?? 0)));
  setup.push(...o.fellOpenMs);
  // Failed before any routing or falling open: counted as the call timeout (as the latency phases do).
  const unrouted = o.failed - o.routedLate;
  for (let i = 0; i < unrouted; i++) setup.push(CALL_TIMEOUT_MS);
  setup.sort((x, y) => x - y);
  const windowS = (at1.t - at0.t) / 1000;
  const fellOpen = o.fellOpen.refused + o.fellOpen.noFirstCommand + o.fellOpen.letGo + o.fellOpen.shed;
  const cpuMs = treeCpuMs(at0.tree, at1.tree);
  const goodputPerSec = good / windowS;
  return {
    rate: round(rate, 1),
    capacityPerSec: round(capacityPerSec, 1),
    durationS: round(windowS, 1),
    boundMs,
    calls: o.routed.length + fellOpen + unrouted,
    callsFailed: o.failed,
    setupP50Ms: round(percentile(setup, 0.5), 3),
    setupP99Ms: round(percentile(setup, 0.99), 3),
    goodputPerSec: round(goodputPerSec, 1),
    goodputVsCapacity: round(goodputPerSec / capacityPerSec, 3),
    fellOpen,
    fellOpenBy: o.fellOpen,
    routed: o.routed.length,
    routedLate: o.routedLate,
    eventsLost: lost,
    cpuMsPerCall: good > 0 ? round(cpuMs / good, 3) : NaN,
    subjectCores: round(cpuMs / (at1.t - at0.t), 2),
  };
}

/**
 * Zammad's posts of the phase's calls, once the outbox has delivered what it holds (or nothing
 * moves any more): each call's events in the order Zammad got them, and its newCall's own time.
 */
async function reported(
  b: Bench,
  s: Subject,
  tag: string,
  routed: number,
): Promise<{ byCall: Map<string, string[]>; zammadMs: Map<string, number> }> {
  const delivered = () => b.zammad.posts.filter((p) => p.status === 200 && p.callId?.startsWith(tag)).length;
  if (s.kind === 'adapter') {
    let last = -1;
    let still = 0;
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      const n = delivered();
      const depth = (await s.adapter.metrics())['cti_outbox_events'] ?? 0;
      if (n >= 3 * routed && depth === 0) break;
      still = n === last && depth === 0 ? still + 1 : 0;
      if (still >= 10) break;
      last = n;
      await sleep(100);
    }
  }
  const byCall = new Map<string, string[]>();
  const zammadMs = new Map<string, number>();
  for (const p of b.zammad.posts) {
    if (p.status !== 200 || !p.callId?.startsWith(tag) || !p.event) continue;
    const list = byCall.get(p.callId) ?? [];
    list.push(p.event);
    byCall.set(p.callId, list);
    if (p.event === 'newCall' && p.repliedAt !== undefined) zammadMs.set(p.callId, p.repliedAt - p.at);
  }
  return { byCall, zammadMs };
}
