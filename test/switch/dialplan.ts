/**
 * The suite's own dialplan on the real switch: written under the switch's conf_dir
 * (`global_getvar conf_dir`), activated with `reloadxml`, removed (and reloaded) at the end.
 *
 * Files go to `dialplan/public/00_cti_test_<run>.xml`: the vanilla public.xml includes
 * `public/*.xml` inside `<context name="public">` in file-name order, so the root is `<include>`
 * and the `00_` puts these extensions before the other files. Every extension matches only the
 * suite's own numbers, so nothing else of the context is disturbed. Do not write the
 * preprocessor's instruction name anywhere in the generated text, not even in a comment: the
 * preprocessor acts on it there too (shared/freeswitch/README.md).
 *
 * Assumes the suite and the switch share a file system (the switch's conf_dir is written
 * directly), as with the disposable switch of shared/freeswitch on the same host.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { EslClient } from './esl-client.js';

export function xmlEscape(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] as string,
  );
}

export type Action = readonly [application: string, data?: string];

/** An extension for one exact destination number, running `actions` in order. */
export interface Extension {
  name: string;
  /** matched as ^number$ (regex metacharacters escaped) unless `expression` is given */
  number?: string;
  expression?: string;
  /** extra conditions before the destination one: [field, expression] */
  conditions?: ReadonlyArray<readonly [string, string]>;
  actions: readonly Action[];
  antiActions?: readonly Action[];
  /** continue="true": the dialplan goes on hunting, the next match's actions are appended */
  continue?: boolean;
}

export function renderExtension(x: Extension): string {
  const expr = x.expression ?? `^${(x.number ?? '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`;
  const lines = [`  <extension name="${xmlEscape(x.name)}"${x.continue ? ' continue="true"' : ''}>`];
  for (const [field, e] of x.conditions ?? [])
    lines.push(`    <condition field="${xmlEscape(field)}" expression="${xmlEscape(e)}"/>`);
  lines.push(`    <condition field="destination_number" expression="${xmlEscape(expr)}">`);
  for (const [app, data] of x.actions)
    lines.push(
      `      <action application="${xmlEscape(app)}"${data === undefined ? '' : ` data="${xmlEscape(data)}"`}/>`,
    );
  for (const [app, data] of x.antiActions ?? [])
    lines.push(
      `      <anti-action application="${xmlEscape(app)}"${data === undefined ? '' : ` data="${xmlEscape(data)}"`}/>`,
    );
  lines.push('    </condition>', '  </extension>');
  return lines.join('\n');
}

/**
 * Bridge mode as conf/dialplan/public/00_zammad_cti.xml has it: describe the call, arm the
 * fallback marker, hand the call to the adapter, and run the fallback extension only when
 * `socket` returns with the caller still up. `fallback` names the extension that
 * installPublicDialplan() renders from its `fallbacks` list.
 */
export function bridgeModeExtension(o: {
  name: string;
  number: string;
  eslPort: number;
  bridge: string;
  direction?: 'in' | 'out';
  users?: string;
  fallback: string;
  /** more `set`s before the socket (e.g. a test's own variables) */
  extra?: readonly Action[];
}): Extension {
  const actions: Action[] = [];
  if (o.direction) actions.push(['set', `zammad_direction=${o.direction}`]);
  actions.push(['set', `zammad_bridge=${o.bridge}`]);
  if (o.users !== undefined) actions.push(['set', `zammad_users=${o.users}`]);
  actions.push(...(o.extra ?? []));
  actions.push(
    ['set', 'hangup_after_bridge=true'],
    ['unset', 'originate_disposition'],
    ['set', 'zammad_cti_fallback=armed'],
    ['socket', `127.0.0.1:${o.eslPort} async full`],
    ['execute_extension', `${o.fallback} XML \${context}`],
    ['hangup', 'NO_ANSWER'],
  );
  return { name: o.name, number: o.number, actions };
}

/** The fallback extension of conf/dialplan/public/00_zammad_cti.xml, under the suite's own name. */
function renderFallback(name: string): string {
  return [
    `  <extension name="${xmlEscape(name)}">`,
    `    <condition field="destination_number" expression="^${xmlEscape(name)}$"/>`,
    `    <condition field="\${zammad_cti_fallback}" expression="^armed$"/>`,
    `    <condition field="\${originate_disposition}" expression="^$">`,
    '      <action application="log" data="WARNING cti-test: adapter not reachable; ' +
      'bridging ${zammad_bridge} without Zammad"/>',
    `      <action application="bridge" data="\${zammad_bridge}"/>`,
    '      <anti-action application="log" data="WARNING cti-test: connection to the adapter ended after its ' +
      'bridge (${originate_disposition})"/>',
    `      <anti-action application="hangup" data="NO_ANSWER"/>`,
    '    </condition>',
    '  </extension>',
  ].join('\n');
}

export interface DialplanFile {
  /** absolute path written */
  path: string;
  remove(): Promise<void>;
}

/**
 * Writes `extensions` (and the bridge-mode fallbacks named in `fallbacks`) as one file under
 * `<conf_dir>/dialplan/public/`, then `reloadxml`. remove() deletes it and reloads again; it is
 * safe to call twice.
 */
export async function installPublicDialplan(
  esl: EslClient,
  fileBase: string,
  extensions: readonly Extension[],
  fallbacks: readonly string[] = [],
): Promise<DialplanFile> {
  const confDir = (await esl.api('global_getvar conf_dir')).trim();
  if (!confDir.startsWith('/')) throw new Error(`the switch did not name its conf_dir: ${JSON.stringify(confDir)}`);
  const dir = join(confDir, 'dialplan', 'public');
  if (!existsSync(dir))
    throw new Error(
      `${dir} does not exist on this host: the suite writes its dialplan into the switch's conf_dir and needs ` +
        'the switch on the same file system',
    );
  removeStale(dir);
  const path = join(dir, `${fileBase}.xml`);
  const body = [
    '<!-- written by freeswitch-zammad-cti test/switch (npm run test:switch); removed when the suite ends -->',
    '<include>',
    ...extensions.map(renderExtension),
    ...fallbacks.map(renderFallback),
    '</include>',
    '',
  ].join('\n');
  mkdirSync(dir, { recursive: true });
  return install(esl, path, body);
}

/**
 * A run that was killed (SIGKILL, a crash) could not remove its file; the first file in
 * alphabetical order wins a number, so a stale one would route the suite's numbers to an adapter
 * port nobody listens on. Files named `…_<pid>.xml` of a process that no longer exists go.
 */
function removeStale(dir: string): void {
  for (const name of readdirSync(dir)) {
    const m = /^0[01]_cti_test\w*?_(\d+)\.xml$/.exec(name);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') rmSync(join(dir, name), { force: true });
    }
  }
}

async function reload(esl: EslClient): Promise<void> {
  const out = await esl.api('reloadxml');
  if (!out.startsWith('+OK')) throw new Error(`reloadxml: ${out.trim()}`);
}

// ---------------------------------------------------------------------------------------------
// Dialplan mode: the gate users paste, in contexts of the suite's own

/** The gate as issue 11 specifies it (the names are the interface), for port 8084. */
export const ISSUE_GATE = `<extension name="zammad_cti" continue="true">
  <condition field="\${zammad_handled}" expression="^$"/>
  <condition field="destination_number" expression="^(\\+?\\d{6,20})$">
    <action application="set" data="zammad_handled=true"/>
    <action application="socket" data="127.0.0.1:8084 async full"/>
  </condition>
</extension>`;

const GATE = /<extension name="zammad_cti" continue="true">[\s\S]*?<\/extension>/;
const SOCKET = /(<action application="socket" data=")([^"\s]+):(\d+)( [^"]*")/;

/**
 * The gate extension, as shipped: taken from conf/dialplan/public/00_zammad_cti.xml when that file
 * holds an extension named `zammad_cti` with continue="true", else the issue's text. Only the
 * socket's port is changed (to the test adapter's, or a tap in front of it).
 */
export function zammadGate(port: number, confFile?: string): { xml: string; source: string } {
  let text = ISSUE_GATE;
  let source = 'issue 11';
  if (confFile && existsSync(confFile)) {
    const m = GATE.exec(readFileSync(confFile, 'utf8'));
    if (m?.[0].includes('zammad_handled')) {
      text = m[0];
      source = confFile;
    }
  }
  if (!SOCKET.test(text)) throw new Error(`the gate from ${source} has no \`socket HOST:PORT …\` action: ${text}`);
  return {
    xml: text.replace(
      SOCKET,
      (_all, pre: string, host: string, _port: string, post: string) => `${pre}${host}:${port}${post}`,
    ),
    source,
  };
}

/** A context of the suite's own: extensions rendered from Extension, or raw XML (the gate). */
export interface Context {
  name: string;
  extensions: ReadonlyArray<Extension | string>;
}

/**
 * Writes whole contexts as `<conf_dir>/dialplan/<fileBase>.xml` (freeswitch.xml includes
 * dialplan/*.xml into the dialplan section; the first context of a name wins, so the names must be
 * the suite's own), then `reloadxml`. remove() deletes it and reloads again.
 */
export async function installContexts(
  esl: EslClient,
  fileBase: string,
  contexts: readonly Context[],
): Promise<DialplanFile> {
  const confDir = (await esl.api('global_getvar conf_dir')).trim();
  if (!confDir.startsWith('/')) throw new Error(`the switch did not name its conf_dir: ${JSON.stringify(confDir)}`);
  const dir = join(confDir, 'dialplan');
  if (!existsSync(dir))
    throw new Error(
      `${dir} does not exist on this host: the suite writes its dialplan into the switch's conf_dir and needs ` +
        'the switch on the same file system',
    );
  removeStale(dir);
  const path = join(dir, `${fileBase}.xml`);
  const indent = (xml: string) =>
    xml
      .split('\n')
      .map((l) => `  ${l}`)
      .join('\n');
  const body = [
    '<!-- written by freeswitch-zammad-cti test/switch (npm run test:switch); removed when the suite ends -->',
    '<include>',
    ...contexts.flatMap((c) => [
      `<context name="${xmlEscape(c.name)}">`,
      ...c.extensions.map((x) => (typeof x === 'string' ? indent(x) : renderExtension(x))),
      '</context>',
    ]),
    '</include>',
    '',
  ].join('\n');
  return install(esl, path, body);
}

/** Writes a dialplan file, `reloadxml`; remove() deletes it and reloads again (once). */
async function install(esl: EslClient, path: string, body: string): Promise<DialplanFile> {
  writeFileSync(path, body);
  await reload(esl);
  let removed = false;
  return {
    path,
    async remove() {
      if (removed) return;
      removed = true;
      rmSync(path, { force: true });
      await reload(esl);
    },
  };
}
