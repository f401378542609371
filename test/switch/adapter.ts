/**
 * The adapter as users run it: `node dist/src/main.js` (built by `npm run build`), configured
 * only by environment, beside its own Zammad double. One "line" = one Zammad double + one adapter
 * listening on a port the suite picked (and writes into its dialplan's `socket` line).
 */
import { createServer } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { ZammadDouble, type ZammadDoubleOptions } from '@freeswitch-zammad-cti/sim/zammad';
import { startAdapter, tempOutbox, type AdapterProcess } from '../e2e/adapter-process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A free TCP port on 127.0.0.1 (bound, then released for the adapter to take). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface Line {
  name: string;
  zammad: ZammadDouble;
  /** the running program; replaced by restart() */
  adapter: AdapterProcess;
  eslPort: number;
  /** the environment the program was started with (OUTBOX_PATH included) */
  env: Record<string, string>;
  /**
   * Starts the program again with the same environment (same ESL_PORT, same OUTBOX_PATH) plus
   * `extra`, after the previous one exited (e.g. was SIGKILLed); `line.adapter` is the new one.
   */
  restart(extra?: Record<string, string>): Promise<AdapterProcess>;
  /** the token in the adapter's ZAMMAD_CTI_URL (differs from Zammad's with wrongToken) */
  adapterToken: string;
  stop(): Promise<void>;
}

export interface LineOptions {
  name: string;
  zammad?: Omit<ZammadDoubleOptions, 'token'>;
  /** the adapter's URL carries another token than Zammad's (Zammad answers 401) */
  wrongToken?: boolean;
  /** more environment for the adapter (strings) */
  env?: Record<string, string>;
}

export async function startLine(o: LineOptions): Promise<Line> {
  const main = join(ROOT, 'dist', 'src', 'main.js');
  if (!existsSync(main))
    throw new Error(`${main} is missing: run the suite with \`npm run test:switch\` (it builds dist first)`);
  const zammad = new ZammadDouble({ token: `tok-${randomUUID()}`, ...o.zammad });
  await zammad.start();
  const adapterToken = o.wrongToken ? `wrong-${randomUUID()}` : decodeURIComponent(zammad.url.split('/').pop() ?? '');
  const url = zammad.url.replace(/\/[^/]+$/, `/${encodeURIComponent(adapterToken)}`);
  const eslPort = await freePort();
  const env: Record<string, string> = {
    ZAMMAD_CTI_URL: url,
    ESL_PORT: String(eslPort),
    STATUS_PORT: '0',
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'debug',
    OUTBOX_PATH: tempOutbox(),
    // never the repo's .env: a path that does not exist, and no dotenv banner on stdout
    // (dotenv 17 prints "injected env …" unless quiet; env-options.js honours both names)
    DOTENV_CONFIG_PATH: join(ROOT, 'test', 'switch', 'no-such.env'),
    DOTENV_CONFIG_QUIET: 'true',
    ...o.env,
  };
  let adapter: AdapterProcess;
  try {
    adapter = await startAdapter(env, { program: 'dist' });
  } catch (err) {
    await zammad.stop();
    throw err;
  }
  if (adapter.eslPort !== eslPort)
    throw new Error(`${o.name}: adapter listens on ${adapter.eslPort}, expected ${eslPort}`);
  const line: Line = {
    name: o.name,
    zammad,
    adapter,
    eslPort,
    env,
    adapterToken,
    async restart(extra = {}) {
      await line.adapter.stop('SIGKILL');
      line.adapter = await startAdapter({ ...env, ...extra }, { program: 'dist' });
      if (line.adapter.eslPort !== eslPort)
        throw new Error(`${o.name}: restarted adapter listens on ${line.adapter.eslPort}, expected ${eslPort}`);
      return line.adapter;
    },
    async stop() {
      await line.adapter.stop();
      await zammad.stop();
    },
  };
  return line;
}
