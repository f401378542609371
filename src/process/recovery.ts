/**
 * Calls that were in progress when an earlier run of the adapter stopped (crash, SIGKILL,
 * drain time over). Zammad must not show them ringing for ever: each gets its hangup, with a
 * cause that is honest about what is known, and a log line saying so.
 */
import { z } from 'zod';
import type { Config } from './config.js';
import type { Logger } from './log.js';
import type { Outbox } from '../zammad/outbox.js';
import type { OutboxStore } from '../zammad/store.js';

const OpenCallFacts = z.object({
  callId: z.string().min(1),
  direction: z.enum(['in', 'out']),
  from: z.string(),
  to: z.string(),
});

export interface RecoveryDeps {
  store: OutboxStore;
  outbox: Outbox;
  config: Config;
  log: Logger;
}

export async function recoverOpenCalls({ store, outbox, log }: RecoveryDeps): Promise<number> {
  const open = store.openCalls();
  for (const call of open) {
    const parsed = OpenCallFacts.safeParse(JSON.parse(call.facts));
    if (!parsed.success) {
      log.error('unreadable open-call record; cannot close this call in Zammad', { callId: call.callId });
      store.callEnded(call.callId);
      continue;
    }
    // Known: whether it was answered before we lost it. Unknown: how it went on.
    const cause = call.answered ? 'normalClearing' : 'noAnswer';
    log.warn('closing a call left open by an earlier run: its real end is unknown', { callId: call.callId, answered: call.answered, cause });
    void outbox.send({ event: 'hangup', ...parsed.data, cause, ...(call.answeringNumber ? { answeringNumber: call.answeringNumber } : {}) });
    store.callEnded(call.callId);
  }
  return open.length;
}
