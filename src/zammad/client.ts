/**
 * HTTP to Zammad's CTI endpoint: one keep-alive undici pool, form posts, bounded time and
 * bounded reply size. It reports what happened; what that means for delivery is verdict.ts's job.
 */
import { Pool } from 'undici';

export type HttpOutcome =
  | { kind: 'response'; status: number; body: string; location?: string }
  /**
   * No HTTP answer. `sent`: whether the request was handed to a connected socket. When false,
   * Zammad provably never saw it (no connection, DNS, timed out while connecting or queued);
   * when true or unknown (undefined), Zammad may have stored it.
   */
  | { kind: 'failure'; error: string; code: string; sent?: boolean };

export interface ZammadClientOptions {
  url: string;
  maxConnections: number;
  maxReplyBytes: number;
}

/** TLS verification failures: Zammad's certificate is not trusted or does not name its host. */
const TLS_TRUST_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export class ZammadClient {
  private readonly pool: Pool;
  private readonly path: string;
  /** The token as it is in the URL and decoded: never handed out in anything this client returns. */
  private readonly secrets: string[];
  /** The endpoint with its token hidden, for logs and status pages. */
  readonly safeUrl: string;

  constructor(private readonly options: ZammadClientOptions) {
    const url = new URL(options.url);
    this.path = url.pathname + url.search;
    this.safeUrl = `${url.origin}${url.pathname.replace(/[^/]+\/?$/, '***')}`;
    const token = url.pathname.replace(/\/$/, '').split('/').pop() ?? '';
    let decoded = token;
    try {
      decoded = decodeURIComponent(token);
    } catch {
      // kept as it is
    }
    this.secrets = [...new Set([token, decoded, encodeURIComponent(decoded)])].filter((t) => t.length >= 4);
    this.pool = new Pool(url.origin, {
      connections: options.maxConnections,
      // Below the idle timeouts of the servers in front of Zammad (puma 20 s, nginx 75 s): the
      // adapter closes an idle connection first, so a request never races the server's close.
      keepAliveTimeout: 15_000,
      // Certificates are always verified, against Node's CA store plus NODE_EXTRA_CA_CERTS (a
      // private CA); NODE_TLS_REJECT_UNAUTHORIZED=0 in the environment does not turn that off.
      connect: { timeout: 5_000, rejectUnauthorized: true },
      // Per-request limits are passed with each request.
    });
  }

  /**
   * What Zammad (or a proxy in front of it) answers can echo the request path, i.e. the token:
   * a redirect's Location, an error text. Outcomes end up in logs, /readyz and metrics, so the
   * token is cut out here, where it is known, whatever it hides in.
   */
  private scrub(outcome: HttpOutcome): HttpOutcome {
    const clean = (text: string) =>
      this.secrets.reduce((t, secret) => (t.includes(secret) ? t.split(secret).join('***') : t), text);
    if (outcome.kind === 'failure') return { ...outcome, error: clean(outcome.error) };
    return {
      ...outcome,
      body: clean(outcome.body),
      ...(outcome.location !== undefined ? { location: clean(outcome.location) } : {}),
    };
  }

  /**
   * Posts one form body. `onSend` runs synchronously right before the request is written to a
   * connected socket (never when the connection fails): the outbox records "may have reached
   * Zammad" on disk there. undici's dispatcher is used directly because only it tells whether
   * a request was written (pool.request() hides that), and that decides what may be re-sent.
   */
  post(body: string, timeoutMs: number, onSend?: () => void): Promise<HttpOutcome> {
    return new Promise<HttpOutcome>((resolve) => {
      let settled = false;
      let sent = false;
      let abort: ((err?: Error) => void) | undefined;
      let status = 0;
      let location: string | undefined;
      const chunks: Buffer[] = [];
      let size = 0;
      const finish = (outcome: HttpOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(this.scrub(outcome));
      };
      const response = (): HttpOutcome => ({
        kind: 'response',
        status,
        body: Buffer.concat(chunks).toString('utf8'),
        ...(location !== undefined ? { location } : {}),
      });
      const timer = setTimeout(() => {
        // Not yet on a socket (queued or connecting): onConnect aborts it before it is written.
        finish({ kind: 'failure', code: 'TIMEOUT', error: `no answer within ${timeoutMs} ms`, sent });
        abort?.(new Error('timeout'));
      }, timeoutMs);
      const handler = {
        onConnect: (abortRequest: (err?: Error) => void) => {
          abort = abortRequest;
          if (settled) return abortRequest(new Error('timeout'));
          sent = true;
          try {
            onSend?.();
          } catch (err) {
            // The mark on disk failed: better not to send than to send unmarked.
            sent = false;
            abortRequest(err instanceof Error ? err : new Error(String(err)));
          }
        },
        onHeaders: (statusCode: number, rawHeaders: (Buffer | string)[] | null) => {
          if (statusCode < 200) return true;
          status = statusCode;
          for (let i = 0; rawHeaders && i + 1 < rawHeaders.length; i += 2) {
            if (String(rawHeaders[i]).toLowerCase() === 'location') location = String(rawHeaders[i + 1]);
          }
          return true;
        },
        onData: (chunk: Buffer) => {
          size += chunk.length;
          if (size > this.options.maxReplyBytes) {
            // A larger or endless reply is cut and the socket dropped; what arrived counts.
            chunks.push(chunk.subarray(0, chunk.length - (size - this.options.maxReplyBytes)));
            finish(response());
            abort?.(new Error('reply too large'));
            return false;
          }
          chunks.push(chunk);
          return true;
        },
        onComplete: () => finish(response()),
        onError: (err: Error) => {
          const e = err as { code?: string; name?: string; message?: string };
          const code = e.code ?? e.name ?? 'ERROR';
          const error = TLS_TRUST_CODES.has(code)
            ? `Zammad's TLS certificate was refused (${e.message ?? code}): for a private CA, ` +
              'set NODE_EXTRA_CA_CERTS to its PEM file; the certificate must name the host of ZAMMAD_CTI_URL'
            : (e.message ?? String(err));
          finish({ kind: 'failure', code, error, sent });
        },
      };
      try {
        this.pool.dispatch(
          {
            method: 'POST',
            path: this.path,
            headers: {
              'content-type': 'application/x-www-form-urlencoded; charset=utf-8',
              // Without it Zammad answers unexpected errors with an HTML page.
              accept: 'application/json',
            },
            body,
            headersTimeout: timeoutMs,
            bodyTimeout: timeoutMs,
          },
          handler as unknown as Parameters<Pool['dispatch']>[1],
        );
      } catch (err) {
        handler.onError(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  destroy(): Promise<void> {
    return this.pool.destroy();
  }
}
