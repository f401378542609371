/**
 * What the real-switch scenario files share: the switch's directory domain, the callers, Zammad's caller id, and small
 * readers of legs and posts.
 */
import assert from 'node:assert/strict';
import type { FinishedCall, RealSwitch } from './harness.js';
import type { Leg } from './legs.js';
import type { PlacedCall } from './place-call.js';

export const DOMAIN = 'test.local';
export const CALLER = '493055571600';
/** On the Zammad doubles' block list. */
export const BLOCKED = '493055571699';
/** What the Zammad doubles' outbound route answers `dial` with. */
export const ZAMMAD_CALLER_ID = '4930777000000';

export const user = (ext: string): string => `user/${ext}@${DOMAIN}`;

/** from, to, direction, callId: the fields every post of the call carries. */
export function common(done: FinishedCall, to: string, from = CALLER, direction = 'in') {
  return { from, to, direction, callId: done.callId };
}

/** The leg's CHANNEL_EXECUTE events of one application. */
export const executions = (leg: Leg, app: string) =>
  leg.events.filter((e) => e.name === 'CHANNEL_EXECUTE' && e.headers['Application'] === app);

/** Event timestamps (µs) → ms between them. */
export const ms = (fromUs: number, toUs: number): number => Math.round((toUs - fromUs) / 1000);

/** Every channel uuid the switch holds (`show channels as json`). */
async function channelUuids(sw: RealSwitch): Promise<Set<string>> {
  const parsed = JSON.parse(await sw.esl.api('show channels as json')) as { rows?: Array<{ uuid: string }> };
  return new Set((parsed.rows ?? []).map((r) => r.uuid));
}

/** The uuids of every leg of the calls (the callers' even before the switch reported them). */
const uuidsOf = (sw: RealSwitch, calls: readonly PlacedCall[]): string[] => [
  ...new Set(calls.flatMap((c) => [c.callerUuid, ...sw.legs.legsOf(c.tag).legs.map((l) => l.uuid)])),
];

/** The legs of the calls the switch still holds. */
async function heldLegs(sw: RealSwitch, calls: readonly PlacedCall[]): Promise<string[]> {
  const held = await channelUuids(sw);
  return uuidsOf(sw, calls).filter((u) => held.has(u));
}

/** uuid_kill every leg of the calls the switch still holds (a parked call stays for good otherwise). */
export async function killLeftovers(sw: RealSwitch, calls: readonly PlacedCall[]): Promise<void> {
  for (const u of await heldLegs(sw, calls)) await sw.esl.api(`uuid_kill ${u} NORMAL_CLEARING`);
}

/** Waits (bounded) until the switch holds none of the calls' channels; fails naming those left. */
export async function noneLeft(sw: RealSwitch, calls: readonly PlacedCall[], boundMs: number): Promise<void> {
  const deadline = Date.now() + boundMs;
  while ((await heldLegs(sw, calls)).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  const still = await heldLegs(sw, calls);
  if (still.length) {
    const dump = await sw.esl.api('show channels');
    assert.fail(`after ${boundMs} ms the switch still holds ${still.length} channel(s) of the calls:\n${dump}`);
  }
}
