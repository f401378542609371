/**
 * The whole environment of a program that a test (or the bench smoke test) starts: nothing of the
 * shell that ran `npm test` (a developer's exported ZAMMAD_CTI_URL or LOG_LEVEL), and no `.env`
 * of the working tree — the README's first command creates one, and the program reads `.env`
 * from its working directory (dotenv/config). DOTENV_CONFIG_PATH points dotenv at a file that
 * does not exist: dotenv then sets nothing and prints nothing (DOTENV_CONFIG_QUIET, the default
 * of dotenv/config, stated so that a shell's DOTENV_CONFIG_QUIET=false cannot matter).
 */
import { join } from 'node:path';
import { tmpdir } from 'node:os';

/** A path that is never a file: dotenv reads nothing from it. */
export const NO_DOTENV = join(tmpdir(), 'freeswitch-zammad-cti-tests-read-no-dotenv', '.env');

/** PATH and HOME from this process (to find programs), the dotenv switches, then `vars`. */
export function childEnv(vars: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env['PATH'] ?? '',
    HOME: process.env['HOME'] ?? '',
    DOTENV_CONFIG_PATH: NO_DOTENV,
    DOTENV_CONFIG_QUIET: 'true',
    ...vars,
  };
}
