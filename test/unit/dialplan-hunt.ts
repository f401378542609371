/**
 * The conf/ tests' model of FreeSWITCH's XML dialplan: the XML files as ordered trees
 * (fast-xml-parser, preserveOrder), and what mod_dialplan_xml does with them at hunt time
 * (parse_exten's conditions, break and anti-actions; dialplan_hunt's continue="true"), and a
 * channel running its hunt's list with the adapter up or down at the gate's `socket`.
 * Used by conf.test.ts; no tests here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { XMLParser } from 'fast-xml-parser';

// ---- XML as an ordered tree (fast-xml-parser, preserveOrder) ------------------------------------

export interface XmlNode {
  tag: string;
  attrs: Record<string, string>;
  children: XmlNode[];
}

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseAttributeValue: false,
});

function toNodes(raw: unknown): XmlNode[] {
  if (!Array.isArray(raw)) return [];
  return raw.flatMap((item: Record<string, unknown>) => {
    const tag = Object.keys(item).find((k) => k !== ':@');
    if (tag === undefined || tag === '#text' || tag.startsWith('?')) return [];
    const attrs = (item[':@'] ?? {}) as Record<string, string>;
    return [{ tag, attrs, children: toNodes(item[tag]) }];
  });
}

export const parseXmlText = (text: string): XmlNode[] => toNodes(parser.parse(text));
export const parseXml = (file: string): XmlNode[] => parseXmlText(readFileSync(file, 'utf8'));

export const childrenNamed = (node: XmlNode, tag: string) => node.children.filter((c) => c.tag === tag);

// ---- dialplan: what mod_dialplan_xml would run ----------------------------------------------------

export interface App {
  app: string;
  data: string;
  anti: boolean;
  extension: string;
}

export interface Extension {
  name: string;
  attrs: Record<string, string>;
  /** continue="true": the hunt goes on after this extension matched (switch_true). */
  continues: boolean;
  conditions: XmlNode[];
}

const switchTrue = (v: string | undefined) =>
  v !== undefined && /^(true|yes|on|enabled|active|allow|[1-9]\d*)$/i.test(v.trim());

export function extensionsFrom(roots: XmlNode[], where: string): Extension[] {
  assert.equal(roots.length, 1, `${where}: one root element`);
  const root = roots[0]!;
  assert.equal(
    root.tag,
    'include',
    `${where}: a conf/dialplan/<context>/*.xml file is included inside <context>, so its root is <include>`,
  );
  return childrenNamed(root, 'extension').map((x) => ({
    name: x.attrs.name ?? '',
    attrs: x.attrs,
    continues: switchTrue(x.attrs.continue),
    conditions: childrenNamed(x, 'condition'),
  }));
}

export const extensionsOf = (file: string): Extension[] => extensionsFrom(parseXml(file), file);

/** Every action and anti-action of a file, in document order. */
export function allApps(extensions: Extension[]): App[] {
  return extensions.flatMap((x) =>
    x.conditions.flatMap((c) =>
      c.children
        .filter((a) => a.tag === 'action' || a.tag === 'anti-action')
        .map((a) => ({
          app: a.attrs.application ?? '',
          data: a.attrs.data ?? '',
          anti: a.tag === 'anti-action',
          extension: x.name,
        })),
    ),
  );
}

/** `${name}` from the variables, '' when unset (as FreeSWITCH expands an unset variable). */
const expand = (text: string, vars: Record<string, string>) =>
  text.replace(/\$\{([\w-]+)\}/g, (_m, name: string) => vars[name] ?? '');

/**
 * One extension as mod_dialplan_xml's parse_exten() evaluates it at hunt time, for the plain
 * conditions these files use (no nesting, no regex="…" lists, no time attributes): the conditions
 * in order; a condition without `field` is absolute (passes); a passing one adds its actions, a
 * failing one its anti-actions; break="on-false" (the default) ends the extension on a failing
 * condition, "on-true" on a passing one, "always" after either, "never" never. A field without
 * `${…}` is a caller-profile field. `proceed` is parse_exten's return value: the result of the
 * last condition evaluated, or true once anti-actions were added; `matched`: every condition passed.
 */
export function huntExtension(
  x: Extension,
  vars: Record<string, string>,
): { matched: boolean; proceed: boolean; apps: App[] } {
  const apps: App[] = [];
  let proceed = false;
  let matched = true;
  for (const c of x.conditions) {
    const field = c.attrs.field;
    const value = field === undefined ? '' : field.includes('${') ? expand(field, vars) : (vars[field] ?? '');
    const pass = field === undefined || new RegExp(expand(c.attrs.expression ?? '', vars)).test(value);
    proceed = pass;
    if (!pass) matched = false;
    const wanted = pass ? 'action' : 'anti-action';
    for (const a of c.children) {
      if (a.tag !== wanted) continue;
      apps.push({ app: a.attrs.application ?? '', data: a.attrs.data ?? '', anti: !pass, extension: x.name });
      if (!pass) proceed = true;
    }
    const brk = (c.attrs.break ?? 'on-false').toLowerCase();
    if (brk === 'always' || (brk === 'on-false' && !pass) || (brk === 'on-true' && pass)) break;
  }
  return { matched, proceed, apps };
}

/**
 * A hunt through a context, as mod_dialplan_xml's dialplan_hunt(): every extension from the top;
 * the apps of each are appended to the one list the channel then executes; an extension that
 * proceeds ends the hunt unless it has continue="true".
 */
export function hunt(extensions: Extension[], vars: Record<string, string>): App[] {
  const apps: App[] = [];
  for (const x of extensions) {
    const r = huntExtension(x, vars);
    apps.push(...r.apps);
    if (r.proceed && !x.continues) break;
  }
  return apps;
}

export const brief = (apps: App[]) => apps.map((a) => `${a.anti ? '!' : ''}${a.app} ${a.data}`.trim());

/**
 * The channel executing its hunt's list, with the adapter up or down at the gate's `socket`.
 * Adapter down (connection refused): `socket` fails at once and the next action runs (routing/
 * observation 11). Adapter up: it posts newCall and hands the call back with the transfer alone
 * (`transfer ${destination_number} XML ${context}`; the adapter's own `set zammad_handled` safety
 * net is left out, so that the gate has to set it): the rest of the list is abandoned and the same
 * context is hunted again with the channel's variables as they are now (observation 1). A routing
 * `transfer` elsewhere ends the run (it leaves this context). Returns what ran, in order.
 */
export function runCall(
  context: Extension[],
  start: Record<string, string>,
  adapter: 'up' | 'down',
): { ran: App[]; hunts: number } {
  const vars = { ...start };
  const ran: App[] = [];
  let apps = hunt(context, vars);
  let hunts = 1;
  for (let i = 0; i < apps.length; i += 1) {
    const a = apps[i]!;
    ran.push(a);
    if (a.app === 'set' || a.app === 'export') {
      const [name = '', ...value] = expand(a.data, vars).split('=');
      vars[name] = value.join('=');
    } else if (a.app === 'unset') {
      delete vars[a.data];
    } else if (a.app === 'socket' && adapter === 'up') {
      assert.ok(hunts < 5, `the hand-back loops: ${brief(ran).join(' | ')}`);
      apps = hunt(context, vars);
      hunts += 1;
      i = -1;
    } else if (a.app === 'transfer' || a.app === 'hangup') {
      break;
    }
  }
  return { ran, hunts };
}

/** Extensions from an XML text holding `<include>` and extensions (a sample context). */
export const sampleExtensions = (xml: string): Extension[] => extensionsFrom(parseXmlText(xml), 'sample');
