/**
 * A file beside the outbox, `<OUTBOX_PATH>.journal-incomplete`, saying that the journal (open_calls)
 * may miss changes the disk did not take: an answer, a hangup, a newCall. It is made at the first
 * failed commit that leaves a journal change off the disk (an empty file needs no room on most
 * disks), filled with the calls concerned at a stop that could not store them, and removed once
 * the journal is whole again. The next start reads it: those calls (all of them, if the list is
 * not complete) are closed with a cause that is not wrong whether or not they were answered.
 */
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

const END = 'end';

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

/** The calls whose journal changes are lost, then a closing line; a file cut short means "any call". */
export function listIncomplete(outboxPath: string, callIds: readonly string[]): boolean {
  try {
    writeFileSync(markerPath(outboxPath), [...callIds, END, ''].join('\n'));
    return true;
  } catch {
    return markIncomplete(outboxPath);
  }
}

export function clearIncomplete(outboxPath: string): void {
  rmSync(markerPath(outboxPath), { force: true });
}

/** undefined: no marker; 'all': every call in the journal is in doubt; else the calls in doubt. */
export function readIncomplete(outboxPath: string): 'all' | string[] | undefined {
  const path = markerPath(outboxPath);
  if (!existsSync(path)) return undefined;
  const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l !== '');
  if (lines.at(-1) !== END) return 'all';
  return lines.slice(0, -1);
}
