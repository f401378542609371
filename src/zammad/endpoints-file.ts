/**
 * ZAMMAD_ENDPOINTS_FILE: one Zammad per tenant. A provider hosting PBXs for several companies
 * (FusionPBX: one domain and one dialplan context per customer) has one Zammad per company.
 *
 *   { "endpoints": [ { "name": "acme", "url": "https://…/api/v1/cti/TOKEN", "domains": ["acme.example.com"] } ] }
 *
 * Validated as a whole; every problem is named by its entry (`endpoints[1] "globex"`) and never
 * quotes a URL (it holds the token).
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { clearTextProblem, ctiUrl } from './endpoint-url.js';

/** The name of the endpoint that ZAMMAD_CTI_URL gives. */
export const DEFAULT_ENDPOINT = 'default';

/** Names end up in metric labels, log fields and the outbox: short, plain. */
const endpointName = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/,
    'must be 1-63 letters, digits, "_", "." or "-", starting with a letter or digit',
  )
  .refine((n) => n !== DEFAULT_ENDPOINT, `"${DEFAULT_ENDPOINT}" is the name of ZAMMAD_CTI_URL's endpoint`);

/** FreeSWITCH domain names as FusionPBX sets `domain_name`: compared without case. */
const domain = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .regex(/^[^\s/@]+$/, 'must be a domain name (no spaces, "/" or "@")')
  .transform((d) => d.toLowerCase());

const EndpointEntry = z.strictObject({
  name: endpointName,
  url: ctiUrl,
  domains: z.array(domain).default([]),
});

const EndpointsFile = z.strictObject({ endpoints: z.array(EndpointEntry) });

export interface Endpoint {
  readonly name: string;
  readonly url: string;
  /** Lower case. */
  readonly domains: readonly string[];
}

export class EndpointsFileError extends Error {
  constructor(
    readonly path: string,
    readonly problems: string[],
  ) {
    super(`ZAMMAD_ENDPOINTS_FILE ${path}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'EndpointsFileError';
  }
}

/** `endpoints[1] "globex"` for an issue's path; the entry's name when it has a readable one. */
function where(data: unknown, path: readonly PropertyKey[]): string {
  if (path[0] !== 'endpoints' || typeof path[1] !== 'number')
    return path.length === 0 ? 'the file' : path.map(String).join('.');
  const entries = (data as { endpoints?: unknown }).endpoints;
  const entry = Array.isArray(entries) ? (entries[path[1]] as { name?: unknown } | undefined) : undefined;
  const name = typeof entry?.name === 'string' && /^[\x20-\x7e]{1,63}$/.test(entry.name) ? ` "${entry.name}"` : '';
  const rest = path.slice(2).map(String).join('.');
  return `endpoints[${path[1]}]${name}${rest ? `: ${rest}` : ''}`;
}

/** The file's text → its endpoints; throws EndpointsFileError naming every bad entry. Pure. */
export function parseEndpoints(text: string, path: string, options: { allowHttp: boolean }): Endpoint[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new EndpointsFileError(path, [`not valid JSON (${err instanceof Error ? err.message : String(err)})`]);
  }
  const parsed = EndpointsFile.safeParse(data);
  if (!parsed.success)
    throw new EndpointsFileError(
      path,
      parsed.error.issues.map((i) => `${where(data, i.path)}: ${i.message}`),
    );
  const problems: string[] = [];
  const names = new Map<string, number>();
  const owners = new Map<string, string>();
  parsed.data.endpoints.forEach((e, i) => {
    const at = `endpoints[${i}] "${e.name}"`;
    const clear = clearTextProblem(e.url, options.allowHttp);
    if (clear) problems.push(`${at}: url ${clear}`);
    const first = names.get(e.name);
    if (first !== undefined) problems.push(`${at}: the name is also endpoints[${first}]'s`);
    else names.set(e.name, i);
    for (const d of e.domains) {
      const owner = owners.get(d);
      // One domain, two Zammads: a call of it would go to whichever comes first. Say so instead.
      if (owner !== undefined && owner !== e.name) problems.push(`${at}: domain "${d}" is also "${owner}"'s`);
      else owners.set(d, e.name);
    }
  });
  if (problems.length > 0) throw new EndpointsFileError(path, problems);
  return parsed.data.endpoints.map((e) => ({ name: e.name, url: e.url, domains: [...new Set(e.domains)] }));
}

export function readEndpointsFile(path: string, options: { allowHttp: boolean }): Endpoint[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new EndpointsFileError(path, [
      code === 'ENOENT' ? 'no such file' : `cannot be read (${code ?? String(err)})`,
    ]);
  }
  return parseEndpoints(text, path, options);
}
