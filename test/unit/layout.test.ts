/**
 * The code's layout rules, read from the files themselves:
 *  - product code (src/) imports nothing from test/, bench/ or packages/: the package and the
 *    image ship src/ only; the simulators (`npm run demo`, tests, bench) are the private
 *    workspace package packages/sim, which may import the product, never the other way round;
 *  - what src/ imports from npm is a runtime dependency: the image installs those only;
 *  - a clone stands alone: no code names a place outside the repository (only the real-switch
 *    suite, test/switch/, knows where the disposable FreeSWITCH lives).
 *  - no file in src/ is over 500 lines.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SIM = '@freeswitch-zammad-cti/sim';

/** Every .ts file under src/, as paths relative to the repository. */
function sourceFiles(): string[] {
  return (readdirSync(join(ROOT, 'src'), { recursive: true }) as string[])
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join('src', f))
    .sort();
}

/** The module specifiers a file imports or re-exports: static, side-effect-only and dynamic imports, require(). */
export function specifiers(text: string): string[] {
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?[^'";]*?\sfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) found.push(m[1] as string);
  return found;
}

/** The repository folder a specifier of `file` reaches ('test', 'bench', 'src', …), or null for a package. */
function reaches(file: string, spec: string): string | null {
  if (spec.startsWith('.')) return relative(ROOT, resolve(ROOT, dirname(file), spec)).split(sep)[0] ?? null;
  if (spec === SIM || spec.startsWith(`${SIM}/`)) return 'packages (the sim package)';
  if (spec.startsWith('/') || spec.startsWith('file:'))
    return /[/\\](test|bench)[/\\]/.test(spec) ? 'test or bench (absolute path)' : 'an absolute path';
  return null;
}

test('the specifier reader finds every kind of import (including one that reaches test/)', () => {
  const text = [
    "import { a } from '../../test/doubles/x.js';",
    "import type { B } from './b.js';",
    "export { c } from '../sim/c.js';",
    "export * from './d.js';",
    "import './side-effect.js';",
    "const e = await import('../../test/e.js');",
    'import {\n  f,\n  type G,\n} from "../../bench/f.js";',
  ].join('\n');
  assert.deepEqual(
    specifiers(text).sort(),
    [
      '../../bench/f.js',
      '../../test/doubles/x.js',
      '../../test/e.js',
      '../sim/c.js',
      './b.js',
      './d.js',
      './side-effect.js',
    ].sort(),
  );
  assert.equal(reaches('src/cli/check.ts', '../../test/doubles/switch.js'), 'test');
  assert.equal(reaches('src/cli/check.ts', '../../packages/sim/src/switch.js'), 'packages');
  assert.equal(reaches('src/cli/check.ts', '../sim/switch.js'), 'src');
  assert.equal(reaches('src/cli/check.ts', '/repo/test/doubles/switch.js'), 'test or bench (absolute path)');
  assert.equal(reaches('src/cli/check.ts', '@freeswitch-zammad-cti/sim/switch'), 'packages (the sim package)');
});

test('src/ imports nothing from test/, bench/ or packages/ (the product never imports a tool)', () => {
  const files = sourceFiles();
  assert.ok(files.length > 20, `src/ has ${files.length} .ts files?`);
  const bad: string[] = [];
  for (const file of files) {
    for (const spec of specifiers(readFileSync(join(ROOT, file), 'utf8'))) {
      const where = reaches(file, spec);
      if (where !== null && where !== 'src') bad.push(`${file}: import '${spec}' (reaches ${where})`);
    }
  }
  assert.deepEqual(bad, [], 'move what src/ needs into src/ (the simulators are in packages/sim/, not shipped)');
});

test('every package src/ imports is a runtime dependency (the image installs no devDependencies)', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  const runtime = new Set(Object.keys(pkg.dependencies ?? {}));
  const builtins = new Set(builtinModules);
  const bad: string[] = [];
  for (const file of sourceFiles()) {
    for (const spec of specifiers(readFileSync(join(ROOT, file), 'utf8'))) {
      if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('node:') || builtins.has(spec)) continue;
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] as string);
      if (!runtime.has(name)) bad.push(`${file}: '${spec}' (${name} is not in dependencies)`);
    }
  }
  assert.deepEqual(bad, []);
});

/** Every file under these folders, relative to the repository; build output and installs left out. */
function repositoryFiles(folders: string[]): string[] {
  const skipped = /(^|[/\\])(node_modules|\.[^/\\]+)([/\\]|$)/; // node_modules, bench/.build, …
  return folders.flatMap((folder) =>
    (readdirSync(join(ROOT, folder), { recursive: true }) as string[])
      .map((f) => join(folder, f))
      .filter((f) => (!skipped.test(f) || f.endsWith('.gitattributes')) && statSync(join(ROOT, f)).isFile()),
  );
}

test('a clone stands alone: no file names a place outside the repository (test/switch/ aside)', () => {
  // Spelled in parts so that this file does not name them itself.
  const outside = new RegExp([String.raw`\.\.[/]shared`, '[/]shared[/](esl-transcripts|spec)', '[/]work[/]'].join('|'));
  const bad: string[] = [];
  for (const file of repositoryFiles(['src', 'test', 'bench', 'packages'])) {
    if (file.startsWith(join('test', 'switch') + sep)) continue; // the real-switch suite knows its FreeSWITCH
    const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (outside.test(line)) bad.push(`${file}:${i + 1}: ${line.trim().slice(0, 100)}`);
    });
  }
  assert.deepEqual(bad, [], "cite the repository's own files (test/fixtures/esl/, docs/reference/)");
});

test('no file in src/ has more than 500 lines (a longer one holds more than one idea: split it along a seam)', () => {
  const MAX_LINES = 500;
  const long = sourceFiles()
    .map((file) => ({ file, lines: readFileSync(join(ROOT, file), 'utf8').split('\n').length - 1 }))
    .filter((f) => f.lines > MAX_LINES)
    .map((f) => `${f.file}: ${f.lines} lines`);
  assert.deepEqual(long, []);
});
