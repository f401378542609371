/**
 * Zammad's caller log (Cti::Log) as the double keeps it: one entry per call id, and what
 * Cti::Log.process does with newCall / answer / hangup (app/models/cti/log.rb): which fields each
 * event sets, the done flags, waiting and talking times, answer after hangup ignored, and the
 * errors it raises (known / unknown call id, unknown event, a missing call id, column limits).
 */
import { RailsError } from './zammad-replies.js';
import { present, scalar } from './zammad-request.js';
import type { CtiLogEntry, Params } from './zammad-types.js';

const CALL_ID_LIMIT = 250;
const NUMBER_LIMIT = 100;

/** Ruby's String#[0, n] counts characters, not UTF-16 units. */
function cut(value: string, limit: number): string {
  const chars = Array.from(value);
  return chars.length <= limit ? value : chars.slice(0, limit).join('');
}

/** entries are mutated in place; log() / entry() hand out copies */
type MutableEntry = CtiLogEntry;

export class CtiLog {
  private readonly entries: MutableEntry[] = [];
  private readonly byCallId = new Map<string, MutableEntry>();

  constructor(private readonly now: () => number) {}

  /** the entries in creation order; copies */
  all(): CtiLogEntry[] {
    return this.entries.map((e) => ({ ...e }));
  }

  /** the entry for a call id as stored; a copy */
  get(callId: string): CtiLogEntry | undefined {
    const e = this.byCallId.get(callId);
    return e ? { ...e } : undefined;
  }

  clear(): void {
    this.entries.length = 0;
    this.byCallId.clear();
  }

  /** Cti::Log.process */
  process(
    params: Params,
    direction: 'in' | 'out',
    event: string | undefined,
    fromOverride: string | undefined,
  ): 'applied' | 'ignored' {
    const cause = scalar(params, 'cause');
    const rawUser = params['user'];
    const user = Array.isArray(rawUser) ? rawUser.join(', ') : rawUser;
    let queue = scalar(params, 'queue');
    const callId = scalar(params, 'callId') ?? scalar(params, 'call_id');
    const from = fromOverride ?? scalar(params, 'from');
    const to = scalar(params, 'to');
    const answeringNumber = scalar(params, 'answeringNumber');

    let fromComment: string | null = null;
    let toComment: string | null = null;
    if (direction === 'in') {
      if (present(user)) toComment = user;
      else if (present(queue)) toComment = queue;
      if (!present(queue)) queue = to;
    } else {
      fromComment = user ?? null;
      if (!present(queue)) queue = from;
    }

    const log = callId !== undefined ? this.byCallId.get(callId) : undefined;
    const now = this.now();
    const sec = (ms: number): number => Math.floor(ms / 1000);

    switch (event) {
      case 'newCall': {
        if (log) throw new RailsError(500, `call_id ${callId ?? ''} already exists!`);
        if (callId === undefined) {
          throw new RailsError(
            422,
            'PG::NotNullViolation: ERROR:  null value in column "call_id" violates not-null constraint',
          );
        }
        const stored = cut(callId, CALL_ID_LIMIT);
        // unique index on call_id: a long id cut to an existing one
        if (this.byCallId.has(stored))
          throw new RailsError(
            500,
            `PG::UniqueViolation: ERROR:  duplicate key value violates unique constraint "index_cti_logs_on_call_id"`,
          );
        const entry: MutableEntry = {
          id: this.entries.length + 1,
          callId: stored,
          direction,
          from: from !== undefined ? cut(from, NUMBER_LIMIT) : null,
          to: to !== undefined ? cut(to, NUMBER_LIMIT) : null,
          users: user ?? null,
          fromComment,
          toComment,
          queue: queue ?? null,
          state: 'newCall',
          done: direction !== 'in',
          initializedAt: now,
          hangups: 0,
          answers: 0,
          ignoredAnswers: 0,
        };
        if (cause !== undefined) entry.cause = cause;
        this.entries.push(entry);
        this.byCallId.set(stored, entry);
        return 'applied';
      }
      case 'answer': {
        if (!log) throw new RailsError(500, `No such call_id ${callId ?? ''}`);
        if (log.state === 'hangup') {
          log.ignoredAnswers += 1; // call is already hangup, ignore answer
          return 'ignored';
        }
        log.state = 'answer';
        log.startAt = now;
        log.durationWaitingTime = sec(now) - sec(log.initializedAt);
        if (user !== undefined) {
          log.toComment = user;
          log.answeredBy = user;
        }
        log.done = true;
        if (cause !== undefined) log.cause = cause;
        else delete log.cause;
        if (answeringNumber !== undefined) log.answeringNumber = answeringNumber;
        log.answers += 1;
        return 'applied';
      }
      case 'hangup': {
        if (!log) throw new RailsError(500, `No such call_id ${callId ?? ''}`);
        log.done = true;
        if (
          direction === 'in' &&
          ((log.state === 'newCall' && cause !== 'forwarded') || log.toComment === 'voicemail')
        ) {
          log.done = false;
        }
        log.state = 'hangup';
        log.endAt = now;
        if (log.startAt !== undefined) log.durationTalkingTime = sec(now) - sec(log.startAt);
        else if (log.durationWaitingTime === undefined) log.durationWaitingTime = sec(now) - sec(log.initializedAt);
        if (cause !== undefined) log.cause = cause;
        else delete log.cause;
        if (answeringNumber !== undefined) log.answeringNumber = answeringNumber;
        log.hangups += 1;
        return 'applied';
      }
      default:
        // raise ArgumentError, "Unknown event #{event.inspect}" → 422
        throw new RailsError(422, `Unknown event ${event === undefined ? 'nil' : JSON.stringify(event)}`);
    }
  }
}
