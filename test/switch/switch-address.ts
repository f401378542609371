/**
 * Where the real FreeSWITCH is: FS_TEST_ESL (host:port, default 127.0.0.1:8021) and
 * FS_TEST_ESL_PASSWORD (default ClueCon). This is the one place any test reads the shell's
 * environment (issue 10: the switch's address is the allowed exception).
 */
import type { EslAddress } from './esl-client.js';

export function switchAddress(env: NodeJS.ProcessEnv = process.env): EslAddress {
  const raw = env['FS_TEST_ESL'] || '127.0.0.1:8021';
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(raw);
  if (!m) throw new Error(`FS_TEST_ESL must be HOST:PORT, got ${JSON.stringify(raw)}`);
  return { host: (m[1] ?? m[2]) as string, port: Number(m[3]), password: env['FS_TEST_ESL_PASSWORD'] || 'ClueCon' };
}
