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
import { XMLValidator } from 'fast-xml-parser';
import { ConfigSchema } from '../../src/process/config.js';
import { callFacts, type CallRules } from '../../src/call/facts.js';
import {
  allApps,
  brief,
  childrenNamed,
  extensionsFrom,
  extensionsOf,
  hunt,
  huntExtension,
  parseXml,
  parseXmlText,
  runCall,
  sampleExtensions,
} from './dialplan-hunt.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CONF = path.join(ROOT, 'conf');
const DEFAULTS = ConfigSchema.parse({ ZAMMAD_CTI_URL: 'https://z.example/api/v1/cti/t' });
const CONFIG_NAMES = new Set(Object.keys(ConfigSchema.shape));
const SOCKET_DATA = `${DEFAULTS.ESL_HOST}:${DEFAULTS.ESL_PORT} async full`;
const RULES: CallRules = {
  inboundContexts: DEFAULTS.INBOUND_CONTEXTS,
  defaultBridge: DEFAULTS.DEFAULT_BRIDGE,
  defaultCountryCode: DEFAULTS.DEFAULT_COUNTRY_CODE,
  extensionMaxDigits: DEFAULTS.EXTENSION_MAX_DIGITS,
};

const read = (rel: string): string => readFileSync(path.join(ROOT, rel), 'utf8');

function xmlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return xmlFiles(full);
    return e.name.endsWith('.xml') ? [full] : [];
  });
}

// ---- bridge mode (conf/bridge-mode/) ---------------------------------------------------------------

const BRIDGE_DIALPLANS = [
  {
    file: 'conf/bridge-mode/dialplan/public/00_zammad_cti.xml',
    context: 'public',
    number: '4930555716',
    fallbackAttempted: 'NO_ANSWER',
  },
  {
    file: 'conf/bridge-mode/dialplan/default/00_zammad_cti.xml',
    context: 'default',
    number: '0305557160',
    fallbackAttempted: 'NO_ANSWER',
  },
] as const;

// ---- dialplan mode: the gate (conf/dialplan/) --------------------------------------------------------

const GATE_NAME = 'zammad_cti';
const GUARD = { field: '${zammad_handled}', expression: '^$' };

const GATES = [
  {
    file: 'conf/dialplan/public/00_zammad_cti.xml',
    context: 'public',
    pattern: '^(\\+?\\d{6,20})$',
    number: '4930555716',
    other: '1001',
    optional: ['zammad_queue', 'zammad_users'],
    // vanilla public.xml: `outside_call` (continue="true", absolute) runs before its include line
    before: `<include>
      <extension name="outside_call" continue="true">
        <condition>
          <action application="set" data="outside_call=true"/>
        </condition>
      </extension>
    </include>`,
    routing: `<include>
      <extension name="support_line">
        <condition field="destination_number" expression="^(4930555716)$">
          <action application="set" data="continue_on_fail=true"/>
          <action application="set" data="hangup_after_bridge=true"/>
          <action application="bridge" data="{originate_timeout=20}user/1000@example.com,user/1001@example.com"/>
          <action application="answer"/>
          <action application="voicemail" data="default example.com 1000"/>
        </condition>
      </extension>
      <extension name="public_extensions">
        <condition field="destination_number" expression="^(10[01][0-9])$">
          <action application="transfer" data="$1 XML default"/>
        </condition>
      </extension>
    </include>`,
  },
  {
    file: 'conf/dialplan/default/00_zammad_cti.xml',
    context: 'default',
    pattern: '^(0\\d{4,20}|\\+[1-9]\\d{5,14})$',
    number: '0305557160',
    other: '1001',
    optional: ['zammad_direction', 'zammad_queue'],
    before: `<include>
      <extension name="global" continue="true">
        <condition field="\${call_debug}" expression="^true$" break="never">
          <action application="info"/>
        </condition>
        <condition>
          <action application="export" data="RFC2822_DATE=now"/>
        </condition>
      </extension>
    </include>`,
    routing: `<include>
      <extension name="Local_Extension">
        <condition field="destination_number" expression="^(10[01][0-9])$">
          <action application="set" data="hangup_after_bridge=true"/>
          <action application="bridge" data="user/$1@example.com"/>
        </condition>
      </extension>
      <extension name="outbound_carrier">
        <condition field="destination_number" expression="^(0\\d+|\\+\\d+)$">
          <action application="set" data="effective_caller_id_number=\${outbound_caller_id_number}"/>
          <action application="set" data="hangup_after_bridge=true"/>
          <action application="bridge" data="sofia/gateway/carrier/$1"/>
        </condition>
      </extension>
    </include>`,
  },
] as const;

/**
 * Two adapters (docs/high-availability.md): the same gates with a `host1:port|host2:port` list,
 * which mod_event_socket's `socket` tries in order. The first entry is the one-adapter default.
 */
const HA_HOSTS = [DEFAULTS.ESL_PORT, DEFAULTS.ESL_PORT + 1].map((p) => `${DEFAULTS.ESL_HOST}:${p}`);
const HA_SOCKET_DATA = `${HA_HOSTS.join('|')} async full`;
const haFile = (file: string): string => file.replace('conf/dialplan/', 'conf/high-availability/dialplan/');
const ALL_GATES = [
  ...GATES.map((g) => ({ ...g, socket: SOCKET_DATA })),
  ...GATES.map((g) => ({ ...g, file: haFile(g.file), socket: HA_SOCKET_DATA })),
];

describe('conf/: every XML file', () => {
  const files = xmlFiles(CONF);

  it('finds the gates, the bridge-mode snippets and event_socket.conf.xml', () => {
    const rel = files.map((f) => path.relative(ROOT, f).split(path.sep).join('/')).sort();
    const wanted = [...ALL_GATES, ...BRIDGE_DIALPLANS].map((d) => d.file);
    for (const expected of [...wanted, 'conf/autoload_configs/event_socket.conf.xml']) {
      assert.ok(rel.includes(expected), `${expected} exists`);
    }
  });

  it('the bridge-mode snippets install to the same path as the gates (one or the other)', () => {
    for (const b of BRIDGE_DIALPLANS)
      assert.ok(
        GATES.some((g) => g.file === b.file.replace('conf/bridge-mode/', 'conf/')),
        b.file,
      );
  });

  it('the two-adapter gates install to the same path as the gates (one or the other)', () => {
    for (const g of GATES) assert.ok(files.includes(path.join(ROOT, haFile(g.file))), haFile(g.file));
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
        assert.ok(
          !body!.includes('$${') && !/X-PRE-PROCESS/i.test(body!),
          `pre-processor syntax inside a comment: ${body!.slice(0, 60)}`,
        );
      }
    });
  }
});

for (const gate of ALL_GATES) {
  const SOCKET_DATA = gate.socket;
  describe(`${gate.file} (the gate, dialplan mode)`, () => {
    const text = read(gate.file);
    const extensions = extensionsOf(path.join(ROOT, gate.file));
    const own = extensions[0];
    const context = [...sampleExtensions(gate.before), ...extensions, ...sampleExtensions(gate.routing)];
    const before = hunt(sampleExtensions(gate.before), { destination_number: gate.number });
    const routingFor = (number: string) => hunt(sampleExtensions(gate.routing), { destination_number: number });
    const GATE_APPS = ['set zammad_handled=true', `socket ${SOCKET_DATA}`];

    it(
      `is exactly the interface: one extension "${GATE_NAME}" continue="true", the guard, the number, ` +
        `set zammad_handled=true, then socket "${SOCKET_DATA}"`,
      () => {
        assert.equal(extensions.length, 1, "the file holds the gate alone; the routing is the shop's");
        assert.deepEqual(own!.attrs, { name: GATE_NAME, continue: 'true' });
        assert.equal(own!.conditions.length, 2);
        const [guard, number] = own!.conditions;
        assert.deepEqual(guard!.attrs, GUARD, 'first condition: ${zammad_handled} ^$');
        assert.deepEqual(guard!.children, [], 'the guard condition has no actions of its own');
        assert.deepEqual(number!.attrs, { field: 'destination_number', expression: gate.pattern });
        assert.deepEqual(brief(allApps(extensions)), GATE_APPS);
      },
    );

    it('test/switch takes this gate by text: the first socket action in the file is the real one', () => {
      const m = /<extension name="zammad_cti" continue="true">[\s\S]*?<\/extension>/.exec(text);
      assert.ok(m, 'the gate extension is in the file');
      assert.ok(m[0].includes('zammad_handled'));
      assert.equal(/<action application="socket" data="([^"]*)"/.exec(m[0])?.[1], SOCKET_DATA);
    });

    it(`the commented-out optional lines (${gate.optional.join(', ')}) are set before socket once uncommented`, () => {
      const uncommented = text.replace(/<!--\s*(<action application="set" data="[^"]*"\s*\/>)\s*-->/g, '$1');
      assert.notEqual(uncommented, text, 'optional set lines in comments');
      const apps = brief(allApps(extensionsFrom(parseXmlText(uncommented), gate.file)));
      assert.deepEqual(apps[0], GATE_APPS[0]);
      assert.deepEqual(apps.at(-1), GATE_APPS[1]);
      const optional = apps.slice(1, -1);
      assert.deepEqual(
        optional.map((a) => /^set (\w+)=/.exec(a)?.[1]),
        [...gate.optional],
      );
      const direction = optional.find((a) => a.startsWith('set zammad_direction='));
      if (direction)
        assert.equal(
          direction,
          `set zammad_direction=${DEFAULTS.INBOUND_CONTEXTS.includes(gate.context) ? 'in' : 'out'}`,
        );
    });

    it(
      'a call through it, without zammad_bridge, is in dialplan mode (DEFAULT_BRIDGE default empty), gated, ' +
        `direction ${DEFAULTS.INBOUND_CONTEXTS.includes(gate.context) ? 'in' : 'out'} from context "${gate.context}"`,
      () => {
        const headers: Record<string, string> = {
          'Unique-ID': 'u1',
          'Caller-Context': gate.context,
          'Caller-Destination-Number': gate.number,
          'Caller-Caller-ID-Number': '1000',
          variable_zammad_handled: 'true',
        };
        const facts = callFacts((h) => headers[h], RULES);
        assert.equal(facts.mode, 'dialplan');
        assert.equal(facts.gated, true);
        assert.equal(facts.direction, gate.context === 'public' ? 'in' : 'out');
      },
    );

    it('(a) first hunt: the gate adds set zammad_handled and socket, continue="true" appends the routing once', () => {
      const apps = brief(hunt(context, { destination_number: gate.number }));
      const routing = brief(routingFor(gate.number));
      assert.ok(routing.length > 0);
      assert.deepEqual(apps, [...brief(before), ...GATE_APPS, ...routing]);
    });

    it(
      '(b) after the hand-back (zammad_handled=true, also a transfer back into this context): ' +
        'the gate adds nothing, the routing runs, no socket',
      () => {
        const apps = hunt(context, { destination_number: gate.number, zammad_handled: 'true' });
        assert.deepEqual(brief(apps), [...brief(before), ...brief(routingFor(gate.number))]);
        assert.ok(!apps.some((a) => a.extension === GATE_NAME));
      },
    );

    it(`(c) a number the gate does not match (${gate.other}) routes without socket`, () => {
      const apps = hunt(context, { destination_number: gate.other });
      assert.ok(!apps.some((a) => a.app === 'socket' || a.extension === GATE_NAME));
      assert.deepEqual(brief(apps), [
        ...brief(hunt(sampleExtensions(gate.before), { destination_number: gate.other })),
        ...brief(routingFor(gate.other)),
      ]);
    });

    for (const adapter of ['up', 'down'] as const) {
      it(
        `the call runs: adapter ${adapter} → one socket, the routing's actions exactly ` +
          `once${adapter === 'up' ? ' (after the hand-back hunt)' : ' (appended after the failed socket)'}`,
        () => {
          const { ran, hunts } = runCall(context, { destination_number: gate.number }, adapter);
          assert.equal(ran.filter((a) => a.app === 'socket').length, 1);
          assert.equal(hunts, adapter === 'up' ? 2 : 1);
          const routing = routingFor(gate.number);
          const routed = ran.filter(
            (a) => a.extension !== GATE_NAME && routing.some((r) => r.extension === a.extension),
          );
          assert.deepEqual(brief(routed), brief(routing), 'the routing ran once, in full');
          assert.ok(
            ran.findIndex((a) => a.app === 'socket') < ran.findIndex((a) => a.extension === routing[0]!.extension),
          );
        },
      );
    }
  });
}

for (const plan of BRIDGE_DIALPLANS) {
  describe(`${plan.file} (bridge mode)`, () => {
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

    it('does not continue the hunt after the main extension (bridge mode owns the routing)', () => {
      assert.ok(main);
      assert.equal(main.continues, false);
    });

    it(
      'the guard: the first condition is ${zammad_handled} ^$, ' + 'and zammad_handled=true is set before the socket',
      () => {
        assert.ok(main);
        assert.deepEqual(main.conditions[0]?.attrs, GUARD);
        assert.deepEqual(main.conditions[0]?.children, []);
        assert.ok(before.some((a) => a.app === 'set' && a.data === 'zammad_handled=true'));
      },
    );

    it(
      'a call that has been through the socket (zammad_handled=true: a REFER or transfer back into this context) ' +
        'does not reach the socket again',
      () => {
        const first = hunt(extensions, { destination_number: plan.number });
        assert.equal(first.filter((a) => a.app === 'socket').length, 1);
        const again = hunt(extensions, { destination_number: plan.number, zammad_handled: 'true' });
        assert.ok(!again.some((a) => a.app === 'socket' || a.app === 'bridge'), JSON.stringify(again));
      },
    );

    it(
      `sets zammad_direction=${expectedDirection} before the socket (context "${plan.context}", ` +
        `INBOUND_CONTEXTS ${DEFAULTS.INBOUND_CONTEXTS.join(',')})`,
      () => {
        const sets = before.filter((a) => a.app === 'set' && a.data.startsWith('zammad_direction='));
        assert.deepEqual(
          sets.map((a) => a.data),
          [`zammad_direction=${expectedDirection}`],
        );
        assert.ok(
          !apps.some(
            (a) =>
              a.app === 'set' &&
              a.data.startsWith('zammad_direction=') &&
              a.data !== `zammad_direction=${expectedDirection}`,
          ),
        );
      },
    );

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
      assert.ok(
        !after.some((a) => a.app === 'bridge' || a.app === 'transfer'),
        'an unguarded bridge after socket would ring the agents a second time',
      );
      // Everything of the main extension that comes after the fallback only ends the call.
      assert.ok(after.slice(fallbackAt + 1).every((a) => a.app === 'hangup' || a.app === 'log'));
    });

    const target = after.find((a) => a.app === 'execute_extension')?.data.split(/\s+/)[0] ?? '';

    it('the fallback target is not matched by the main extension (no second socket, no loop)', () => {
      assert.ok(target);
      assert.ok(main);
      assert.equal(huntExtension(main, { destination_number: target, zammad_cti_fallback: 'armed' }).matched, false);
    });

    // State of the channel when `socket` returned with the caller still up (the main extension
    // has set zammad_handled and armed the fallback).
    const afterSocket = (originateDisposition: string | undefined) =>
      hunt(extensions, {
        destination_number: target,
        zammad_cti_fallback: 'armed',
        zammad_handled: 'true',
        ...(originateDisposition === undefined ? {} : { originate_disposition: originateDisposition }),
      });

    it(
      'adapter never reached (nothing bridged, originate_disposition empty): ' +
        'the fallback bridges ${zammad_bridge} once',
      () => {
        const run = afterSocket(undefined);
        assert.deepEqual(
          run.filter((a) => a.app === 'bridge').map((a) => a.data),
          ['${zammad_bridge}'],
        );
        assert.ok(!run.some((a) => a.app === 'hangup' && run.indexOf(a) < run.findIndex((b) => b.app === 'bridge')));
        assert.ok(!run.some((a) => a.app === 'socket'));
      },
    );

    for (const disposition of ['failure', plan.fallbackAttempted, 'SUCCESS', 'success']) {
      it(
        `connection lost after the adapter's bridge (originate_disposition=${disposition}): ` +
          'no second bridge, hang up',
        () => {
          const run = afterSocket(disposition);
          assert.ok(!run.some((a) => a.app === 'bridge'), JSON.stringify(run));
          assert.ok(run.some((a) => a.app === 'hangup'));
        },
      );
    }

    it('a caller who dials the fallback name directly does not reach its bridge', () => {
      const run = hunt(extensions, { destination_number: target });
      assert.ok(!run.some((a) => a.app === 'bridge' || a.app === 'socket'));
    });
  });
}

for (const gate of GATES) {
  describe(`${haFile(gate.file)} (two adapters)`, () => {
    const one = extensionsOf(path.join(ROOT, gate.file));
    const two = extensionsOf(path.join(ROOT, haFile(gate.file)));
    const socketOf = (xs: typeof one) => allApps(xs).find((a) => a.app === 'socket')?.data ?? '';
    const withoutSocket = (xs: typeof one) => brief(allApps(xs).filter((a) => a.app !== 'socket'));

    it('is the one-adapter gate but for the socket line: same extension, conditions and other actions', () => {
      assert.deepEqual(
        two.map((x) => x.attrs),
        one.map((x) => x.attrs),
      );
      const conditions = (xs: typeof one) => xs.map((x) => x.conditions.map((c) => c.attrs));
      assert.deepEqual(conditions(two), conditions(one));
      assert.deepEqual(withoutSocket(two), withoutSocket(one));
    });

    // mod_event_socket.c socket_function: the first word is split on '|', each entry is
    // host[:port]; a port left out is the previous entry's (8084 for the first), so spell each.
    it('lists two distinct host:port entries, the one-adapter address first, no spaces inside the list', () => {
      const [list = '', ...flags] = socketOf(two).split(' ');
      assert.deepEqual(flags, ['async', 'full']);
      const entries = list.split('|');
      assert.equal(entries.length, 2);
      for (const e of entries) assert.match(e, /^[\w.-]+:\d+$/, e);
      assert.equal(new Set(entries).size, 2);
      assert.equal(`${entries[0]} async full`, socketOf(one));
    });
  });
}

describe('conf/autoload_configs/event_socket.conf.xml', () => {
  const roots = parseXml(path.join(CONF, 'autoload_configs/event_socket.conf.xml'));
  const config = roots[0];
  const params = new Map(
    (config ? childrenNamed(config, 'settings') : [])
      .flatMap((s) => childrenNamed(s, 'param'))
      .map((p) => [p.attrs.name ?? '', p.attrs.value ?? '']),
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
    for (const name of names)
      assert.ok(name === 'NODE_ENV' || CONFIG_NAMES.has(name), `ENV ${name} is not in ConfigSchema`);
  });

  it('keeps the outbox on the declared volume and exposes the ESL and status ports', () => {
    const env = new Map<string, string>();
    for (const i of final.filter((x) => x.keyword === 'ENV')) {
      for (const m of i.args.matchAll(/([A-Za-z_]\w*)=(\S+)/g)) env.set(m[1]!, m[2]!);
    }
    const volumes = final
      .filter((i) => i.keyword === 'VOLUME')
      .map((i) =>
        i.args
          .replace(/^\[|\]$/g, '')
          .replace(/"/g, '')
          .trim(),
      );
    const outbox = env.get('OUTBOX_PATH') ?? '';
    assert.ok(
      volumes.some((v) => outbox.startsWith(`${v}/`)),
      `OUTBOX_PATH ${outbox} under ${volumes.join(',')}`,
    );
    const exposed = final.filter((i) => i.keyword === 'EXPOSE').flatMap((i) => i.args.split(/\s+/));
    assert.ok(exposed.includes(String(DEFAULTS.ESL_PORT)));
    assert.ok(exposed.includes(String(DEFAULTS.STATUS_PORT)));
  });

  it('.dockerignore keeps secrets, local state and dependencies out of the build context', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const entry of ['node_modules', 'dist', '.env', 'data', '.git', 'test', 'bench'])
      assert.ok(ignored.includes(entry), entry);
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
