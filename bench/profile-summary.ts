/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by package/file, and
 * inclusive time of chosen functions. `node --import tsx bench/profile-summary.ts FILE [top]`
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** node_modules/<pkg> or the project file, or a Node-internal area. */
function area(url: string): string {
  if (!url) return '(native/vm)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  if (url.startsWith('node:')) return url;
  const src = url.indexOf('/src/');
  if (src >= 0) return url.slice(src + 1).replace(/\.js$/, '.ts');
  return url.replace(/^file:\/\//, '');
}

export function summarise(file: string, top = 25, callersOf?: string, depth = 4): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] as number;
    self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const idle = [...self.entries()]
    .filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)')
    .reduce((a, [, t]) => a + t, 0);
  const busy = total - idle;
  const fn = new Map<string, number>();
  const areas = new Map<string, number>();
  for (const [id, t] of self) {
    const n = byId.get(id);
    if (!n || n.callFrame.functionName === '(idle)') continue;
    const a = area(n.callFrame.url);
    const key = `${n.callFrame.functionName || '(anonymous)'}  ${a}:${n.callFrame.lineNumber + 1}`;
    fn.set(key, (fn.get(key) ?? 0) + t);
    areas.set(a, (areas.get(a) ?? 0) + t);
  }
  const pct = (t: number) => `${((100 * t) / busy).toFixed(1).padStart(5)} %`;
  if (callersOf === '--long-tasks') {
    // Stretches of samples without an idle one in between, longer than `depth` ms: what runs in them.
    const tasks: { ms: number; fns: Map<string, number> }[] = [];
    let cur: { ms: number; fns: Map<string, number> } | undefined;
    for (let i = 0; i < p.samples.length; i++) {
      const n = byId.get(p.samples[i] as number);
      const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
      if (!n || n.callFrame.functionName === '(idle)') {
        if (cur && cur.ms >= depth) tasks.push(cur);
        cur = undefined;
        continue;
      }
      cur ??= { ms: 0, fns: new Map() };
      cur.ms += dt;
      const key = `${n.callFrame.functionName || '(anonymous)'} ${area(n.callFrame.url)}`;
      cur.fns.set(key, (cur.fns.get(key) ?? 0) + dt);
    }
    const out = [
      `busy stretches ≥ ${depth} ms: ${tasks.length}, ${tasks.reduce((a, t) => a + t.ms, 0).toFixed(0)} ms in all`,
    ];
    const agg = new Map<string, number>();
    for (const t of tasks) for (const [k, v] of t.fns) agg.set(k, (agg.get(k) ?? 0) + v);
    for (const [k, v] of [...agg].sort((x, y) => y[1] - x[1]).slice(0, top))
      out.push(`  ${v.toFixed(0).padStart(6)} ms  ${k}`);
    const lens = tasks.map((t) => t.ms).sort((x, y) => x - y);
    out.push(
      `  lengths: p50 ${lens[Math.floor(lens.length / 2)]?.toFixed(1)} ms, max ${lens[lens.length - 1]?.toFixed(1)} ms`,
    );
    return out.join('\n');
  }
  if (callersOf) {
    // Self time of the named function, by the chain of its callers (up to `depth` frames).
    const parent = new Map<number, number>();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const chains = new Map<string, number>();
    for (const [id, t] of self) {
      const n = byId.get(id);
      if (!n || n.callFrame.functionName !== callersOf) continue;
      const names: string[] = [];
      for (let up = parent.get(id), i = 0; up !== undefined && i < depth; up = parent.get(up), i++) {
        const f = byId.get(up)?.callFrame;
        if (f) names.push(`${f.functionName || '(anonymous)'} ${area(f.url)}:${f.lineNumber + 1}`);
      }
      const key = names.join(' < ');
      chains.set(key, (chains.get(key) ?? 0) + t);
    }
    const lines = [`callers of ${callersOf}:`];
    for (const [k, t] of [...chains].sort((x, y) => y[1] - x[1]).slice(0, top)) lines.push(`  ${pct(t)}  ${k}`);
    return lines.join('\n');
  }
  const lines = [
    `${file}: ${(total / 1e3).toFixed(0)} ms sampled, ${(busy / 1e3).toFixed(0)} ms busy (shares below are ` +
      'of busy time)',
    '',
    'self time by package / file:',
  ];
  for (const [a, t] of [...areas].sort((x, y) => y[1] - x[1]).slice(0, top)) lines.push(`  ${pct(t)}  ${a}`);
  lines.push('', 'self time by function:');
  for (const [k, t] of [...fn].sort((x, y) => y[1] - x[1]).slice(0, top)) lines.push(`  ${pct(t)}  ${k}`);
  return lines.join('\n');
}

if (process.argv[1]?.endsWith('profile-summary.ts')) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write(
      'usage: node --import tsx bench/profile-summary.ts FILE.cpuprofile [top] [callers-of-function [depth]]\n',
    );
    process.exit(2);
  }
  process.stdout.write(
    `${summarise(file, Number(process.argv[3] ?? 25), process.argv[4], Number(process.argv[5] ?? 4))}\n`,
  );
}
