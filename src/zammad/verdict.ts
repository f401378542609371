/**
 * What an answer from Zammad means for delivery. Pure; the rules come from Zammad's controller
 * (../shared/spec/zammad-behaviour.md, "Checks, in order" and "Status codes at a glance").
 */
import type { HttpOutcome } from './client.js';
import { errorText } from './replies.js';

export type Verdict =
  /** Stored by Zammad; `body` may carry an action (newCall). */
  | { kind: 'delivered'; body: string; note?: string }
  /** Worth trying again: network trouble, no answer in time, a server fault. */
  | { kind: 'retry'; reason: string }
  /** Zammad's setup is wrong (token, integration off, URL): nothing will pass until an admin fixes it. */
  | { kind: 'configFault'; reason: string }
  /** Zammad will never take this event as it is. */
  | { kind: 'refused'; reason: string };

export function verdictOf(event: string, outcome: HttpOutcome): Verdict {
  if (outcome.kind === 'failure') return { kind: 'retry', reason: `${outcome.code}: ${outcome.error}` };
  const { status, body } = outcome;
  const error = errorText(body);
  if (status >= 200 && status < 300) return { kind: 'delivered', body };
  if (status >= 300 && status < 400) {
    return { kind: 'configFault', reason: `Zammad answered with a redirect (${status}${outcome.location ? ` to ${new URL(outcome.location, 'http://x').pathname.replace(/[^/]+\/?$/, '***')}` : ''}): check ZAMMAD_CTI_URL (https, host name)` };
  }
  if (status === 401) return { kind: 'configFault', reason: `wrong token: Zammad answered 401 "${error ?? 'Invalid token'}": copy the endpoint again from Zammad → Admin → Integrations → CTI (generic)` };
  if (status === 403 || status === 404) return { kind: 'configFault', reason: `Zammad answered ${status}: check ZAMMAD_CTI_URL` };
  if (status === 422) {
    if (error && /disabled|not configured/i.test(error)) return { kind: 'configFault', reason: `Zammad answered 422 "${error}": enable and configure Admin → Integrations → CTI (generic)` };
    return { kind: 'refused', reason: `Zammad answered 422 "${error ?? body.slice(0, 120)}"` };
  }
  // A retried newCall that the first try already stored: Zammad says so with a 500.
  if (status === 500 && event === 'newCall' && /already exists/i.test(body)) return { kind: 'delivered', body: '{}', note: 'already stored by an earlier try' };
  if (status >= 500 || status === 408 || status === 429) return { kind: 'retry', reason: `Zammad answered ${status}${error ? ` "${error}"` : ''}` };
  return { kind: 'refused', reason: `Zammad answered ${status}${error ? ` "${error}"` : ''}` };
}
