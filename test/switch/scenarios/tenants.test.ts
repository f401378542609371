/**
 * Endpoints per tenant (issue 14) against a real FreeSWITCH 1.10.12: the built adapter with
 * ZAMMAD_CTI_URL (the endpoint "default", its line's Zammad double) and ZAMMAD_ENDPOINTS_FILE
 * naming a second Zammad double, "globex", for the domain globex.test. The suite's dialplan sets
 * `domain_name` (or `zammad_endpoint`) before the shipped gate, as a FusionPBX inbound route
 * does (`set domain_name=…`); each call's events must reach its tenant's Zammad and no other.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { RealSwitch } from '../harness.js';
import { zammadGate, type Extension } from '../dialplan.js';
import type { Line } from '../adapter.js';
import { CALLER, common, executions, user } from '../scenario-kit.js';
import { ZammadDouble } from '@freeswitch-zammad-cti/sim/zammad';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CONF_GATE = join(ROOT, 'conf', 'dialplan', 'public', '00_zammad_cti.xml');
const CTX = 'cti_test_tn';
const N = {
  globex: '493099984001',
  other: '493099984002',
  byVariable: '493099984003',
  globexBridge: '493099984004',
} as const;

let sw: RealSwitch;
let main: Line;
let globex: ZammadDouble;
const dir = mkdtempSync(join(tmpdir(), 'cti-tenants-switch-'));

before(async () => {
  sw = await RealSwitch.open();
  globex = new ZammadDouble({ token: `globex-${randomUUID()}` });
  await globex.start();
  const file = join(dir, 'endpoints.json');
  writeFileSync(file, JSON.stringify({ endpoints: [{ name: 'globex', url: globex.url, domains: ['globex.test'] }] }));
  main = await sw.line({ name: 'tenants', env: { DEFAULT_BRIDGE: '', ZAMMAD_ENDPOINTS_FILE: file } });
  const hab: Extension['actions'][number] = ['set', 'hangup_after_bridge=true'];
  const before = (name: string, number: string, actions: Extension['actions']): Extension => ({
    name: `cti_test_tn_${name}_vars`,
    number,
    continue: true,
    actions,
  });
  await sw.contexts(`00_cti_test_tn_${process.pid}`, [
    {
      name: CTX,
      extensions: [
        before('globex', N.globex, [['set', 'domain_name=globex.test']]),
        before('other', N.other, [['set', 'domain_name=initech.test']]),
        before('by_variable', N.byVariable, [['set', 'zammad_endpoint=globex']]),
        before('globex_bridge', N.globexBridge, [
          ['set', 'domain_name=GLOBEX.test'],
          ['set', `zammad_bridge=${user('2003')}`],
        ]),
        zammadGate(main.eslPort, CONF_GATE).xml,
        { name: 'cti_test_tn_route', expression: '^(4930999840\\d\\d)$', actions: [hab, ['bridge', user('2003')]] },
      ],
    },
  ]);
  await sw.dialplan(`00_cti_test_tn_${process.pid}`, [
    {
      name: 'cti_test_tn_to_ctx',
      expression: '^(4930999840\\d\\d)$',
      actions: [
        ['set', 'zammad_direction=in'],
        ['transfer', `$1 XML ${CTX}`],
      ],
    },
  ]);
});

after(async () => {
  await sw?.close();
  await globex?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The line with another Zammad: sw.finished() waits for the hangup at the tenant's double. */
const at = (zammad: ZammadDouble): Line => ({ ...main, zammad });

describe('endpoints per tenant on a real FreeSWITCH', { concurrency: true }, () => {
  for (const [name, number, tenant, mode] of [
    ['domain_name=globex.test, dialplan mode → globex', N.globex, 'globex', 'dialplan'],
    ['domain_name=GLOBEX.test, bridge mode (zammad_bridge) → globex', N.globexBridge, 'globex', 'bridge'],
    ['zammad_endpoint=globex, no domain → globex', N.byVariable, 'globex', 'dialplan'],
    ['domain_name=initech.test (no endpoint lists it) → ZAMMAD_CTI_URL', N.other, 'default', 'dialplan'],
  ] as const) {
    test(`${name}: newCall, answer, hangup there and nowhere else`, async () => {
      const own = tenant === 'globex' ? globex : main.zammad;
      const other = tenant === 'globex' ? main.zammad : globex;
      const call = sw.call(`tn-${number}`, { to: number, from: CALLER });
      const done = await sw.finished(at(own), call);
      await sw.judge(done, () => {
        const c = common(done, number);
        assert.deepEqual(done.params, [
          { event: 'newCall', ...c, ...(mode === 'bridge' ? { user: ['Bob Agent'] } : {}) },
          { event: 'answer', ...c, user: 'Bob Agent', answeringNumber: '2003' },
          { event: 'hangup', ...c, cause: 'normalClearing', answeringNumber: '2003' },
        ]);
        assert.deepEqual(other.postsFor(done.callId), [], `nothing of the call reached the other Zammad`);
        assert.equal(executions(done.inbound, 'socket').length, 1, 'one socket');
        assert.equal(executions(done.inbound, 'bridge').length, 1, 'bridged once');
      });
    });
  }
});
