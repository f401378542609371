/**
 * Health on a port of its own: /healthz (the process is alive), /readyz (it can do its job),
 * /metrics (Prometheus). Never shows the Zammad token.
 */
import http from 'node:http';
import type { Metrics } from './metrics.js';

export interface Readiness {
  ready: boolean;
  checks: Record<string, { ok: boolean; detail?: string }>;
}

export class StatusServer {
  private readonly server: http.Server;

  constructor(
    private readonly metrics: Metrics,
    private readonly readiness: () => Readiness,
    private readonly refresh: () => void,
  ) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as { port: number }).port);
      });
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return this.send(res, 405, 'text/plain', 'method not allowed\n');
    if (path === '/healthz') return this.send(res, 200, 'application/json', '{"status":"ok"}\n');
    if (path === '/readyz') {
      const r = this.readiness();
      return this.send(res, r.ready ? 200 : 503, 'application/json', `${JSON.stringify(r)}\n`);
    }
    if (path === '/metrics') {
      this.refresh();
      return this.send(res, 200, this.metrics.registry.contentType, await this.metrics.registry.metrics());
    }
    return this.send(res, 404, 'text/plain', 'not found\n');
  }

  private send(res: http.ServerResponse, status: number, type: string, body: string): void {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(body);
  }
}
