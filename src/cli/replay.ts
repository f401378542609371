/**
 * `freeswitch-zammad-cti replay FILE`: posts the events a stop could neither deliver nor store
 * (zammad/unsaved.ts) to their endpoints, in the order they were made, each after the reply to
 * the one before. FILE is the `<OUTBOX_PATH>.unsaved-….jsonl` the adapter wrote, or its JSON log
 * (the lines "event neither delivered nor stored" are read, the rest skipped).
 *
 * Not idempotent in every case, as the adapter's own retries are not (docs/delivery.md, "What is
 * sent again"): a repeated newCall is harmless, a repeated answer or hangup of an answered call
 * moves a time, but a missed call's hangup sent twice marks the call done. Replay a file once.
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../process/config.js';
import type { Endpoint } from '../zammad/endpoints-file.js';
import { UNSAVED_LINE, UnsavedLine } from '../zammad/unsaved.js';
import { atMostOnce, verdictOf } from '../zammad/verdict.js';
import { clientFor, configOrExit, endpointsOrExit, endpointsScrubber, oneLine } from './check.js';

export const REPLAY_USAGE = [
  'Usage: freeswitch-zammad-cti replay FILE',
  '',
  'Posts to Zammad the events a stop of the adapter could neither deliver nor store (its outbox could not',
  'write to disk), in their order: FILE is the <OUTBOX_PATH>.unsaved-<time>.jsonl it wrote, or its JSON log',
  '(the lines "event neither delivered nor stored"). Each goes to the endpoint it was made for',
  '(ZAMMAD_CTI_URL, ZAMMAD_ENDPOINTS_FILE). A call whose newCall Zammad does not take is not continued.',
  '',
  'Replay a file once: a second hangup of a missed call marks it done in Zammad. A repeated newCall is',
  'answered "already exists" and counts as delivered; a repeated answer moves the start of the talk time.',
  '',
  'Exit codes: 0 every event delivered, 1 some not (each named), 2 usage, configuration or unreadable file.',
].join('\n');

/** The events of a file or log, in order; `skipped`: lines that are not such an event. Pure. */
export function readUnsaved(text: string): { events: UnsavedLine[]; skipped: number } {
  const events: UnsavedLine[] = [];
  let skipped = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      skipped++;
      continue;
    }
    const message = (value as { message?: unknown } | null)?.message;
    const parsed = UnsavedLine.safeParse(value);
    if (parsed.success && (message === undefined || message === UNSAVED_LINE)) events.push(parsed.data);
    else skipped++;
  }
  return { events, skipped };
}

export async function runReplay(argv: string[], env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    out(REPLAY_USAGE);
    return 0;
  }
  const [file, ...extra] = argv;
  if (file === undefined || extra.length > 0) {
    out('error: replay takes one FILE. Run "freeswitch-zammad-cti replay --help".');
    return 2;
  }
  const config = configOrExit(env, out);
  if (config === 2) return 2;
  const endpoints = endpointsOrExit(config, out);
  if (endpoints === 2) return 2;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    out(`error: cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
    return 2;
  }
  const { events, skipped } = readUnsaved(text);
  out(`${events.length} events to replay from ${file}${skipped > 0 ? ` (${skipped} other lines skipped)` : ''}`);
  return replay(events, endpoints, config, endpointsScrubber(endpoints), out);
}

async function replay(
  events: readonly UnsavedLine[],
  endpoints: readonly Endpoint[],
  config: Config,
  scrub: (l: string) => string,
  out: (line: string) => void,
): Promise<number> {
  const clients = new Map(endpoints.map((e) => [e.name, clientFor(e, config)]));
  /** Calls whose newCall Zammad did not take: their later events would only earn a 500. */
  const failedCalls = new Set<string>();
  let failed = 0;
  try {
    for (const e of events) {
      const what = `${e.callId} ${e.event} → ${e.endpoint}`;
      const client = clients.get(e.endpoint);
      if (!client || failedCalls.has(e.callId)) {
        out(`not sent: ${what}: ${client ? 'its newCall was not delivered' : 'no such endpoint is configured'}`);
        failed++;
        continue;
      }
      const outcome = await client.post(e.body, config.ZAMMAD_REQUEST_TIMEOUT_MS);
      const verdict = verdictOf(e.event, outcome, { atMostOnce: atMostOnce(e.event, e.body) });
      if (verdict.kind === 'delivered') {
        out(`delivered: ${what}${verdict.note ? ` (${verdict.note})` : ''}`);
        continue;
      }
      failed++;
      if (e.event === 'newCall') failedCalls.add(e.callId);
      out(scrub(`NOT delivered (${verdict.kind}): ${what}: ${oneLine(verdict.reason, 200)}`));
    }
  } finally {
    await Promise.allSettled([...clients.values()].map((c) => c.destroy()));
  }
  out(failed === 0 ? `all ${events.length} events delivered` : `${failed} of ${events.length} events not delivered`);
  return failed === 0 ? 0 : 1;
}
