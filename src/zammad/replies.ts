/**
 * What Zammad's CTI endpoint answers, as schemas. Read from Zammad's controller
 * (docs/reference/zammad.md): `{}` normally, `{"action":"reject","reason":"busy"}` for a
 * blocked inbound caller, `{"action":"dial","caller_id":…,"number":…}` for outbound routing —
 * the code says `caller_id`, the public text `callerId`: both are accepted.
 */
import { z } from 'zod';
import type { Decision } from '../call/flow.js';

const Reject = z.object({ action: z.literal('reject'), reason: z.string().max(200).optional() });
const Dial = z.object({
  action: z.literal('dial'),
  caller_id: z.unknown().optional(),
  callerId: z.unknown().optional(),
  number: z.unknown().optional(),
});
const NewCallReply = z.union([Reject, Dial]);

const ErrorReply = z.object({ error: z.string() });

/** Zammad's answers to newCall are a few dozen bytes; more than this is not Zammad talking. */
const LARGE_REPLY_CHARS = 1024;

/** Turns a 2xx newCall body into the switch's decision; anything else means "just bridge". */
export function decisionFromReply(body: string): { decision: Decision; note?: string } {
  if (body.length <= LARGE_REPLY_CHARS) return readReply(body);
  // A huge (or endless) reply, cut at ZAMMAD_MAX_REPLY_BYTES by the client: not acted upon.
  return {
    decision: { kind: 'continue', why: 'reply' },
    note:
      `Zammad answered newCall with ${body.length} bytes or more (its replies are a few dozen; ` +
      'nothing past ZAMMAD_MAX_REPLY_BYTES is read): ignored',
  };
}

function readReply(body: string): { decision: Decision; note?: string } {
  if (body.trim() === '') return { decision: { kind: 'continue', why: 'reply' } };
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return {
      decision: { kind: 'continue', why: 'reply' },
      note: 'Zammad answered newCall with something that is not JSON',
    };
  }
  const parsed = NewCallReply.safeParse(json);
  if (!parsed.success) {
    const action =
      typeof json === 'object' && json !== null && 'action' in json
        ? String((json as { action: unknown }).action).slice(0, 40)
        : undefined;
    return {
      decision: { kind: 'continue', why: 'reply' },
      ...(action !== undefined ? { note: `Zammad answered newCall with an unknown action "${action}"` } : {}),
    };
  }
  const reply = parsed.data;
  if (reply.action === 'reject') return { decision: { kind: 'reject', reason: reply.reason ?? '' } };
  return { decision: { kind: 'dial', callerId: reply.caller_id ?? reply.callerId } };
}

/**
 * What an error reply of Zammad's CTI endpoint means, by the checks of its controller
 * (zammad-behaviour.md, "Checks, in order" and "State per call"). `other` is anything else,
 * from Zammad or from a proxy in front of it.
 */
export type ErrorMeaning = 'disabled' | 'notConfigured' | 'wrongToken' | 'invalidDirection' | 'alreadyExists' | 'other';

export interface ZammadError {
  meaning: ErrorMeaning;
  /** Zammad's `{"error": …}` text, if the body is one. */
  text?: string;
}

/** The one place that reads the wording of Zammad's errors; delivery (verdict.ts) and `check` act on the meaning. */
export function readError(status: number, body: string): ZammadError {
  const text = errorText(body);
  const said = text !== undefined ? { text } : {};
  if (status === 422 && text !== undefined) {
    if (/invalid direction/i.test(text)) return { meaning: 'invalidDirection', ...said };
    if (/disabled/i.test(text)) return { meaning: 'disabled', ...said };
    if (/not configured/i.test(text)) return { meaning: 'notConfigured', ...said };
  }
  // A 401 without Zammad's words comes from something in front of it (a proxy with a login).
  if (status === 401 && text !== undefined && /token/i.test(text)) return { meaning: 'wrongToken', ...said };
  // Read in the whole body: Zammad's error page says the same when it answers HTML.
  if (status === 500 && /already exists/i.test(body)) return { meaning: 'alreadyExists', ...said };
  return { meaning: 'other', ...said };
}

/** Zammad's `{"error": …}` text, if the body is one. */
function errorText(body: string): string | undefined {
  try {
    const parsed = ErrorReply.safeParse(JSON.parse(body));
    return parsed.success ? parsed.data.error.slice(0, 200) : undefined;
  } catch {
    return undefined;
  }
}
