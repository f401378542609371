/**
 * Configuration: environment (plus an optional .env file) → one zod schema → a frozen Config.
 * A bad value stops the program with one message that names every offending variable.
 */
import { z } from 'zod';
import { isIP } from 'node:net';
import { clearTextProblem, ctiUrl, tokenOf } from '../zammad/endpoint-url.js';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'])
  .transform((v) => ['true', '1', 'yes', 'on'].includes(v));

const port = z.coerce.number().int().min(0).max(65535);
const ms = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const list = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0),
);

/** Addresses and CIDRs (IPv4 or IPv6) allowed to connect to the ESL listener. */
const cidrList = list.superRefine((items, ctx) => {
  for (const item of items) {
    const [addr, bits, extra] = item.split('/');
    const family = isIP(addr ?? '');
    const maxBits = family === 6 ? 128 : 32;
    const okBits = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= maxBits);
    if (family === 0 || !okBits || extra !== undefined) {
      ctx.addIssue({ code: 'custom', message: `"${item}" is not an IP address or CIDR` });
    }
  }
});

const NO_ENDPOINT =
  'is required (or ZAMMAD_ENDPOINTS_FILE): the endpoint from Zammad → Admin → Integrations → CTI (generic)';

export const ConfigSchema = z
  .object({
    // One of the two: the single endpoint, and/or a file of endpoints per tenant (endpoints-file.ts).
    ZAMMAD_CTI_URL: ctiUrl.optional(),
    ZAMMAD_ENDPOINTS_FILE: z.string().optional(),
    ZAMMAD_ALLOW_HTTP: bool.default(false),
    ZAMMAD_NEWCALL_TIMEOUT_MS: ms(50, 30_000).default(2000),
    ZAMMAD_REQUEST_TIMEOUT_MS: ms(100, 120_000).default(10_000),
    ZAMMAD_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(256).default(8),
    ZAMMAD_MAX_REPLY_BYTES: z.coerce.number().int().min(256).max(1_048_576).default(16_384),

    ESL_HOST: z.string().min(1).default('127.0.0.1'),
    ESL_PORT: port.default(8084),
    ESL_ALLOW: cidrList.default(['127.0.0.1/32', '::1/128']),
    ESL_IDLE_TIMEOUT_MS: ms(1000, 600_000).default(30_000),
    // A real event with all the channel's variables is 8-12 KB (test/fixtures/esl), more
    // with long SIP headers: a smaller bound would close every call's connection.
    ESL_MAX_FRAME_BYTES: z.coerce
      .number()
      .int()
      .min(65_536, 'must be at least 65536: one FreeSWITCH event is up to ~12 KB, more with long SIP headers')
      .max(16_777_216)
      .default(1_048_576),

    INBOUND_CONTEXTS: list.default(['public']),
    DEFAULT_COUNTRY_CODE: z
      .string()
      .regex(/^[1-9]\d{0,2}$/, 'must be a country calling code like 49')
      .default('49'),
    EXTENSION_MAX_DIGITS: z.coerce.number().int().min(1).max(10).default(6),
    // Empty: dialplan mode — the adapter hands each call back to the dialplan after Zammad's
    // decision. A dial string: bridge mode for calls without zammad_bridge.
    DEFAULT_BRIDGE: z
      .string()
      .refine((s) => !/[\r\n]/.test(s), 'must be one line')
      .default(''),

    OUTBOX_PATH: z.string().min(1).default('./data/outbox.sqlite'),
    OUTBOX_MAX_AGE_HOURS: z.coerce
      .number()
      .min(0.01)
      .max(24 * 365)
      .default(72),
    OUTBOX_MAX_EVENTS: z.coerce.number().int().min(100).max(10_000_000).default(200_000),
    RETRY_BASE_MS: ms(10, 60_000).default(500),
    RETRY_MAX_MS: ms(100, 3_600_000).default(60_000),

    SHUTDOWN_DRAIN_MS: ms(0, 3_600_000).default(30_000),
    FS_INBOUND_HOST: z.string().default(''),
    FS_INBOUND_PORT: port.default(8021),
    FS_INBOUND_PASSWORD: z.string().default(''),

    STATUS_HOST: z.string().min(1).default('127.0.0.1'),
    STATUS_PORT: port.default(8088),
    READY_MAX_BACKLOG: z.coerce.number().int().min(1).default(1000),

    LOG_LEVEL: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
    LOG_FORMAT: z.enum(['auto', 'json', 'pretty']).default('auto'),
  })
  .superRefine((c, ctx) => {
    if (c.ZAMMAD_CTI_URL === undefined && c.ZAMMAD_ENDPOINTS_FILE === undefined) {
      ctx.addIssue({ code: 'custom', path: ['ZAMMAD_CTI_URL'], message: NO_ENDPOINT });
    }
    const clear = c.ZAMMAD_CTI_URL === undefined ? undefined : clearTextProblem(c.ZAMMAD_CTI_URL, c.ZAMMAD_ALLOW_HTTP);
    if (clear) ctx.addIssue({ code: 'custom', path: ['ZAMMAD_CTI_URL'], message: clear });
    if (c.RETRY_MAX_MS < c.RETRY_BASE_MS) {
      ctx.addIssue({ code: 'custom', path: ['RETRY_MAX_MS'], message: 'must not be below RETRY_BASE_MS' });
    }
  });

/** zammadToken: the token of ZAMMAD_CTI_URL ('' without it), a secret for the logs. */
export type Config = Readonly<z.output<typeof ConfigSchema>> & { readonly zammadToken: string };

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Variables the adapter no longer reads, with what to do instead. Set, they are logged as a warning
 * and ignored: an upgrade must not stop the service for a setting it can do without.
 */
const RETIRED: Readonly<Record<string, string>> = {
  WORKERS:
    'the adapter is one process; for more capacity run more instances ' +
    '(on one host each with its own ESL_PORT, OUTBOX_PATH and STATUS_PORT)',
};

/** One warning per retired variable set in `env` (empty counts as unset, as in loadConfig). */
export function retiredVariables(env: NodeJS.ProcessEnv): string[] {
  return Object.entries(RETIRED)
    .filter(([name]) => (env[name] ?? '').trim() !== '')
    .map(
      ([name, instead]) =>
        `${name} is no longer read and is ignored: ${instead}. Remove ${name} from the configuration.`,
    );
}

/** Reads only the variables the schema knows; empty strings count as unset so that `VAR=` in .env means "default". */
export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const known = Object.keys(ConfigSchema.shape);
  const input: Record<string, string> = {};
  for (const key of known) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') input[key] = value.trim();
  }
  const parsed = ConfigSchema.safeParse(input);
  // Checked here too: the schema's cross-field rules do not run while any other variable is bad.
  const noEndpoint = input['ZAMMAD_CTI_URL'] === undefined && input['ZAMMAD_ENDPOINTS_FILE'] === undefined;
  if (!parsed.success) {
    const issues = parsed.error.issues.filter((i) => !(noEndpoint && i.path[0] === 'ZAMMAD_CTI_URL'));
    if (noEndpoint)
      issues.unshift({ code: 'custom', path: ['ZAMMAD_CTI_URL'], message: NO_ENDPOINT, input: undefined });
    throw new ConfigError(
      issues.map((issue) => {
        const name = String(issue.path[0] ?? 'configuration');
        const shown = name === 'ZAMMAD_CTI_URL' ? '' : input[name] !== undefined ? ` (got "${input[name]}")` : '';
        return `${name}${shown}: ${issue.message}`;
      }),
    );
  }
  const zammadToken = parsed.data.ZAMMAD_CTI_URL === undefined ? '' : tokenOf(parsed.data.ZAMMAD_CTI_URL);
  return Object.freeze({ ...parsed.data, zammadToken });
}
