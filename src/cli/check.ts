/**
 * `freeswitch-zammad-cti check`: is the configuration valid, and does Zammad take events from us?
 *
 * Creates nothing in Zammad. The test request is a newCall WITHOUT `direction`: Zammad runs its
 * checks in a fixed order (docs/reference/zammad.md, "Checks, in order") —
 * integration disabled (422), not configured (422), wrong token (401), then direction (422
 * "Invalid direction!", nothing stored). So "Invalid direction!" proves that the URL, the token
 * and the integration are all right, and nothing is left behind but a line in Zammad's own log.
 */
import { ConfigError, loadConfig, type Config } from '../process/config.js';
import { configuredEndpoints } from '../process/endpoints.js';
import { DEFAULT_ENDPOINT, EndpointsFileError, type Endpoint } from '../zammad/endpoints-file.js';
import { tokenOf } from '../zammad/endpoint-url.js';
import { ZammadClient, type HttpOutcome } from '../zammad/client.js';
import { readError } from '../zammad/replies.js';

const CHECK_CALL_ID = 'freeswitch-zammad-cti-check';
/** A valid event, no direction: Zammad answers 422 "Invalid direction!" after every other check and stores nothing. */
const CHECK_BODY = new URLSearchParams({ event: 'newCall', callId: CHECK_CALL_ID }).toString();

export const CHECK_USAGE = [
  'Usage: freeswitch-zammad-cti check',
  '',
  'Validates the configuration (environment and .env) and tests ZAMMAD_CTI_URL and every endpoint',
  'of ZAMMAD_ENDPOINTS_FILE: is Zammad reachable, is the token valid, is the CTI (generic)',
  'integration enabled and configured.',
  'Nothing is created in Zammad: the test request lacks `direction`, which Zammad refuses',
  'after all its other checks, without storing anything.',
  '',
  'Exit codes: 0 all good, 1 a check failed, 2 usage or configuration error.',
].join('\n');

const PASS = '✓';
const FAIL = '✗';
const SKIP = '·';
const FIX = '  →';

const ADMIN_PAGE = 'Zammad → Admin → Integrations → CTI (generic)';

export interface CheckVerdict {
  ok: boolean;
  lines: string[];
}

/**
 * What Zammad's answer to the direction-less test request says about the setup. Pure.
 * One line per check (endpoint reachable, integration enabled, token valid), then what to do.
 */
export function checkVerdict(outcome: HttpOutcome): CheckVerdict {
  if (outcome.kind === 'failure') return unreachable(outcome.code, outcome.error);

  const { status, body } = outcome;
  const { meaning, text: error } = readError(status, body);
  const said = error !== undefined ? ` "${error}"` : body.trim() === '' ? '' : ` ${describeBody(body)}`;
  const reached = `${PASS} endpoint reachable: Zammad answered ${status}${said}`;
  const notTested = (what: string, why: string) => `${SKIP} ${what}: not tested (${why})`;

  if (meaning === 'invalidDirection') {
    return {
      ok: true,
      lines: [
        reached,
        `${PASS} integration enabled and configured`,
        `${PASS} token valid`,
        `${PASS} Zammad accepts CTI events from this adapter (the test request stored nothing)`,
      ],
    };
  }

  if (meaning === 'disabled') {
    return {
      ok: false,
      lines: [
        reached,
        `${FAIL} integration enabled: the CTI (generic) integration is switched off`,
        notTested('token valid', 'Zammad checks the token only when the integration is on'),
        `${FIX} switch it on in ${ADMIN_PAGE}, save, then run check again`,
      ],
    };
  }

  if (meaning === 'notConfigured') {
    return {
      ok: false,
      lines: [
        reached,
        `${FAIL} integration enabled: the CTI (generic) integration is on but has never been configured`,
        notTested('token valid', 'Zammad checks the token only when the integration is configured'),
        `${FIX} open ${ADMIN_PAGE}, review the inbound/outbound settings and press Save once, then run check again`,
      ],
    };
  }

  if (status === 401) {
    const fromZammad = meaning === 'wrongToken';
    return {
      ok: false,
      lines: fromZammad
        ? [
            reached,
            `${PASS} integration enabled and configured`,
            `${FAIL} token valid: the token in ZAMMAD_CTI_URL is wrong (or was regenerated in Zammad)`,
            `${FIX} copy the endpoint again from ${ADMIN_PAGE} → Endpoint into ZAMMAD_CTI_URL`,
          ]
        : [
            `${FAIL} endpoint reachable: the server answered 401${said}, but not the way Zammad does`,
            notTested('integration enabled', 'the request did not reach Zammad'),
            notTested('token valid', 'the request did not reach Zammad'),
            `${FIX} something in front of Zammad (a proxy with a login?) refuses the request; ` +
              'the CTI endpoint needs no login, only the token in the URL',
          ],
    };
  }

  const unknownBeyond = [
    notTested('integration enabled', "no answer from Zammad's CTI endpoint"),
    notTested('token valid', "no answer from Zammad's CTI endpoint"),
  ];

  if (status >= 300 && status < 400) {
    const target = outcome.location !== undefined ? hideTokenInLocation(outcome.location) : undefined;
    const toHttps = outcome.location !== undefined && /^https:/i.test(outcome.location);
    return {
      ok: false,
      lines: [
        `${FAIL} endpoint reachable: the server redirects ` +
          `(${status}${target !== undefined ? ` to ${target}` : ''}); the adapter does not follow redirects`,
        ...unknownBeyond,
        toHttps
          ? `${FIX} use the https:// address in ZAMMAD_CTI_URL (copy it from ${ADMIN_PAGE} → Endpoint)`
          : `${FIX} ZAMMAD_CTI_URL does not point at the endpoint itself: copy it from ${ADMIN_PAGE} → Endpoint ` +
            '(check https and the host name)',
      ],
    };
  }

  if (status === 404) {
    return {
      ok: false,
      lines: [
        `${FAIL} endpoint reachable: the server answered 404${said}: there is no CTI endpoint at this URL`,
        ...unknownBeyond,
        `${FIX} check host, port and path of ZAMMAD_CTI_URL: it must be Zammad's address ending in ` +
          `/api/v1/cti/<token>, as shown in ${ADMIN_PAGE} → Endpoint`,
      ],
    };
  }

  if (status === 403) {
    return {
      ok: false,
      lines: [
        `${FAIL} endpoint reachable: the server answered 403${said}`,
        ...unknownBeyond,
        `${FIX} a proxy or firewall in front of Zammad blocks this host; ` +
          'allow POST requests to /api/v1/cti/ from the adapter',
      ],
    };
  }

  if (status === 502 || status === 503 || status === 504) {
    return {
      ok: false,
      lines: [
        `${FAIL} endpoint reachable: a proxy answered ${status}${said}: Zammad behind it is down or too slow`,
        ...unknownBeyond,
        `${FIX} check that Zammad (its rails server) is running, then run check again`,
      ],
    };
  }

  if (status >= 500) {
    const json = error !== undefined;
    return {
      ok: false,
      lines: [
        `${FAIL} endpoint reachable: the server answered ${status}${said}`,
        ...unknownBeyond,
        json
          ? `${FIX} Zammad failed with an internal error: look in Zammad's log (log/production.log) ` +
            'for the request to /api/v1/cti/'
          : `${FIX} an error page instead of Zammad's JSON: a server fault in Zammad or in a proxy in front of it; ` +
            "look in Zammad's log (log/production.log) and the proxy's",
      ],
    };
  }

  if (status >= 200 && status < 300) {
    return {
      ok: false,
      lines: [
        `${FAIL} endpoint reachable: the server answered ${status}${said} to a request that Zammad always ` +
          "refuses: this does not look like Zammad's CTI endpoint",
        ...unknownBeyond,
        `${FIX} copy the endpoint again from ${ADMIN_PAGE} → Endpoint into ZAMMAD_CTI_URL`,
      ],
    };
  }

  return {
    ok: false,
    lines: [
      `${FAIL} endpoint reachable: the server answered ${status}${said}, ` +
        "which Zammad's CTI endpoint does not send for this request",
      ...unknownBeyond,
      `${FIX} check ZAMMAD_CTI_URL (copy it from ${ADMIN_PAGE} → Endpoint) and any proxy in front of Zammad`,
    ],
  };
}

/** Network failures by cause: DNS, refused, TLS certificate, timeout, … */
function unreachable(code: string, error: string): CheckVerdict {
  const detail = `(${code}: ${oneLine(error, 160)})`;
  const rest = [
    `${SKIP} integration enabled: not tested (Zammad not reached)`,
    `${SKIP} token valid: not tested (Zammad not reached)`,
  ];
  const result = (what: string, fix: string[]): CheckVerdict => ({
    ok: false,
    lines: [`${FAIL} endpoint reachable: ${what} ${detail}`, ...rest, ...fix.map((f) => `${FIX} ${f}`)],
  });
  const c = code.toUpperCase();

  if (['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL', 'EAI_NODATA'].includes(c)) {
    return result('DNS: the host name of ZAMMAD_CTI_URL cannot be resolved', [
      c === 'EAI_AGAIN'
        ? 'the DNS server did not answer in time: check the resolver of this machine (/etc/resolv.conf)'
        : "check the host name in ZAMMAD_CTI_URL for typos and that this machine's DNS knows it",
    ]);
  }
  if (c === 'ECONNREFUSED') {
    return result('connection refused: nothing listens at that host and port', [
      'check host and port in ZAMMAD_CTI_URL (https defaults to 443, http to 80) ' +
        'and that Zammad / its web server is running',
    ]);
  }
  if (
    [
      'TIMEOUT',
      'ETIMEDOUT',
      'UND_ERR_CONNECT_TIMEOUT',
      'UND_ERR_HEADERS_TIMEOUT',
      'UND_ERR_BODY_TIMEOUT',
      'ABORTERR',
    ].includes(c)
  ) {
    return result('timeout: no answer in time', [
      'a firewall may drop the packets, the host may be wrong, or Zammad is overloaded; ' +
        'ZAMMAD_REQUEST_TIMEOUT_MS sets how long the check waits',
    ]);
  }
  if (isCertificateError(c, error)) {
    const fix =
      c === 'CERT_HAS_EXPIRED'
        ? ["Zammad's TLS certificate has expired: renew it"]
        : c === 'ERR_TLS_CERT_ALTNAME_INVALID'
          ? ['the certificate is not issued for the host name in ZAMMAD_CTI_URL: use the name the certificate is for']
          : [
              "Node does not trust Zammad's certificate: if it comes from a private (company) " +
                "CA or is self-signed, point NODE_EXTRA_CA_CERTS at that CA's PEM file (e.g. " +
                'NODE_EXTRA_CA_CERTS=/etc/ssl/private/zammad-ca.pem; Node reads it at start-up, .env is too late: ' +
                'set it in the environment / service unit)',
              'if it is a public certificate, the server may not send its intermediate certificates: ' +
                'fix the chain on the web server',
            ];
    return result('TLS certificate not accepted', fix);
  }
  if (c === 'EPROTO' || c.startsWith('ERR_SSL') || /wrong version number|ssl routines/i.test(error)) {
    return result('TLS handshake failed', [
      'does the port speak https? An https:// URL to a plain-http port (or the other way round) fails like this',
    ]);
  }
  if (['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED'].includes(c)) {
    return result('the connection was closed before an answer came', [
      'a proxy or firewall between here and Zammad drops the request; check its logs',
    ]);
  }
  if (['EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'EHOSTDOWN'].includes(c)) {
    return result('no route to the host', ['check the network / firewall between this machine and Zammad']);
  }
  return result('cannot connect', ['check ZAMMAD_CTI_URL and the network between this machine and Zammad']);
}

const CERT_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function isCertificateError(code: string, error: string): boolean {
  return CERT_CODES.has(code) || /CERT|SELF_SIGNED/.test(code) || /certificate/i.test(error);
}

/** A redirect target with the token hidden (it may repeat our URL). */
function hideTokenInLocation(location: string): string {
  try {
    const u = new URL(location, 'relative://x');
    const path = u.pathname.replace(/(\/api\/v1\/cti\/)[^/]+/, '$1***');
    return u.protocol === 'relative:' ? path : `${u.origin}${path}`;
  } catch {
    return '(unreadable location)';
  }
}

function describeBody(body: string): string {
  if (/^\s*</.test(body)) {
    const title = /<title>([^<]*)<\/title>/i.exec(body)?.[1];
    return title !== undefined ? `(an HTML page: "${oneLine(title, 80)}")` : '(an HTML page)';
  }
  return `(${oneLine(body, 80)})`;
}

export function oneLine(text: string, max: number): string {
  const s = text.replace(/\s+/g, ' ').trim();
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

// ---------------------------------------------------------------------------------------------
// Shared by the CLI commands

/** Replaces the token (raw and URL-encoded) wherever it appears in a line; same rule as the logger (≥ 4 chars). */
function tokenScrubber(token: string): (line: string) => string {
  const needles = token.length >= 4 ? [...new Set([token, encodeURIComponent(token)])] : [];
  return (line) => {
    let s = line;
    for (const n of needles) if (s.includes(n)) s = s.split(n).join('***');
    return s;
  };
}

/** loadConfig for a CLI command: a ConfigError is printed and becomes exit code 2. */
export function configOrExit(env: NodeJS.ProcessEnv, out: (line: string) => void): Config | 2 {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const line of err.message.split('\n')) out(line);
      out("See .env.example and the README's configuration table.");
      return 2;
    }
    throw err;
  }
}

/** The configured endpoints for a CLI command: a bad endpoints file is printed and becomes exit code 2. */
export function endpointsOrExit(config: Config, out: (line: string) => void): Endpoint[] | 2 {
  try {
    return configuredEndpoints(config);
  } catch (err) {
    if (err instanceof EndpointsFileError) {
      for (const line of err.message.split('\n')) out(line);
      return 2;
    }
    throw err;
  }
}

/** Replaces every endpoint's token in a line. */
export function endpointsScrubber(endpoints: readonly Endpoint[]): (line: string) => string {
  const scrubbers = endpoints.map((e) => tokenScrubber(tokenOf(e.url)));
  return (line) => scrubbers.reduce((s, scrub) => scrub(s), line);
}

export function clientFor(endpoint: Endpoint, config: Config): ZammadClient {
  return new ZammadClient({ url: endpoint.url, maxConnections: 1, maxReplyBytes: config.ZAMMAD_MAX_REPLY_BYTES });
}

/** Runs the check; returns the exit code (0 ok, 1 a check failed, 2 configuration error). */
export async function runCheck(env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<number> {
  const config = configOrExit(env, (line) => out(line));
  if (config === 2) return 2;
  const endpoints = endpointsOrExit(config, (line) => out(line));
  if (endpoints === 2) return 2;
  const say = (
    (scrub) => (line: string) =>
      out(scrub(line))
  )(endpointsScrubber(endpoints));
  if (endpoints.length === 0) {
    say(`${FAIL} ZAMMAD_ENDPOINTS_FILE lists no endpoint and ZAMMAD_CTI_URL is not set: no call would be reported`);
    say('Result: FAILED');
    return 1;
  }
  // Every endpoint at once: a tenant's Zammad that does not answer must not hold up the others' checks.
  const results = await Promise.all(endpoints.map((e) => checkEndpoint(e, config)));
  let ok = true;
  endpoints.forEach((e, i) => {
    const { verdict, safe, plain } = results[i]!;
    const what =
      e.name === DEFAULT_ENDPOINT
        ? 'ZAMMAD_CTI_URL'
        : `endpoint "${e.name}" ` +
          `(${e.domains.length > 0 ? `domains ${e.domains.join(', ')}` : 'by zammad_endpoint only'})`;
    if (endpoints.length > 1) say('');
    say(`${PASS} configuration valid (${what} ${safe}${plain ? ', plain http' : ''})`);
    for (const line of verdict.lines) say(line);
    ok &&= verdict.ok;
  });
  if (endpoints.length > 1) say('');
  say(ok ? 'Result: OK' : 'Result: FAILED');
  return ok ? 0 : 1;
}

async function checkEndpoint(
  endpoint: Endpoint,
  config: Config,
): Promise<{ verdict: CheckVerdict; safe: string; plain: boolean }> {
  const client = clientFor(endpoint, config);
  try {
    const outcome = await client.post(CHECK_BODY, config.ZAMMAD_REQUEST_TIMEOUT_MS);
    return { verdict: checkVerdict(outcome), safe: client.safeUrl, plain: new URL(endpoint.url).protocol === 'http:' };
  } finally {
    await client.destroy();
  }
}
