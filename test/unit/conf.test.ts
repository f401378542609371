/**
 * The operations files agree with the code: conf/ (FreeSWITCH dialplan and event socket), the
 * Dockerfile and docker-compose.example.yml. Defaults come from the config schema itself, so a
 * changed default fails here until the files follow.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { ConfigSchema } from '../../src/process/config.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CONF = path.join(ROOT, 'conf');
const DEFAULTS = ConfigSchema.parse({ ZAMMAD_CTI_URL: 'https://z.example/api/v1/cti/t' });
const CONFIG_NAMES = new Set(Object.keys(ConfigSchema.shape));
const SOCKET_DATA = `${DEFAULTS.ESL_HOST}:${DEFAULTS.ESL_PORT} async full`;

const read = (rel: string): string => readFileSync(path.join(ROOT, rel), 'utf8');

function xmlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return xmlFiles(full);
    return e.name.endsWith('.xml') ? [full] : [];
  });
}

// ---- XML as an ordered tree (fast-xml-parser, preserveOrder) ------------------------------------

interface XmlNode {
  tag: string;
  attrs: Record<string, string>;
  children: XmlNode[];
}

const parser = new XMLParser({ preserveOrder: true, ignoreAttributes: false, attributeNamePrefix: '', parseAttributeValue: false });

function toNodes(raw: unknown): XmlNode[] {
  if (!Array.isArray(raw)) return [];
  return raw.flatMap((item: Record<string, unknown>) => {
    const tag = Object.keys(item).find((k) => k !== ':@');
    if (tag === undefined || tag === '#text' || tag.startsWith('?')) return [];
    const attrs = (item[':@'] ?? {}) as Record<string, string>;
    return [{ tag, attrs, children: toNodes(item[tag]) }];
  });
}

function parseXml(file: string): XmlNode[] {
  return toNodes(parser.parse(readFileSync(file, 'utf8')));
}

const childrenNamed = (node: XmlNode, tag: string) => node.children.filter((c) => c.tag === tag);

// ---- dialplan: what mod_dialplan_xml would run ----------------------------------------------------

interface App {
  app: string;
  data: string;
  anti: boolean;
  extension: string;
}

interface Extension {
  name: string;
  conditions: XmlNode[];
}

function extensionsOf(file: string): Extension[] {
  const roots = parseXml(file);
  assert.equal(roots.length, 1, `${file}: one root element`);
  const root = roots[0]!;
  assert.equal(root.tag, 'include', `${file}: a conf/dialplan/<context>/*.xml file is included inside <context>, so its root is <include>`);
  return childrenNamed(root, 'extension').map((x) => ({ name: x.attrs.name ?? '', conditions: childrenNamed(x, 'condition') }));
}

/** Every action and anti-action of a file, in document order. */
function allApps(extensions: Extension[]): App[] {
  return extensions.flatMap((x) =>
    x.conditions.flatMap((c) =>
      c.children
        .filter((a) => a.tag === 'action' || a.tag === 'anti-action')
        .map((a) => ({ app: a.attrs.application ?? '', data: a.attrs.data ?? '', anti: a.tag === 'anti-action', extension: x.name })),
    ),
  );
}

/** `${name}` from the variables, '' when unset (as FreeSWITCH expands an unset variable). */
const expand = (text: string, vars: Record<string, string>) => text.replace(/\$\{([\w-]+)\}/g, (_m, name: string) => vars[name] ?? '');

/**
 * One extension as mod_dialplan_xml evaluates it at hunt time: the conditions in order; a
 * passing one adds its actions, a failing one adds its anti-actions and ends the extension
 * (break="on-false", the default). A field without `${…}` is a caller-profile field.
 */
function huntExtension(x: Extension, vars: Record<string, string>): { matched: boolean; apps: App[] } {
  const apps: App[] = [];
  for (const c of x.conditions) {
    const field = c.attrs.field;
    const value = field === undefined ? '' : field.includes('${') ? expand(field, vars) : (vars[field] ?? '');
    const pass = field === undefined || new RegExp(expand(c.attrs.expression ?? '', vars)).test(value);
    const wanted = pass ? 'action' : 'anti-action';
    for (const a of c.children) {
      if (a.tag === wanted) apps.push({ app: a.attrs.application ?? '', data: a.attrs.data ?? '', anti: !pass, extension: x.name });
    }
    if (!pass) return { matched: false, apps };
  }
  return { matched: true, apps };
}

/** A hunt through the file's extensions: apps gathered until an extension matches (none here has continue="true"). */
function hunt(extensions: Extension[], vars: Record<string, string>): App[] {
  const apps: App[] = [];
  for (const x of extensions) {
    const r = huntExtension(x, vars);
    apps.push(...r.apps);
    if (r.matched) break;
  }
  return apps;
}

const DIALPLANS = [
  { file: 'conf/dialplan/public/00_zammad_cti.xml', context: 'public', number: '4930555716', fallbackAttempted: 'NO_ANSWER' },
  { file: 'conf/dialplan/default/00_zammad_cti.xml', context: 'default', number: '0305557160', fallbackAttempted: 'NO_ANSWER' },
] as const;

describe('conf/: every XML file', () => {
  const files = xmlFiles(CONF);

  it('finds the dialplan snippets and event_socket.conf.xml', () => {
    const rel = files.map((f) => path.relative(ROOT, f).split(path.sep).join('/')).sort();
    for (const expected of [...DIALPLANS.map((d) => d.file), 'conf/autoload_configs/event_socket.conf.xml']) {
      assert.ok(rel.includes(expected), `${expected} exists`);
    }
  });

  for (const file of files) {
    const rel = path.relative(ROOT, file);
    it(`${rel} is well-formed`, () => {
      const text = readFileSync(file, 'utf8');
      const result = XMLValidator.validate(text);
      assert.equal(result, true, JSON.stringify(result));
      for (const [, body] of text.matchAll(/<!--([\s\S]*?)-->/g)) {
        // XML forbids "--" inside a comment; fast-xml-parser's validator lets it through.
        assert.ok(!body!.includes('--'), `"--" inside a comment: ${body!.slice(0, 60)}`);
        // FreeSWITCH's pre-processor acts on these even inside comments.
        assert.ok(!body!.includes('$${') && !/X-PRE-PROCESS/i.test(body!), `pre-processor syntax inside a comment: ${body!.slice(0, 60)}`);
      }
    });
  }
});

for (const plan of DIALPLANS) {
  describe(plan.file, () => {
    const extensions = extensionsOf(path.join(ROOT, plan.file));
    const apps = allApps(extensions);
    const sockets = apps.filter((a) => a.app === 'socket');
    const expectedDirection = DEFAULTS.INBOUND_CONTEXTS.includes(plan.context) ? 'in' : 'out';

    it(`has exactly one socket action, with data "${SOCKET_DATA}" (ESL_HOST:ESL_PORT defaults)`, () => {
      assert.equal(sockets.length, 1);
      assert.equal(sockets[0]!.data, SOCKET_DATA);
      assert.equal(sockets[0]!.anti, false);
    });

    const main = extensions.find((x) => x.name === sockets[0]?.extension);
    const mainApps = apps.filter((a) => a.extension === main?.name && !a.anti);
    const socketAt = mainApps.findIndex((a) => a.app === 'socket');
    const before = mainApps.slice(0, socketAt);
    const after = mainApps.slice(socketAt + 1);

    it(`sets zammad_direction=${expectedDirection} before the socket (context "${plan.context}", INBOUND_CONTEXTS ${DEFAULTS.INBOUND_CONTEXTS.join(',')})`, () => {
      const sets = before.filter((a) => a.app === 'set' && a.data.startsWith('zammad_direction='));
      assert.deepEqual(sets.map((a) => a.data), [`zammad_direction=${expectedDirection}`]);
      assert.ok(!apps.some((a) => a.app === 'set' && a.data.startsWith('zammad_direction=') && a.data !== `zammad_direction=${expectedDirection}`));
    });

    it('sets zammad_bridge and hangup_after_bridge before the socket, and empties originate_disposition', () => {
      assert.ok(before.some((a) => a.app === 'set' && /^zammad_bridge=\S+/.test(a.data)));
      assert.ok(before.some((a) => a.app === 'set' && a.data === 'hangup_after_bridge=true'));
      assert.ok(before.some((a) => a.app === 'unset' && a.data === 'originate_disposition'));
      assert.ok(before.some((a) => a.app === 'set' && a.data === 'zammad_cti_fallback=armed'));
    });

    it('the main extension matches the example number', () => {
      assert.ok(main);
      const r = huntExtension(main, { destination_number: plan.number });
      assert.equal(r.matched, true);
      assert.ok(r.apps.some((a) => a.app === 'socket'));
    });

    it('the fallback comes after the socket action, and nothing after the socket bridges directly', () => {
      assert.ok(socketAt >= 0);
      const fallbackAt = after.findIndex((a) => a.app === 'execute_extension');
      assert.ok(fallbackAt >= 0, 'execute_extension after socket');
      assert.ok(!after.some((a) => a.app === 'bridge' || a.app === 'transfer'), 'an unguarded bridge after socket would ring the agents a second time');
      // Everything of the main extension that comes after the fallback only ends the call.
      assert.ok(after.slice(fallbackAt + 1).every((a) => a.app === 'hangup' || a.app === 'log'));
    });

    const target = after.find((a) => a.app === 'execute_extension')?.data.split(/\s+/)[0] ?? '';

    it('the fallback target is not matched by the main extension (no second socket, no loop)', () => {
      assert.ok(target);
      assert.ok(main);
      assert.equal(huntExtension(main, { destination_number: target, zammad_cti_fallback: 'armed' }).matched, false);
    });

    // State of the channel when `socket` returned with the caller still up.
    const afterSocket = (originateDisposition: string | undefined) =>
      hunt(extensions, {
        destination_number: target,
        zammad_cti_fallback: 'armed',
        ...(originateDisposition === undefined ? {} : { originate_disposition: originateDisposition }),
      });

    it('adapter never reached (nothing bridged, originate_disposition empty): the fallback bridges ${zammad_bridge} once', () => {
      const run = afterSocket(undefined);
      assert.deepEqual(
        run.filter((a) => a.app === 'bridge').map((a) => a.data),
        ['${zammad_bridge}'],
      );
      assert.ok(!run.some((a) => a.app === 'hangup' && run.indexOf(a) < run.findIndex((b) => b.app === 'bridge')));
      assert.ok(!run.some((a) => a.app === 'socket'));
    });

    for (const disposition of ['failure', plan.fallbackAttempted, 'SUCCESS', 'success']) {
      it(`connection lost after the adapter's bridge (originate_disposition=${disposition}): no second bridge, hang up`, () => {
        const run = afterSocket(disposition);
        assert.ok(!run.some((a) => a.app === 'bridge'), JSON.stringify(run));
        assert.ok(run.some((a) => a.app === 'hangup'));
      });
    }

    it('a caller who dials the fallback name directly does not reach its bridge', () => {
      const run = hunt(extensions, { destination_number: target });
      assert.ok(!run.some((a) => a.app === 'bridge' || a.app === 'socket'));
    });
  });
}

describe('conf/autoload_configs/event_socket.conf.xml', () => {
  const roots = parseXml(path.join(CONF, 'autoload_configs/event_socket.conf.xml'));
  const config = roots[0];
  const params = new Map(
    (config ? childrenNamed(config, 'settings') : []).flatMap((s) => childrenNamed(s, 'param')).map((p) => [p.attrs.name ?? '', p.attrs.value ?? '']),
  );

  it('is the event_socket.conf configuration', () => {
    assert.equal(roots.length, 1);
    assert.equal(config?.tag, 'configuration');
    assert.equal(config?.attrs.name, 'event_socket.conf');
  });

  it(`listens on loopback, port ${DEFAULTS.FS_INBOUND_PORT} (FS_INBOUND_PORT default), loopback ACL`, () => {
    assert.equal(params.get('listen-port'), String(DEFAULTS.FS_INBOUND_PORT));
    assert.equal(params.get('listen-ip'), '127.0.0.1');
    assert.equal(params.get('apply-inbound-acl'), 'loopback.auto');
  });

  it("does not ship FreeSWITCH's well-known default password", () => {
    const password = params.get('password') ?? '';
    assert.ok(password.length > 0);
    assert.notEqual(password, 'ClueCon');
  });
});

// ---- Dockerfile --------------------------------------------------------------------------------

interface Instruction {
  stage: number;
  keyword: string;
  args: string;
}

/** Instructions with continuation lines joined; comments and blank lines dropped. */
function dockerfile(text: string): Instruction[] {
  const logical: string[] = [];
  let current = '';
  for (const line of text.split('\n')) {
    if (/^\s*#/.test(line) && current === '') continue;
    if (/^\s*#/.test(line)) continue; // a comment inside a continued instruction
    const continued = /\\\s*$/.test(line);
    current += (current ? ' ' : '') + line.replace(/\\\s*$/, '').trim();
    if (!continued) {
      if (current.trim()) logical.push(current.trim());
      current = '';
    }
  }
  if (current.trim()) logical.push(current.trim());
  let stage = -1;
  return logical.map((l) => {
    const [keyword = '', ...rest] = l.split(/\s+/);
    if (keyword.toUpperCase() === 'FROM') stage += 1;
    return { stage, keyword: keyword.toUpperCase(), args: rest.join(' ') };
  });
}

/** ENV names: `ENV A=1 B="x y"` or the legacy `ENV A 1`. */
function envNames(args: string): string[] {
  if (!/^[A-Za-z_][\w]*=/.test(args)) return [args.split(/\s+/)[0] ?? ''];
  return [...args.matchAll(/(?:^|\s)([A-Za-z_]\w*)=(?:"(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g)].map((m) => m[1]!);
}

describe('Dockerfile', () => {
  const all = dockerfile(read('Dockerfile'));
  const lastStage = Math.max(...all.map((i) => i.stage));
  const final = all.filter((i) => i.stage === lastStage);
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };

  it('is multi-stage, the runtime stage on Node 24', () => {
    assert.ok(lastStage >= 1);
    assert.match(final[0]!.args, /^node:24[\w.-]*(\s|$)/);
  });

  it("CMD runs the same entry as package.json's start script", () => {
    const cmds = final.filter((i) => i.keyword === 'CMD');
    assert.equal(cmds.length, 1);
    const argv = JSON.parse(cmds[0]!.args) as string[];
    assert.ok(Array.isArray(argv), 'exec (JSON) form, so that SIGTERM reaches node');
    assert.equal(argv.join(' '), pkg.scripts.start);
  });

  it('runs as a non-root USER', () => {
    const users = final.filter((i) => i.keyword === 'USER');
    assert.ok(users.length > 0);
    const user = users.at(-1)!.args.split(':')[0];
    assert.ok(user && user !== 'root' && user !== '0', `USER ${user}`);
  });

  it(`has a HEALTHCHECK on /healthz at STATUS_PORT (default ${DEFAULTS.STATUS_PORT})`, () => {
    const checks = final.filter((i) => i.keyword === 'HEALTHCHECK');
    assert.equal(checks.length, 1);
    assert.match(checks[0]!.args, /\bCMD\b/);
    assert.match(checks[0]!.args, /\/healthz/);
    assert.match(checks[0]!.args, /STATUS_PORT/);
    assert.match(checks[0]!.args, new RegExp(`\\b${DEFAULTS.STATUS_PORT}\\b`));
  });

  it('sets only real config variables (or NODE_ENV) with ENV, in every stage', () => {
    const names = all.filter((i) => i.keyword === 'ENV').flatMap((i) => envNames(i.args));
    assert.ok(names.length > 0);
    for (const name of names) assert.ok(name === 'NODE_ENV' || CONFIG_NAMES.has(name), `ENV ${name} is not in ConfigSchema`);
  });

  it('keeps the outbox on the declared volume and exposes the ESL and status ports', () => {
    const env = new Map<string, string>();
    for (const i of final.filter((x) => x.keyword === 'ENV')) {
      for (const m of i.args.matchAll(/([A-Za-z_]\w*)=(\S+)/g)) env.set(m[1]!, m[2]!);
    }
    const volumes = final.filter((i) => i.keyword === 'VOLUME').map((i) => i.args.replace(/^\[|\]$/g, '').replace(/"/g, '').trim());
    const outbox = env.get('OUTBOX_PATH') ?? '';
    assert.ok(volumes.some((v) => outbox.startsWith(`${v}/`)), `OUTBOX_PATH ${outbox} under ${volumes.join(',')}`);
    const exposed = final.filter((i) => i.keyword === 'EXPOSE').flatMap((i) => i.args.split(/\s+/));
    assert.ok(exposed.includes(String(DEFAULTS.ESL_PORT)));
    assert.ok(exposed.includes(String(DEFAULTS.STATUS_PORT)));
  });

  it('.dockerignore keeps secrets, local state and dependencies out of the build context', () => {
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    for (const entry of ['node_modules', 'dist', '.env', 'data', '.git', 'test', 'bench']) assert.ok(ignored.includes(entry), entry);
  });
});

describe('docker-compose.example.yml', () => {
  const text = read('docker-compose.example.yml');

  it('waits longer than the drain (SHUTDOWN_DRAIN_MS) before killing the adapter', () => {
    const m = /^\s*stop_grace_period:\s*(\d+)(ms|s|m)\s*$/m.exec(text);
    assert.ok(m, 'stop_grace_period');
    const ms = Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2] as 'ms' | 's' | 'm'];
    const drain = Number(/^\s*SHUTDOWN_DRAIN_MS:\s*"?(\d+)"?/m.exec(text)?.[1] ?? DEFAULTS.SHUTDOWN_DRAIN_MS);
    assert.ok(ms > drain, `${ms} ms > ${drain} ms`);
  });

  it('names only real config variables in environment:', () => {
    const block = /^ {4}environment:\n((?: {6}.*\n| *#.*\n|\s*\n)*)/m.exec(text)?.[1] ?? '';
    const names = [...block.matchAll(/^ {6}([A-Z][A-Z0-9_]*):/gm)].map((m) => m[1]!);
    assert.ok(names.length > 0);
    for (const name of names) assert.ok(CONFIG_NAMES.has(name), name);
  });
});
