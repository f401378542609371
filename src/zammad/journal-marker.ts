/**
 * A file beside the outbox, `<OUTBOX_PATH>.journal-incomplete`, saying that the journal (open_calls)
 * may miss changes the disk did not take: an answer, a hangup, a newCall. It is made at the first
 * failed commit that leaves a journal change off the disk (an empty file needs no room on most
 * disks), filled with the lost changes at a stop that could not store them, and removed once the
 * journal is whole again. The next start reads it: each listed change is applied to the journal; a
 * file without its closing line (a crash during the fault) puts every call of the
 * journal in doubt, and those are closed with a cause that is not wrong whether or not they were
 * answered.
 */
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { z } from 'zod';

const END = 'end';

/**
 * A journal change the disk did not take. An `open` carries the call's facts when its newCall
 * reached Zammad (the next start then closes the call); without them it is only named.
 */
const LostChange = z.object({
  op: z.enum(['open', 'answer', 'close']),
  callId: z.string(),
  answeringNumber: z.string().optional(),
  open: z.object({ endpoint: z.string(), facts: z.string(), at: z.number() }).optional(),
});
export type LostChange = z.infer<typeof LostChange>;

export const markerPath = (outboxPath: string): string => `${outboxPath}.journal-incomplete`;

/** Best effort: the disk is failing already. Returns whether the file is there. */
export function markIncomplete(outboxPath: string): boolean {
  try {
    closeSync(openSync(markerPath(outboxPath), 'a'));
    return true;
  } catch {
    return false;
  }
}

/** The lost changes, in order, then a closing line; a file cut short means "any call". */
export function listIncomplete(outboxPath: string, changes: readonly LostChange[]): boolean {
  try {
    writeFileSync(markerPath(outboxPath), [...changes.map((c) => JSON.stringify(c)), END, ''].join('\n'));
    return true;
  } catch {
    return markIncomplete(outboxPath);
  }
}

export function clearIncomplete(outboxPath: string): void {
  rmSync(markerPath(outboxPath), { force: true });
}

/** undefined: no marker; 'all': every call in the journal is in doubt; else the changes to apply. */
export function readIncomplete(outboxPath: string): 'all' | LostChange[] | undefined {
  const path = markerPath(outboxPath);
  if (!existsSync(path)) return undefined;
  const lines = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
  if (lines.at(-1) !== END) return 'all';
  try {
    return lines.slice(0, -1).map((l) => LostChange.parse(JSON.parse(l)));
  } catch {
    return 'all';
  }
}
