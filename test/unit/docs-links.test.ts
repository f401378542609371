/**
 * Every relative link of the project's documentation resolves: the file (or folder) exists, and
 * an anchor (`path.md#anchor`, `#anchor`) names a heading of that Markdown file, slugged the way
 * GitHub does. http(s) and mailto links are not checked (no network in tests).
 * Documents: README.md, CONTRIBUTING.md, docs/**, conf/**, bench/README.md.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function markdownUnder(dir: string): string[] {
  const abs = path.join(ROOT, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.md'))
    .map((f) => path.join(dir, f));
}

const DOCUMENTS = [
  'README.md',
  'CONTRIBUTING.md',
  'bench/README.md',
  ...markdownUnder('docs'),
  ...markdownUnder('conf'),
];

/** The text with fenced code blocks and inline code blanked out (links there are examples, not links). */
function withoutCode(text: string): string[] {
  const lines = text.split('\n');
  let fence: string | undefined;
  return lines.map((line) => {
    const m = /^\s*(`{3,}|~{3,})/.exec(line);
    if (m) {
      if (fence === undefined) fence = m[1]![0]!;
      else if (m[1]![0] === fence) fence = undefined;
      return '';
    }
    if (fence !== undefined) return '';
    return line.replace(/`[^`]*`/g, (s) => ' '.repeat(s.length));
  });
}

/** GitHub's heading anchor: lower case, punctuation dropped (letters, digits, `-`, `_` kept), each space a `-`. */
function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links: their text
    .replace(/<[^>]+>/g, '') // inline HTML
    .replace(/[`*]/g, '') // code and emphasis marks
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{N}\p{M} _-]/gu, '').replace(/ /g, '-');
}

/** The anchors of one Markdown file, duplicates numbered as GitHub does (`x`, `x-1`, `x-2`). */
function anchorsOf(file: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  let fence: string | undefined;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const f = /^\s*(`{3,}|~{3,})/.exec(line);
    if (f) {
      if (fence === undefined) fence = f[1]![0]!;
      else if (f[1]![0] === fence) fence = undefined;
      continue;
    }
    if (fence !== undefined) continue;
    const h = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const base = slug(h[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  for (const m of readFileSync(file, 'utf8').matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) anchors.add(m[1]!);
  return anchors;
}

interface Link {
  doc: string;
  line: number;
  target: string;
}

function linksOf(doc: string): Link[] {
  const links: Link[] = [];
  withoutCode(readFileSync(path.join(ROOT, doc), 'utf8')).forEach((text, i) => {
    // [text](target "title") and ![alt](target)
    for (const m of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g))
      links.push({ doc, line: i + 1, target: m[1]! });
    // [label]: target
    const ref = /^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/.exec(text);
    if (ref) links.push({ doc, line: i + 1, target: ref[1]! });
  });
  return links;
}

/** Why a link is broken, or undefined when it resolves. */
function problemOf(link: Link): string | undefined {
  const { target } = link;
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return undefined; // http:, https:, mailto:
  const hash = target.indexOf('#');
  const pathPart = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
  const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
  if (pathPart.startsWith('/')) return 'absolute path: write it relative to the document';
  const file = pathPart === '' ? path.join(ROOT, link.doc) : path.resolve(ROOT, path.dirname(link.doc), pathPart);
  if (!file.startsWith(ROOT + path.sep) && file !== ROOT) return 'points outside the repository';
  if (!existsSync(file)) return 'no such file';
  if (anchor === undefined || anchor === '') return undefined;
  if (statSync(file).isDirectory() || !file.endsWith('.md')) return undefined; // line anchors of source files etc.
  return anchorsOf(file).has(anchor)
    ? undefined
    : `no heading with the anchor #${anchor} in ${path.relative(ROOT, file)}`;
}

test('slug: the anchors GitHub gives headings', () => {
  assert.equal(slug('Checks, in order'), 'checks-in-order');
  assert.equal(slug('Status codes at a glance'), 'status-codes-at-a-glance');
  assert.equal(slug('State per call (Cti::Log)'), 'state-per-call-ctilog');
  assert.equal(
    slug('The inbound event socket (`event_socket.conf.xml`)'),
    'the-inbound-event-socket-event_socketconfxml',
  );
  assert.equal(slug('Queue, notifications and screen pop'), 'queue-notifications-and-screen-pop');
  assert.equal(slug('Health, metrics and logs — what to watch'), 'health-metrics-and-logs--what-to-watch');
});

test('every relative link and anchor in the documentation resolves', () => {
  const docs = DOCUMENTS.filter((d) => existsSync(path.join(ROOT, d)));
  assert.ok(docs.includes('README.md'), 'README.md is read');
  const links = docs.flatMap(linksOf);
  assert.ok(links.length > 0, 'no links found: the link reader is broken');
  const broken = links.flatMap((l) => {
    const why = problemOf(l);
    return why === undefined ? [] : [`${l.doc}:${l.line}: ${l.target} — ${why}`];
  });
  assert.equal(broken.length, 0, `${broken.length} broken link(s):\n${broken.join('\n')}`);
});
