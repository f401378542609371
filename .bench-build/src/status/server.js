/**
 * Health on a port of its own: /healthz (the process is alive), /readyz (it can do its job),
 * /metrics (Prometheus). Never shows the Zammad token.
 */
import http from 'node:http';
export class StatusServer {
    metrics;
    readiness;
    refresh;
    server;
    constructor(metrics, readiness, refresh) {
        this.metrics = metrics;
        this.readiness = readiness;
        this.refresh = refresh;
        this.server = http.createServer((req, res) => void this.handle(req, res));
    }
    listen(host, port) {
        return new Promise((resolve, reject) => {
            this.server.once('error', reject);
            this.server.listen(port, host, () => {
                this.server.off('error', reject);
                resolve(this.server.address().port);
            });
        });
    }
    close() {
        this.server.closeAllConnections();
        return new Promise((resolve) => this.server.close(() => resolve()));
    }
    async handle(req, res) {
        const path = (req.url ?? '/').split('?')[0];
        if (req.method !== 'GET' && req.method !== 'HEAD')
            return this.send(res, 405, 'text/plain', 'method not allowed\n');
        if (path === '/healthz')
            return this.send(res, 200, 'application/json', '{"status":"ok"}\n');
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
    send(res, status, type, body) {
        res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
        res.end(body);
    }
}
//# sourceMappingURL=server.js.map