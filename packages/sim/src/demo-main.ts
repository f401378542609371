/**
 * `npm run demo [-- --verbose]`: runs the demo (demo.ts) and exits 0 once every call it placed is
 * in the Zammad double's caller log, 1 otherwise, 2 on a wrong argument.
 */
import { parseArgs } from 'node:util';
import { runDemo } from './demo.js';

const print = (line: string): void => void process.stdout.write(`${line}\n`);

async function main(args: string[]): Promise<number> {
  let verbose: boolean;
  try {
    const options = { verbose: { type: 'boolean' } } as const;
    const { values } = parseArgs({ args, strict: true, allowPositionals: false, options });
    verbose = values.verbose === true;
  } catch (err) {
    process.stderr.write(`error: demo: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  const run = await runDemo(print, { verbose });
  return run.entries.length === run.placed ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
