/**
 * Places real SIP calls into the switch's `public` context:
 *   bgapi originate {origination_uuid=U,…,sip_h_X-Cti-Test=TAG}sofia/lo-targets/NUMBER@127.0.0.1:5090 &park()
 * The caller is a lo-targets channel (uuid U, the suite's choice); the INVITE arrives on lo-in
 * (5090, context public) with destination NUMBER and the tag header (shared/freeswitch/README.md).
 * `originate` splits its arguments on spaces: values are single-quoted inside `{…}`
 * (freeswitch-facts.md), and commas inside a value are escaped with a backslash.
 */
import { randomUUID } from 'node:crypto';
import type { EslClient } from './esl-client.js';
import { TAG_HEADER, type LegCollector } from './legs.js';

export interface CallOptions {
  /** destination number as dialled (lands on lo-in in context public) */
  to: string;
  /** caller id number / name of the test caller */
  from: string;
  fromName?: string;
  /** withhold the number (CLIR): origination_privacy=hide_number, sent as Privacy: id */
  hideNumber?: boolean;
  /** more channel variables for the caller (sent as SIP headers when named sip_h_…) */
  vars?: Record<string, string>;
  /** how long the originate may take before the BACKGROUND_JOB result (default 60 s) */
  timeoutMs?: number;
}

export interface PlacedCall {
  tag: string;
  /** uuid of the test caller (lo-targets channel) */
  callerUuid: string;
  /** the BACKGROUND_JOB body: `+OK <uuid>` once answered, `-ERR <CAUSE>` when it failed */
  result: Promise<string>;
}

function quote(value: string): string {
  const v = value.replace(/,/g, '\\,');
  return /[\s']/.test(v) ? `'${v.replace(/'/g, '')}'` : v;
}

let seq = 0;

/** A tag unique to this run: cti-<pid>-<n>-<label>. */
export function newTag(label: string): string {
  seq += 1;
  return `cti-${process.pid}-${seq}-${label}`.replace(/[^A-Za-z0-9-]/g, '-');
}

export function placeCall(esl: EslClient, legs: LegCollector, label: string, o: CallOptions): PlacedCall {
  const tag = newTag(label);
  const callerUuid = randomUUID();
  const vars: Record<string, string> = {
    origination_uuid: callerUuid,
    origination_caller_id_number: o.from,
    origination_caller_id_name: o.fromName ?? 'Test Caller',
    [`sip_h_${TAG_HEADER}`]: tag,
    ...(o.hideNumber ? { origination_privacy: 'hide_number', sip_cid_type: 'pid' } : {}),
    ...o.vars,
  };
  const list = Object.entries(vars)
    .map(([k, v]) => `${k}=${quote(v)}`)
    .join(',');
  legs.registerCaller(tag, callerUuid);
  const result = esl.bgapi(`originate {${list}}sofia/lo-targets/${o.to}@127.0.0.1:5090 &park()`, o.timeoutMs ?? 60_000);
  // a failed originate is an expected outcome for many scenarios: the test reads `result`
  result.catch(() => undefined);
  return { tag, callerUuid, result };
}
