/**
 * HTTP to Zammad's CTI endpoint: one keep-alive undici pool, form posts, bounded time and
 * bounded reply size. It reports what happened; what that means for delivery is verdict.ts's job.
 */
import { Pool } from 'undici';

export type HttpOutcome =
  | { kind: 'response'; status: number; body: string; location?: string }
  | { kind: 'failure'; error: string; code: string };

export interface ZammadClientOptions {
  url: string;
  maxConnections: number;
  maxReplyBytes: number;
}

export class ZammadClient {
  private readonly pool: Pool;
  private readonly path: string;
  /** The endpoint with its token hidden, for logs and status pages. */
  readonly safeUrl: string;

  constructor(private readonly options: ZammadClientOptions) {
    const url = new URL(options.url);
    this.path = url.pathname + url.search;
    this.safeUrl = `${url.origin}${url.pathname.replace(/[^/]+\/?$/, '***')}`;
    this.pool = new Pool(url.origin, {
      connections: options.maxConnections,
      keepAliveTimeout: 30_000,
      connect: { timeout: 5_000 },
      // Per-request limits are passed with each request.
    });
  }

  async post(body: string, timeoutMs: number): Promise<HttpOutcome> {
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const res = await this.pool.request({
        method: 'POST',
        path: this.path,
        headers: {
          'content-type': 'application/x-www-form-urlencoded; charset=utf-8',
          // Without it Zammad answers unexpected errors with an HTML page.
          accept: 'application/json',
        },
        body,
        signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const text = await this.readBounded(res.body);
      const location = res.headers['location'];
      return {
        kind: 'response',
        status: res.statusCode,
        body: text,
        ...(typeof location === 'string' ? { location } : {}),
      };
    } catch (err) {
      const e = err as { code?: string; name?: string; message?: string };
      const code = signal.aborted ? 'TIMEOUT' : (e.code ?? e.name ?? 'ERROR');
      return { kind: 'failure', code, error: signal.aborted ? `no answer within ${timeoutMs} ms` : (e.message ?? String(err)) };
    }
  }

  /** Reads at most maxReplyBytes of a reply; a larger or endless one is cut and the socket dropped. */
  private async readBounded(body: AsyncIterable<Buffer> & { destroy(err?: Error): unknown }): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body) {
      size += chunk.length;
      if (size > this.options.maxReplyBytes) {
        chunks.push(chunk.subarray(0, chunk.length - (size - this.options.maxReplyBytes)));
        body.destroy();
        break;
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  destroy(): Promise<void> {
    return this.pool.destroy();
  }
}
