#!/usr/bin/env node
/**
 * Command line: `freeswitch-zammad-cti [start|check|simulate|replay|help]`.
 *   start     run the service (the default when no command is given)
 *   check     validate the configuration and test Zammad's endpoint and token; creates nothing
 *   simulate  send one scripted call to Zammad, the way the adapter does
 *   replay    post the events a stop could neither deliver nor store (its unsaved file or log)
 * Configuration comes from the environment and .env, as for the service. Exit codes: 0 ok,
 * 1 the check / simulation failed, 2 usage or configuration error.
 */
import { parseArgs } from 'node:util';

const USAGE = [
  'Usage: freeswitch-zammad-cti [command] [options]',
  '',
  'Commands:',
  '  start      run the adapter (default when no command is given)',
  '  check      validate the configuration and test ZAMMAD_CTI_URL (reachable, token, integration on);',
  '             creates nothing in Zammad',
  '  simulate   send one complete call to Zammad as the adapter would (see "simulate --help")',
  '  replay     post the events a stop could neither deliver nor store: replay FILE (see "replay --help")',
  '  help       this text; "help check" / "help simulate" for a command',
  '',
  'Configuration: environment variables and a .env file in the working directory (see .env.example).',
  'Exit codes: 0 ok, 1 the check or simulation failed, 2 usage or configuration error.',
].join('\n');

const print = (line: string): void => void process.stdout.write(`${line}\n`);
const printErr = (line: string): void => void process.stderr.write(`${line}\n`);

/** .env as the service reads it (dotenv/config, DOTENV_CONFIG_* honoured), without dotenv's banner on stdout. */
async function loadDotenv(): Promise<void> {
  process.env['DOTENV_CONFIG_QUIET'] ??= 'true';
  await import('dotenv/config');
}

function noArguments(command: string, args: string[]): boolean {
  try {
    parseArgs({ args, strict: true, allowPositionals: false, options: {} });
    return true;
  } catch (err) {
    printErr(`error: ${command}: ${err instanceof Error ? err.message : String(err)}`);
    return false;
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case 'start': {
      if (rest.length > 0 && (rest[0] === '--help' || rest[0] === '-h')) {
        print(
          'Usage: freeswitch-zammad-cti [start]\n\n' +
            'Runs the adapter; every setting is an environment variable (see .env.example).',
        );
        return 0;
      }
      if (!noArguments('start', rest)) return 2;
      await import('../main.js'); // reads .env itself; exits on its own (2 on a bad configuration)
      return -1;
    }
    case 'check': {
      const { runCheck, CHECK_USAGE } = await import('./check.js');
      if (rest.length === 1 && (rest[0] === '--help' || rest[0] === '-h')) {
        print(CHECK_USAGE);
        return 0;
      }
      if (!noArguments('check', rest)) {
        printErr('Run "freeswitch-zammad-cti check --help".');
        return 2;
      }
      await loadDotenv();
      return runCheck(process.env, print);
    }
    case 'simulate': {
      const { runSimulate } = await import('./simulate.js');
      await loadDotenv();
      return runSimulate(rest, process.env, print);
    }
    case 'replay': {
      const { runReplay } = await import('./replay.js');
      await loadDotenv();
      return runReplay(rest, process.env, print);
    }
    case 'help':
    case '--help':
    case '-h': {
      const topic = rest[0];
      if (topic === 'check') print((await import('./check.js')).CHECK_USAGE);
      else if (topic === 'simulate') print((await import('./simulate.js')).SIMULATE_USAGE);
      else if (topic === 'replay') print((await import('./replay.js')).REPLAY_USAGE);
      else print(USAGE);
      return 0;
    }
    default:
      printErr(`error: unknown command "${command}"`);
      printErr('');
      printErr(USAGE);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    // -1: the service runs and decides its own exit.
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    printErr(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 1;
  },
);
