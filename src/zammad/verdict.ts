/**
 * What an answer from Zammad means for delivery. Pure; the rules come from Zammad's controller
 * (docs/reference/zammad.md, "Checks, in order" and "Status codes at a glance").
 */
import type { HttpOutcome } from './client.js';
import { readError } from './replies.js';

export type Verdict =
  /** Stored by Zammad; `body` may carry an action (newCall). */
  | { kind: 'delivered'; body: string; note?: string }
  /** Worth trying again: network trouble, no answer in time, a server fault. */
  | { kind: 'retry'; reason: string }
  /** Zammad's setup is wrong (token, integration off, URL): nothing will pass until an admin fixes it. */
  | { kind: 'configFault'; reason: string }
  /** Zammad will never take this event as it is. */
  | { kind: 'refused'; reason: string }
  /** An at-most-once event (see atMostOnce) that may have reached Zammad: it is not sent again. */
  | { kind: 'unconfirmed'; reason: string };

/**
 * Statuses that say the request was not processed: the server or the proxy in front of it
 * refused to take it (timeout of the request itself, rate limit, application unavailable).
 */
const NOT_TAKEN = new Set([408, 429, 502, 503]);

/**
 * Events that must never reach Zammad twice: the hangup of an inbound call nobody answered.
 * Zammad marks that call missed (not done); a second hangup marks it done (docs/reference/zammad.md,
 * "A repeated hangup …"), and the caller would not be called back. Every other repeat is
 * harmless: a repeated newCall is refused as "already exists", a repeated answer or a repeated
 * hangup of an answered, forwarded or outbound call (all done already) only moves a time stamp.
 */
export function atMostOnce(event: string, body: string): boolean {
  if (event !== 'hangup') return false;
  const form = new URLSearchParams(body);
  return form.get('direction') === 'in' && form.get('cause') !== 'forwarded' && !form.get('answeringNumber');
}

export function verdictOf(event: string, outcome: HttpOutcome, options: { atMostOnce?: boolean } = {}): Verdict {
  const once = options.atMostOnce === true;
  if (outcome.kind === 'failure') {
    const reason = `${outcome.code}: ${outcome.error}`;
    // Only a request never written to a socket provably did not reach Zammad.
    if (once && outcome.sent !== false)
      return { kind: 'unconfirmed', reason: `${reason} (after the request was sent)` };
    return { kind: 'retry', reason };
  }
  const { status, body } = outcome;
  const { meaning, text: error } = readError(status, body);
  if (status >= 200 && status < 300) return { kind: 'delivered', body };
  if (status >= 300 && status < 400) {
    return {
      kind: 'configFault',
      reason: `Zammad answered with a redirect (${status}${outcome.location ? ` to ${new URL(outcome.location, 'http://x').pathname.replace(/[^/]+\/?$/, '***')}` : ''}): check ZAMMAD_CTI_URL (https, host name)`,
    };
  }
  if (status === 401)
    return {
      kind: 'configFault',
      reason:
        `wrong token: Zammad answered 401 "${error ?? 'Invalid token'}": ` +
        'copy the endpoint again from Zammad → Admin → Integrations → CTI (generic)',
    };
  if (status === 403 || status === 404)
    return { kind: 'configFault', reason: `Zammad answered ${status}: check ZAMMAD_CTI_URL` };
  if (status === 422) {
    if (meaning === 'disabled' || meaning === 'notConfigured') {
      const fix = 'enable and configure Admin → Integrations → CTI (generic)';
      return { kind: 'configFault', reason: `Zammad answered 422 "${error}": ${fix}` };
    }
    return { kind: 'refused', reason: `Zammad answered 422 "${error ?? body.slice(0, 120)}"` };
  }
  // A retried newCall that the first try already stored: Zammad says so with a 500.
  if (event === 'newCall' && meaning === 'alreadyExists') {
    return { kind: 'delivered', body: '{}', note: 'already stored by an earlier try' };
  }
  const said = `Zammad answered ${status}${error ? ` "${error}"` : ''}`;
  if (NOT_TAKEN.has(status)) return { kind: 'retry', reason: said };
  // 500, 504 …: the request reached Zammad and failed somewhere, perhaps after storing.
  if (status >= 500) return once ? { kind: 'unconfirmed', reason: said } : { kind: 'retry', reason: said };
  return { kind: 'refused', reason: said };
}
