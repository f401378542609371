/**
 * A stop that could neither deliver nor store some events names every one of them, in a form
 * the operator can replay (`freeswitch-zammad-cti replay FILE`, cli/replay.ts): as JSON lines in
 * a file beside the outbox when the disk allows it, and one log line per event in any case (a
 * JSON log is itself a file replay reads).
 */
import { writeFileSync } from 'node:fs';
import { z } from 'zod';
import type { Logger } from '../process/log.js';
import type { Unsaved } from './store.js';

/** The message of each per-event line: replay finds the events of a log by it. */
export const UNSAVED_LINE = 'event neither delivered nor stored';

/** One line of the file, or the fields of one such log line. */
export const UnsavedLine = z.object({
  endpoint: z.string().min(1),
  callId: z.string().min(1),
  event: z.enum(['newCall', 'answer', 'hangup']),
  body: z.string().min(1),
  createdAt: z.number().optional(),
});
export type UnsavedLine = z.infer<typeof UnsavedLine>;

/** `<OUTBOX_PATH>.unsaved-2024-05-01T10-00-00-000Z.jsonl`. Pure. */
export function unsavedPath(outboxPath: string, at: Date): string {
  return `${outboxPath}.unsaved-${at.toISOString().replace(/[:.]/g, '-')}.jsonl`;
}

/** Logs and writes what close() could not store; returns how many events are neither delivered nor stored. */
export function reportUnsaved(unsaved: Unsaved | undefined, outboxPath: string, log: Logger, at = new Date()): number {
  if (!unsaved) return 0;
  const { events, journalCalls, error } = unsaved;
  if (events.length > 0) {
    const file = unsavedPath(outboxPath, at);
    let written: string | undefined;
    try {
      writeFileSync(file, `${events.map((e) => JSON.stringify(UnsavedLine.parse(e))).join('\n')}\n`);
      written = file;
    } catch (err) {
      log.error(
        'could not write the events that are not stored to a file either: the log lines below are their only record',
        { file, error: err instanceof Error ? err.message : String(err) },
      );
    }
    const replay = `replay them once Zammad answers: freeswitch-zammad-cti replay ${written ?? '<this log as a file>'}`;
    log.error(
      `stopping with events neither delivered nor stored (the outbox cannot write to disk: ${error}): ` +
        `each is named below; ${replay}`,
      {
        events: events.length,
        calls: new Set(events.map((e) => e.callId)).size,
        ...(written ? { file: written } : {}),
      },
    );
    for (const e of events)
      log.error(UNSAVED_LINE, {
        callId: e.callId,
        event: e.event,
        endpoint: e.endpoint,
        body: e.body,
        createdAt: e.createdAt,
      });
  }
  for (const callId of journalCalls) {
    log.warn(
      'the journal could not record the last change of this call: if it is still open at the next start, ' +
        'it is closed with a cause that is right whether or not it was answered',
      { callId },
    );
  }
  return events.length;
}
