/**
 * The operator's kit beside the container agrees with the code: conf/prometheus/alerts.yml and
 * conf/grafana/dashboard.json query only series the adapter exports (names and labels read from
 * its real registry, src/status/metrics.ts), and conf/systemd/freeswitch-zammad-cti.service waits
 * longer than the drain and runs what `npm start` runs. Defaults come from the config schema.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigSchema } from '../../src/process/config.js';
import { Metrics } from '../../src/status/metrics.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (rel: string): string => readFileSync(path.join(ROOT, rel), 'utf8');
const DEFAULTS = ConfigSchema.parse({ ZAMMAD_CTI_URL: 'https://z.example/api/v1/cti/t' });
const CONFIG_NAMES = new Set(Object.keys(ConfigSchema.shape));

// ---- what the adapter exports -------------------------------------------------------------------

/** Labels Prometheus attaches to every scraped series (the scrape job's target labels). */
const TARGET_LABELS = ['job', 'instance'];
/** Series Prometheus records itself for each scrape: not the adapter's, but always there. */
const SCRAPE_SERIES = new Map<string, Set<string>>([['up', new Set(TARGET_LABELS)]]);

/** Every series name the adapter's /metrics shows (histograms as _bucket/_sum/_count), with its labels. */
async function exportedSeries(): Promise<Map<string, Set<string>>> {
  const metrics = new Metrics();
  const series = new Map<string, Set<string>>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    const declared =
      (metrics.registry.getSingleMetric(m.name) as unknown as { labelNames?: readonly string[] }).labelNames ?? [];
    // Observed values too: default metrics such as nodejs_version_info label what they set.
    const seen = m.values.flatMap((v) => Object.keys(v.labels ?? {}));
    const labels = new Set([...declared, ...seen, ...TARGET_LABELS]);
    const type = String(m.type);
    if (type === 'histogram') {
      series.set(`${m.name}_bucket`, new Set([...labels, 'le']));
      series.set(`${m.name}_sum`, labels);
      series.set(`${m.name}_count`, labels);
    } else if (type === 'summary') {
      series.set(m.name, new Set([...labels, 'quantile']));
      series.set(`${m.name}_sum`, labels);
      series.set(`${m.name}_count`, labels);
    } else {
      series.set(m.name, labels);
    }
  }
  return series;
}

// ---- PromQL: the series and labels an expression uses -------------------------------------------

interface Used {
  /** Series names, each with the labels its own matchers name. */
  selectors: { name: string; labels: string[] }[];
  /** Labels of by/without/on/ignoring/group_left/group_right clauses. */
  grouping: string[];
}

const PROMQL_WORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'inf',
  'nan',
]);

function usedInPromql(expr: string): Used {
  const selectors: Used['selectors'] = [];
  const grouping: string[] = [];
  const matcherLabels = (body: string): string[] => {
    const labels: string[] = [];
    const rest = body.replace(/([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"/g, (_, label: string) => {
      labels.push(label);
      return '';
    });
    assert.match(rest, /^[\s,]*$/, `a label matcher not understood in {${body}} of ${expr}`);
    return labels;
  };
  // 1. name{matchers} and bare {matchers}
  let text = expr.replace(
    /(?<![\w:$])([a-zA-Z_:][\w:]*)?\s*\{([^{}]*)\}/g,
    (_, name: string | undefined, body: string) => {
      const labels = matcherLabels(body);
      if (name !== undefined && !PROMQL_WORDS.has(name)) selectors.push({ name, labels });
      else {
        const named = labels.indexOf('__name__');
        assert.equal(named, -1, `{__name__=…} is not checked here: use the name in ${expr}`);
      }
      return ' ';
    },
  );
  // 2. range and subquery brackets ([5m], [$__rate_interval], [1h:5m])
  text = text.replace(/\[[^\]]*\]/g, ' ');
  // 3. grouping clauses
  text = text.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_, __, list: string) => {
    grouping.push(
      ...list
        .split(',')
        .map((l) => l.trim())
        .filter((l) => l.length > 0),
    );
    return ' ';
  });
  // 4. what is left: function names (followed by "("), keywords, numbers, and bare series names
  for (const m of text.matchAll(/(?<![\w:$.])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()/g)) {
    const name = m[1]!;
    if (!PROMQL_WORDS.has(name.toLowerCase())) selectors.push({ name, labels: [] });
  }
  return { selectors, grouping };
}

/** Problems of one expression against the exported series: unknown names, unknown labels. */
function problemsOf(where: string, expr: string, series: Map<string, Set<string>>): string[] {
  const problems: string[] = [];
  const used = usedInPromql(expr);
  if (used.selectors.length === 0) problems.push(`${where}: no series in ${expr}`);
  const union = new Set<string>(TARGET_LABELS);
  for (const { name, labels } of used.selectors) {
    const known = series.get(name);
    if (!known) {
      problems.push(`${where}: ${name} is not exported by the adapter`);
      continue;
    }
    for (const l of known) union.add(l);
    for (const l of labels) if (!known.has(l)) problems.push(`${where}: ${name} has no label ${l}`);
  }
  for (const l of used.grouping)
    if (!union.has(l)) problems.push(`${where}: no series of ${expr} has the label ${l} (grouping)`);
  return problems;
}

describe('the PromQL reader', () => {
  it('finds series, matcher labels and grouping labels, and skips functions, ranges and keywords', () => {
    const used = usedInPromql(
      'histogram_quantile(0.95, sum by (le, endpoint) (rate(cti_zammad_post_seconds_bucket{event="newCall", ' +
        'endpoint=~"$endpoint"}[$__rate_interval]))) > 1e3 ' +
        'unless on (instance) max(cti_zammad_config_fault) == 1 and absent(up{job="x"}) or time() ' +
        '- cti_process_start_time_seconds',
    );
    assert.deepEqual(used.selectors.map((s) => `${s.name}{${s.labels.join(',')}}`).sort(), [
      'cti_process_start_time_seconds{}',
      'cti_zammad_config_fault{}',
      'cti_zammad_post_seconds_bucket{event,endpoint}',
      'up{job}',
    ]);
    assert.deepEqual(used.grouping.sort(), ['endpoint', 'instance', 'le']);
  });

  it('reports an unknown series, an unknown label and an unknown grouping label', async () => {
    const series = await exportedSeries();
    assert.deepEqual(problemsOf('t', 'rate(cti_calls_total{cause="x"}[5m])', series), []);
    assert.equal(problemsOf('t', 'rate(cti_call_total[5m])', series).length, 1);
    assert.equal(problemsOf('t', 'rate(cti_calls_total{endpoint="x"}[5m])', series).length, 1);
    assert.equal(problemsOf('t', 'sum by (tenant) (cti_outbox_events)', series).length, 1);
    assert.equal(problemsOf('t', 'cti_zammad_post_seconds', series).length, 1, 'a histogram is _bucket/_sum/_count');
  });
});

// ---- a small YAML reader (no YAML package in the tree) ---------------------------------------------

type Yaml = string | Yaml[] | { [key: string]: Yaml };

/**
 * Block mappings, block sequences, plain and quoted scalars, `|` and `>` block scalars: what
 * alerts.yml uses. Anything else (flow collections, anchors, tags) fails loudly.
 */
function parseYaml(text: string): Yaml {
  const lines = text.split('\n');
  let i = 0;
  const indentOf = (l: string) => l.length - l.trimStart().length;
  const skip = () => {
    while (i < lines.length && /^\s*(#.*)?$/.test(lines[i]!)) i++;
  };
  const fail = (why: string): never => {
    throw new Error(`YAML line ${i + 1}: ${why}: ${lines[i] ?? ''}`);
  };
  const scalar = (raw: string): string => {
    const s = raw.trim();
    if (s.startsWith('"')) return JSON.parse(s) as string;
    if (s.startsWith("'")) return s.endsWith("'") ? s.slice(1, -1).replace(/''/g, "'") : fail('unterminated quote');
    if (/^[[{&*!%@`]/.test(s)) fail('unsupported YAML');
    return s.replace(/\s+#.*$/, '');
  };
  const block = (style: string, parentIndent: number): string => {
    const out: string[] = [];
    let indent = -1;
    while (i < lines.length) {
      const l = lines[i]!;
      if (l.trim() === '') {
        out.push('');
        i++;
        continue;
      }
      if (indentOf(l) <= parentIndent) break;
      if (indent < 0) indent = indentOf(l);
      out.push(l.slice(indent));
      i++;
    }
    while (out.length > 0 && out[out.length - 1] === '') out.pop();
    const joined = style.startsWith('>') ? out.join(' ') : out.join('\n');
    return style.endsWith('-') ? joined : `${joined}\n`;
  };
  const value = (rest: string, indent: number): Yaml => {
    if (/^[|>][-+]?$/.test(rest)) return block(rest, indent);
    if (rest === '[]') return [];
    if (rest !== '') return scalar(rest);
    skip();
    const next = lines[i];
    if (next === undefined) return '';
    if (indentOf(next) > indent || (indentOf(next) === indent && next.trimStart().startsWith('- ')))
      return node(indentOf(next));
    return '';
  };
  const node = (indent: number): Yaml => {
    skip();
    if (lines[i]?.trimStart().startsWith('- ')) {
      const seq: Yaml[] = [];
      for (
        skip();
        i < lines.length && indentOf(lines[i]!) === indent && lines[i]!.trimStart().startsWith('- ');
        skip()
      ) {
        const item = lines[i]!.trimStart().slice(2);
        if (/^[A-Za-z_][\w.-]*:(\s|$)/.test(item)) {
          lines[i] = ' '.repeat(indent + 2) + item;
          seq.push(node(indent + 2));
        } else {
          i++;
          seq.push(scalar(item));
        }
      }
      return seq;
    }
    const map: { [key: string]: Yaml } = {};
    for (skip(); i < lines.length; skip()) {
      const l = lines[i]!;
      if (indentOf(l) < indent || l.trimStart().startsWith('- ')) break;
      if (indentOf(l) > indent) fail('unexpected indentation');
      const m = /^([A-Za-z_][\w.-]*):(?:\s+(.*))?$/.exec(l.trim()) ?? fail('not a "key: value" line');
      if (Object.hasOwn(map, m[1]!)) fail(`duplicate key ${m[1]}`);
      i++;
      map[m[1]!] = value((m[2] ?? '').trim(), indent);
    }
    return map;
  };
  const doc = node(0);
  skip();
  if (i < lines.length) fail('not read');
  return doc;
}

describe('the YAML reader', () => {
  it('reads mappings, sequences, quoted scalars and block scalars', () => {
    const doc = parseYaml(
      [
        '# c',
        'a:',
        '  - x: 1',
        '    y: "q {{ $v }}"',
        '    z: |',
        '      one',
        '      two',
        '  - w',
        'b: >-',
        '  folded',
        '  text',
        "c: 'it''s'",
      ].join('\n'),
    );
    assert.deepEqual(doc, { a: [{ x: '1', y: 'q {{ $v }}', z: 'one\ntwo\n' }, 'w'], b: 'folded text', c: "it's" });
    assert.deepEqual(parseYaml('a: []'), { a: [] });
    assert.throws(() => parseYaml('a: [1, 2]'), /unsupported/);
    assert.throws(() => parseYaml('a: 1\na: 2'), /duplicate/);
  });
});

// ---- conf/prometheus/alerts.yml ----------------------------------------------------------------------

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

describe('conf/prometheus/alerts.yml', () => {
  const text = read('conf/prometheus/alerts.yml');
  const doc = parseYaml(text) as unknown as { groups: { name: string; rules: Rule[] }[] };
  const rules = doc.groups.flatMap((g) => g.rules);

  it('is a rule file: groups with a name and rules; every alert has an expr, a severity and a summary', () => {
    assert.ok(Array.isArray(doc.groups) && doc.groups.length > 0);
    for (const g of doc.groups) {
      assert.equal(typeof g.name, 'string');
      assert.ok(Array.isArray(g.rules) && g.rules.length > 0, g.name);
    }
    // The reader found every rule the text has.
    assert.equal(rules.length, (text.match(/^\s*- (alert|record):/gm) ?? []).length);
    const names = new Set<string>();
    for (const r of rules) {
      assert.ok(r.alert, `${JSON.stringify(r)}: an alert`);
      assert.ok(!names.has(r.alert), `${r.alert} twice`);
      names.add(r.alert);
      assert.equal(typeof r.expr, 'string', r.alert);
      assert.ok(r.expr.trim().length > 0, r.alert);
      if (r.for !== undefined) assert.match(r.for, /^\d+[smhd]$/, `${r.alert}: for`);
      assert.ok(['critical', 'warning', 'info'].includes(r.labels?.severity ?? ''), `${r.alert}: severity`);
      assert.ok(r.annotations?.summary, `${r.alert}: summary`);
      for (const key of Object.keys(r))
        assert.ok(
          ['alert', 'expr', 'for', 'labels', 'annotations', 'keep_firing_for'].includes(key),
          `${r.alert}: ${key}`,
        );
    }
  });

  it('covers what an operator must hear about', () => {
    const exprs = rules.map((r) => r.expr).join('\n');
    for (const needed of [
      'up{job="freeswitch-zammad-cti"}',
      'cti_zammad_posts_total',
      'cti_zammad_config_fault',
      'cti_outbox_events',
      'cti_outbox_oldest_seconds',
      'reason=~"age|full"',
      'cti_calls_unrouted_total',
      'cti_esl_rejected_connections_total',
    ]) {
      assert.ok(exprs.includes(needed), needed);
    }
  });

  it('queries only series and labels the adapter exports', async () => {
    const series = new Map([...(await exportedSeries()), ...SCRAPE_SERIES]);
    const problems = rules.flatMap((r) => problemsOf(r.alert ?? '?', r.expr, series));
    assert.deepEqual(problems, []);
  });

  it(
    'uses the config defaults: READY_MAX_BACKLOG, ' + 'and warns of old events before OUTBOX_MAX_AGE_HOURS drops them',
    () => {
      const backlog = rules.find((r) => r.alert === 'CtiOutboxBacklogAboveReady');
      assert.match(backlog?.expr ?? '', new RegExp(`>= ${DEFAULTS.READY_MAX_BACKLOG}\\s*$`));
      const old = rules.find((r) => r.alert === 'CtiOutboxOldEvents');
      const m = /> (\d+) \* 3600\s*$/.exec(old?.expr ?? '');
      assert.ok(m, 'CtiOutboxOldEvents: > N * 3600');
      assert.ok(
        Number(m[1]) < DEFAULTS.OUTBOX_MAX_AGE_HOURS / 2,
        `${m[1]} h, well before ${DEFAULTS.OUTBOX_MAX_AGE_HOURS} h`,
      );
    },
  );
});

describe('conf/prometheus/alerts.test.yml (promtool test rules)', () => {
  const doc = parseYaml(read('conf/prometheus/alerts.test.yml')) as unknown as {
    rule_files: string[];
    tests: { input_series: { series: string }[]; alert_rule_test: { alertname: string }[] }[];
  };
  const alerts = new Set(
    (parseYaml(read('conf/prometheus/alerts.yml')) as unknown as { groups: { rules: Rule[] }[] }).groups.flatMap((g) =>
      g.rules.map((r) => r.alert),
    ),
  );

  it('tests alerts.yml, with alerts that exist and series the adapter exports', async () => {
    assert.deepEqual(doc.rule_files, ['alerts.yml']);
    assert.ok(
      doc.tests.length >= 5 && doc.tests.every((t) => t.input_series.length > 0 && t.alert_rule_test.length > 0),
    );
    const series = new Map([...(await exportedSeries()), ...SCRAPE_SERIES]);
    const problems: string[] = [];
    for (const t of doc.tests) {
      for (const s of t.input_series) problems.push(...problemsOf('input_series', s.series, series));
      for (const a of t.alert_rule_test)
        if (!alerts.has(a.alertname)) problems.push(`no alert ${a.alertname} in alerts.yml`);
    }
    assert.deepEqual(problems, []);
  });
});

// ---- conf/grafana/dashboard.json --------------------------------------------------------------------

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  targets?: { expr?: string; refId?: string; datasource?: { uid?: string } }[];
  panels?: Panel[];
}

describe('conf/grafana/dashboard.json', () => {
  const dashboard = JSON.parse(read('conf/grafana/dashboard.json')) as {
    title: string;
    uid: string;
    schemaVersion: number;
    panels: Panel[];
    templating: { list: { name: string; type: string; query: unknown; datasource?: { uid?: string } }[] };
  };
  const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');
  const variables = dashboard.templating.list;

  it('is a dashboard with a Prometheus data source variable', () => {
    assert.ok(dashboard.title && dashboard.uid);
    assert.ok(dashboard.schemaVersion >= 36, `schemaVersion ${dashboard.schemaVersion}`);
    const ds = variables.find((v) => v.type === 'datasource');
    assert.equal(ds?.query, 'prometheus');
    assert.ok(panels.length > 10);
  });

  it('every panel has the data source and targets with an expression, and a unique id', () => {
    const ds = `\${${variables.find((v) => v.type === 'datasource')!.name}}`;
    const ids = new Set<number>();
    for (const p of dashboard.panels.flatMap((q) => [q, ...(q.panels ?? [])])) {
      assert.ok(!ids.has(p.id), `panel id ${p.id} twice`);
      ids.add(p.id);
    }
    for (const p of panels) {
      assert.deepEqual(p.datasource, { type: 'prometheus', uid: ds }, p.title);
      assert.ok(p.targets && p.targets.length > 0, `${p.title}: targets`);
      const refIds = new Set<string>();
      for (const t of p.targets) {
        assert.ok(t.expr && t.expr.trim().length > 0, `${p.title}: expr`);
        assert.ok(t.refId && !refIds.has(t.refId), `${p.title}: refId`);
        refIds.add(t.refId);
        assert.equal(t.datasource?.uid, ds, `${p.title}: target data source`);
      }
    }
  });

  it('queries only series and labels the adapter exports (panels and variables)', async () => {
    const series = new Map([...(await exportedSeries()), ...SCRAPE_SERIES]);
    const problems = panels.flatMap((p) => (p.targets ?? []).flatMap((t) => problemsOf(p.title, t.expr ?? '', series)));
    for (const v of variables.filter((x) => x.type === 'query')) {
      const query = (v.query as { query: string }).query;
      const m = /^label_values\((.*),\s*(\w+)\)$/.exec(query);
      assert.ok(m, `${v.name}: label_values(series, label)`);
      problems.push(...problemsOf(`$${v.name}`, `sum by (${m[2]}) (${m[1]})`, series));
    }
    assert.deepEqual(problems, []);
  });

  it('shows calls, Zammad requests and latency, the outbox and the process', () => {
    const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? '')).join('\n');
    for (const needed of [
      'cti_calls_in_progress',
      'cti_calls_total',
      'cti_zammad_posts_total',
      'cti_zammad_post_seconds_bucket',
      'cti_newcall_decision_seconds_bucket',
      'cti_outbox_events',
      'cti_outbox_oldest_seconds',
      'cti_outbox_dropped_total',
      'cti_process_resident_memory_bytes',
      'cti_process_cpu_user_seconds_total',
    ]) {
      assert.ok(exprs.includes(needed), needed);
    }
  });
});

// ---- conf/systemd/freeswitch-zammad-cti.service ------------------------------------------------------

/** systemd's time span ("60", "60s", "1min 30s", "500ms") in milliseconds. */
function timeSpanMs(span: string): number {
  const units: Record<string, number> = {
    ms: 1,
    s: 1000,
    sec: 1000,
    second: 1000,
    seconds: 1000,
    m: 60_000,
    min: 60_000,
    minute: 60_000,
    minutes: 60_000,
    h: 3_600_000,
    hr: 3_600_000,
    hour: 3_600_000,
    hours: 3_600_000,
  };
  if (/^\d+$/.test(span.trim())) return Number(span) * 1000;
  let total = 0;
  const rest = span.replace(/(\d+)\s*([a-z]+)/g, (_, n: string, unit: string) => {
    assert.ok(units[unit] !== undefined, `time unit ${unit}`);
    total += Number(n) * units[unit]!;
    return '';
  });
  assert.match(rest, /^\s*$/, `time span ${span}`);
  return total;
}

describe('conf/systemd/freeswitch-zammad-cti.service', () => {
  const text = read('conf/systemd/freeswitch-zammad-cti.service');
  const settings = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) settings.set(m[1]!, [...(settings.get(m[1]!) ?? []), m[2]!]);
  }
  const one = (key: string): string => {
    const values = settings.get(key) ?? [];
    assert.equal(values.length, 1, `${key}= once`);
    return values[0]!;
  };

  it('waits longer than the drain (SHUTDOWN_DRAIN_MS) before killing the adapter', () => {
    assert.equal(one('KillSignal'), 'SIGTERM');
    const stop = timeSpanMs(one('TimeoutStopSec'));
    const drain = Number(/^Environment=SHUTDOWN_DRAIN_MS=(\d+)$/m.exec(text)?.[1] ?? DEFAULTS.SHUTDOWN_DRAIN_MS);
    assert.ok(stop > drain, `TimeoutStopSec ${stop} ms > SHUTDOWN_DRAIN_MS ${drain} ms`);
    assert.equal(timeSpanMs('1min 30s'), 90_000);
  });

  it('runs what `npm start` runs, reloads with SIGHUP and keeps the outbox in its StateDirectory', () => {
    const pkg = JSON.parse(read('package.json')) as { scripts: { start: string } };
    const entry = /^node (\S+)$/.exec(pkg.scripts.start)?.[1];
    assert.ok(entry, pkg.scripts.start);
    assert.match(
      one('ExecStart'),
      new RegExp(`^/usr/bin/node /opt/freeswitch-zammad-cti/${entry.replace(/\./g, '\\.')}$`),
    );
    assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID');
    const state = one('StateDirectory');
    const env = new Map((settings.get('Environment') ?? []).map((e) => e.split('=', 2) as [string, string]));
    assert.ok(
      env.get('OUTBOX_PATH')?.startsWith(`/var/lib/${state}/`),
      `OUTBOX_PATH ${env.get('OUTBOX_PATH')} in /var/lib/${state}`,
    );
    for (const name of env.keys())
      assert.ok(CONFIG_NAMES.has(name) || name.startsWith('NODE_'), `Environment=${name}: not a config variable`);
    assert.ok(one('EnvironmentFile').startsWith('/etc/'));
    assert.equal(one('Restart'), 'on-failure');
    // Exit code 2 = a bad configuration (src/main.ts): restarting cannot fix it.
    assert.equal(one('RestartPreventExitStatus'), '2');
    assert.match(read('src/main.ts'), /process\.exit\(2\)/);
  });

  it('is hardened, and leaves MemoryDenyWriteExecute off (V8 JIT)', () => {
    for (const [key, value] of [
      ['NoNewPrivileges', 'yes'],
      ['ProtectSystem', 'strict'],
      ['ProtectHome', 'yes'],
      ['PrivateTmp', 'yes'],
      ['CapabilityBoundingSet', ''],
      ['RestrictAddressFamilies', 'AF_INET AF_INET6 AF_UNIX'],
      ['DynamicUser', 'yes'],
    ] as const) {
      assert.equal(one(key), value, key);
    }
    assert.ok((settings.get('SystemCallFilter') ?? []).includes('@system-service'));
    assert.ok(!settings.has('MemoryDenyWriteExecute'), 'MemoryDenyWriteExecute=yes stops V8 (JIT)');
  });
});
