#!/usr/bin/env node
/**
 * Lines of code are at most 120 characters. Biome's formatter keeps code within that width but
 * leaves comments and string literals as they are: this check covers them. A line holding a URL
 * is exempt (a URL cannot be wrapped). Checks the files git knows, so build output and
 * node_modules are never read.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const MAX = 120;
const CODE = /\.(ts|mts|js|mjs|cjs|sh)$/;
const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
  encoding: 'utf8',
})
  .split('\0')
  .filter((f) => CODE.test(f) && !f.startsWith('test/fixtures/'));

const long = [];
for (const file of files) {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    continue; // deleted in the work tree, not yet in the index
  }
  text.split('\n').forEach((line, i) => {
    if ([...line].length > MAX && !/\bhttps?:\/\//.test(line))
      long.push(`${file}:${i + 1}: ${[...line].length} characters`);
  });
}
if (long.length > 0) {
  process.stderr.write(`${long.join('\n')}\n${long.length} line(s) longer than ${MAX} characters: wrap them.\n`);
  process.exit(1);
}
process.stdout.write(`line length: ${files.length} files, every line ≤ ${MAX} characters\n`);
