/**
 * Which Zammad a call's events go to, first rule that applies:
 *  1. the channel variable `zammad_endpoint` (an endpoint's name) — unknown: not reported;
 *  2. the call's `domain_name` (FusionPBX sets it per tenant) in an endpoint's `domains`;
 *  3. ZAMMAD_CTI_URL's endpoint, when there is one;
 *  else the call is not reported. Pure; the route is decided once per call.
 */
import { DEFAULT_ENDPOINT, type Endpoint } from './endpoints-file.js';

export interface ChoiceHints {
  /** `zammad_endpoint` */
  endpoint?: string;
  /** `domain_name` */
  domain?: string;
}

export type EndpointChoice =
  | { kind: 'endpoint'; name: string; by: 'variable' | 'domain' | 'default' }
  | { kind: 'none'; why: 'unknown-endpoint' | 'no-match'; detail: string };

export interface ChoiceTable {
  readonly names: ReadonlySet<string>;
  readonly byDomain: ReadonlyMap<string, string>;
  readonly hasDefault: boolean;
}

export function choiceTable(endpoints: readonly Endpoint[]): ChoiceTable {
  const byDomain = new Map<string, string>();
  for (const e of endpoints) for (const d of e.domains) if (!byDomain.has(d)) byDomain.set(d, e.name);
  return {
    names: new Set(endpoints.map((e) => e.name)),
    byDomain,
    hasDefault: endpoints.some((e) => e.name === DEFAULT_ENDPOINT),
  };
}

export function chooseEndpoint(table: ChoiceTable, hints: ChoiceHints): EndpointChoice {
  const wanted = hints.endpoint?.trim();
  if (wanted) {
    if (table.names.has(wanted)) return { kind: 'endpoint', name: wanted, by: 'variable' };
    // Not the default instead: a misspelt tenant name must not land in another company's Zammad.
    return { kind: 'none', why: 'unknown-endpoint', detail: wanted };
  }
  const domain = hints.domain?.trim().toLowerCase();
  const owner = domain ? table.byDomain.get(domain) : undefined;
  if (owner !== undefined) return { kind: 'endpoint', name: owner, by: 'domain' };
  if (table.hasDefault) return { kind: 'endpoint', name: DEFAULT_ENDPOINT, by: 'default' };
  return { kind: 'none', why: 'no-match', detail: domain ?? '' };
}
