/**
 * One switch, many Zammads (issue 14): the real adapter program with ZAMMAD_ENDPOINTS_FILE, two
 * or three Zammad doubles (one per tenant), the switch double placing calls of several domains
 * in bridge mode and in dialplan mode. Every test also greps everything the adapter said and
 * showed for every tenant's token.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeSwitch, placeCall, type CallScript, type SwitchCall } from '@freeswitch-zammad-cti/sim/switch';
import { InboundSwitch } from '../doubles/inbound-switch.js';
import { ZammadDouble } from '@freeswitch-zammad-cti/sim/zammad';
import { startAdapter, tempOutbox, type AdapterProcess } from './adapter-process.js';
import { metrics } from './raw-switch.js';

const dir = mkdtempSync(join(tmpdir(), 'cti-tenants-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Tenant {
  name: string;
  domains: string[];
  zammad: ZammadDouble;
  token: string;
}

const running: { adapters: AdapterProcess[]; doubles: ZammadDouble[] } = { adapters: [], doubles: [] };
after(async () => {
  for (const a of running.adapters) await a.stop().catch(() => {});
  for (const z of running.doubles) await z.stop();
});

async function tenant(name: string, domains: string[]): Promise<Tenant> {
  // A token that shows up nowhere else: the grep below finds any leak of it.
  const token = `${name}-secret-${randomUUID()}`;
  const zammad = new ZammadDouble({ token });
  await zammad.start();
  running.doubles.push(zammad);
  return { name, domains, zammad, token };
}

function endpointsFile(tenants: readonly Tenant[], file = join(dir, `endpoints-${randomUUID()}.json`)): string {
  writeFileSync(
    file,
    JSON.stringify(
      { endpoints: tenants.map((t) => ({ name: t.name, url: t.zammad.url, domains: t.domains })) },
      null,
      2,
    ),
  );
  return file;
}

async function adapterFor(file: string, env: Record<string, string> = {}): Promise<AdapterProcess> {
  const adapter = await startAdapter({
    ZAMMAD_ENDPOINTS_FILE: file,
    DEFAULT_BRIDGE: '',
    ZAMMAD_NEWCALL_TIMEOUT_MS: '1500',
    ZAMMAD_REQUEST_TIMEOUT_MS: '1000',
    RETRY_BASE_MS: '100',
    RETRY_MAX_MS: '400',
    ...env,
  });
  running.adapters.push(adapter);
  return adapter;
}

const hab = { app: 'set', data: 'hangup_after_bridge=true' };

/**
 * A call of a domain; bridge mode (zammad_bridge) or dialplan mode (the gate's zammad_handled, routed by the dialplan).
 */
function callOf(
  domain: string | undefined,
  mode: 'bridge' | 'dialplan',
  extra: Record<string, string> = {},
  talkMs = 100,
): CallScript {
  const dest = '4930998001';
  const agent = `user/2003@${domain ?? 'nowhere.example'}`;
  return {
    timeScale: 1,
    originateTimeoutMs: 5000,
    dialplan: { public: { [dest]: [hab, { app: 'bridge', data: agent }] } },
    targets: { '2003': { kind: 'answer', ringMs: 20, talkMs } },
    channel: {
      uuid: randomUUID(),
      context: 'public',
      sip: true,
      callerNumber: '493055571600',
      destination: dest,
      variables: {
        zammad_direction: 'in',
        ...(domain !== undefined ? { domain_name: domain } : {}),
        ...(mode === 'bridge' ? { zammad_bridge: agent } : { zammad_handled: 'true' }),
        ...extra,
      },
    },
  };
}

async function place(adapter: AdapterProcess, script: CallScript): Promise<SwitchCall> {
  return placeCall({ host: '127.0.0.1', port: adapter.eslPort }, script);
}

/** ms from the connection to the command that routes the call (bridge, or the hand-back transfer). */
function routedAfterMs(call: SwitchCall): number {
  const routing = call.commands.find((c) => c.name === 'sendmsg' && /execute-app-name: (bridge|transfer)/i.test(c.raw));
  assert.ok(routing, `the call was routed: ${call.commands.map((c) => c.raw.split('\n')[0]).join(' | ')}`);
  return routing.at;
}

const accepted = (z: ZammadDouble, callId: string) => z.acceptedEvents(callId);

async function done(
  tenant: Tenant,
  call: SwitchCall,
  events = ['newCall', 'answer', 'hangup'],
  timeoutMs = 5000,
): Promise<void> {
  await call.closed;
  await tenant.zammad.waitFor((z) => accepted(z, call.uuid).length >= events.length, timeoutMs);
  await new Promise((r) => setTimeout(r, 100)); // a stray post would show up now
  assert.deepEqual(accepted(tenant.zammad, call.uuid), events, `${tenant.name} has the call once, in order`);
}

function noPosts(call: SwitchCall, ...tenants: Tenant[]): void {
  for (const t of tenants)
    assert.deepEqual(t.zammad.postsFor(call.uuid), [], `nothing of call ${call.uuid} reached ${t.name}`);
}

/** No tenant's token in anything the adapter wrote, in /metrics or /readyz. */
async function noTokens(adapter: AdapterProcess, tenants: readonly Tenant[]): Promise<void> {
  const base = `http://127.0.0.1:${adapter.statusPort}`;
  const alive = adapter.proc.exitCode === null && adapter.proc.signalCode === null;
  const pages = alive
    ? (
        await Promise.all(['/metrics', '/readyz', '/healthz'].map(async (p) => (await fetch(`${base}${p}`)).text()))
      ).join('\n')
    : '';
  for (const t of tenants) {
    for (const needle of [t.token, encodeURIComponent(t.token)]) {
      assert.ok(!adapter.output().includes(needle), `${t.name}'s token is not in the adapter's output`);
      assert.ok(!pages.includes(needle), `${t.name}'s token is not on the status pages`);
    }
  }
}

describe('endpoints per tenant', () => {
  test(
    'routing by domain_name and by zammad_endpoint, in both modes; a call that matches nothing is routed at once ' +
      'and not reported',
    async () => {
      const acme = await tenant('acme', ['acme.example.com']);
      const globex = await tenant('globex', ['globex.example.com', 'Globex-2.example.com']);
      const adapter = await adapterFor(endpointsFile([acme, globex]));

      const byDomainBridge = await place(adapter, callOf('acme.example.com', 'bridge'));
      const byDomainDialplan = await place(adapter, callOf('GLOBEX-2.example.com', 'dialplan'));
      const byVariable = await place(adapter, callOf('acme.example.com', 'bridge', { zammad_endpoint: 'globex' }));
      const byVariableDialplan = await place(adapter, callOf(undefined, 'dialplan', { zammad_endpoint: 'acme' }));
      await done(acme, byDomainBridge);
      await done(globex, byDomainDialplan);
      await done(globex, byVariable);
      await done(acme, byVariableDialplan);
      noPosts(byDomainBridge, globex);
      noPosts(byDomainDialplan, acme);
      noPosts(byVariable, acme);
      noPosts(byVariableDialplan, globex);
      assert.equal(
        globex.zammad.entry(byDomainDialplan.uuid)?.answeredBy !== undefined ||
          globex.zammad.entry(byDomainDialplan.uuid)?.done,
        true,
      );

      const nowhere = [
        await place(adapter, callOf('initrode.example', 'bridge')),
        await place(adapter, callOf('initrode.example', 'dialplan')),
        await place(adapter, callOf(undefined, 'bridge')),
        await place(adapter, callOf('acme.example.com', 'bridge', { zammad_endpoint: 'acmee' })),
      ];
      for (const call of nowhere) {
        await call.channelDone;
        await call.closed;
        // Routed as a call without Zammad: the dial string or the hand-back at once, never the newCall timeout.
        assert.ok(routedAfterMs(call) < 1000, `routed after ${routedAfterMs(call)} ms`);
        assert.equal(call.hangupCause, 'NORMAL_CLEARING', 'the call went through');
      }
      await new Promise((r) => setTimeout(r, 200));
      for (const call of nowhere) noPosts(call, acme, globex);

      const domainLines = adapter.lines.filter((l) =>
        l.message.includes('no Zammad endpoint for domain "initrode.example"'),
      );
      assert.equal(domainLines.length, 1, 'one line per domain (and hour), not one per call');
      assert.equal(adapter.lines.filter((l) => l.message.includes('calls without domain_name')).length, 1);
      const unknown = adapter.lines.filter(
        (l) => l.level === 'error' && l.message.includes('zammad_endpoint "acmee" names no endpoint'),
      );
      assert.equal(unknown.length, 1, 'an unknown zammad_endpoint: an error line naming it');
      const m = await metrics(adapter.statusPort);
      assert.equal(m.get('cti_calls_unrouted_total{reason="no-match"}'), 3);
      assert.equal(m.get('cti_calls_unrouted_total{reason="unknown-endpoint"}'), 1);
      assert.equal(m.get('cti_zammad_posts_total{endpoint="acme",event="newCall",status="200"}'), 2);
      assert.equal(m.get('cti_zammad_posts_total{endpoint="globex",event="hangup",status="200"}'), 2);
      await noTokens(adapter, [acme, globex]);
    },
  );

  test(
    'one Zammad answering 401: only its endpoint is not ready, ' +
      'its callers are not held up, the other tenant flows',
    async () => {
      const acme = await tenant('acme', ['acme.example.com']);
      const globex = await tenant('globex', ['globex.example.com']);
      const adapter = await adapterFor(endpointsFile([acme, globex]));
      globex.zammad.update({ token: `rotated-${randomUUID()}` }); // the file's token is wrong now: 401

      const refused = await place(adapter, callOf('globex.example.com', 'bridge'));
      const fine = await place(adapter, callOf('acme.example.com', 'dialplan'));
      await done(acme, fine);
      await refused.closed;
      assert.ok(
        routedAfterMs(refused) < 1000,
        `a 401 ends the wait at once (routed after ${routedAfterMs(refused)} ms)`,
      );
      assert.deepEqual(accepted(globex.zammad, refused.uuid), []);

      const ready = await fetch(`http://127.0.0.1:${adapter.statusPort}/readyz`);
      assert.equal(ready.status, 503);
      const body = (await ready.json()) as { checks: Record<string, { ok: boolean; detail?: string }> };
      assert.equal(body.checks['zammad:acme']?.ok, true);
      assert.equal(body.checks['zammad:globex']?.ok, false);
      assert.match(body.checks['zammad']?.detail ?? '', /not ready: globex \(/);
      const m = await metrics(adapter.statusPort);
      assert.equal(m.get('cti_zammad_config_fault{endpoint="globex"}'), 1);
      assert.equal(m.get('cti_zammad_config_fault{endpoint="acme"}'), 0);
      assert.equal(m.get('cti_outbox_events{endpoint="globex"}'), 3, "the refused call's events are kept for globex");
      await noTokens(adapter, [acme, globex]);
    },
  );

  test(
    "one Zammad down for a minute while the other tenant's calls flow: their decisions and events are not held up, " +
      'and the down one gets everything once it is back',
    async () => {
      const acme = await tenant('acme', ['acme.example.com']);
      const globex = await tenant('globex', ['globex.example.com']);
      const adapter = await adapterFor(endpointsFile([acme, globex]));
      // Down the nasty way: requests are read and never answered, so its pool fills with hanging requests.
      globex.zammad.setFault({ kind: 'hang' });

      const acmeCalls: { call: SwitchCall; closedAt: number }[] = [];
      const globexCalls: SwitchCall[] = [];
      const started = Date.now();
      const downForMs = 60_000;
      let i = 0;
      while (Date.now() - started < downForMs) {
        const call = await place(adapter, callOf('acme.example.com', i % 2 ? 'dialplan' : 'bridge'));
        void call.closed.then(() => acmeCalls.push({ call, closedAt: Date.now() }));
        if (i % 5 === 0)
          globexCalls.push(await place(adapter, callOf('globex.example.com', i % 2 ? 'dialplan' : 'bridge')));
        i++;
        await new Promise((r) => setTimeout(r, 1000));
      }
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(acmeCalls.length >= 50, `${acmeCalls.length} acme calls`);
      for (const { call, closedAt } of acmeCalls) {
        assert.ok(
          routedAfterMs(call) < 500,
          `acme's decision within its usual time while globex is down (routed after ${routedAfterMs(call)} ms)`,
        );
        await done(acme, call);
        const hangup = acme.zammad.postsFor(call.uuid).find((p) => p.event === 'hangup');
        assert.ok(
          hangup && hangup.at - closedAt < 1000,
          `acme's hangup arrived at once (${hangup ? hangup.at - closedAt : '-'} ms after the call)`,
        );
      }
      for (const call of globexCalls) {
        await call.closed;
        assert.ok(routedAfterMs(call) < 2500, "globex's callers wait at most the newCall timeout");
      }
      const ready = (await (await fetch(`http://127.0.0.1:${adapter.statusPort}/readyz`)).json()) as {
        checks: Record<string, { ok: boolean }>;
      };
      assert.equal(ready.checks['zammad:globex']?.ok, false);
      assert.equal(ready.checks['zammad:acme']?.ok, true);

      globex.zammad.clearFault();
      for (const call of globexCalls) {
        await globex.zammad.waitFor((z) => accepted(z, call.uuid).includes('hangup'), 15_000);
        assert.deepEqual(
          accepted(globex.zammad, call.uuid),
          ['newCall', 'answer', 'hangup'],
          'globex gets every event, in order, once stored',
        );
        noPosts(call, acme);
      }
      await noTokens(adapter, [acme, globex]);
    },
  );

  test(
    'SIGKILL with events of both tenants waiting: ' + "after the restart each Zammad gets its own calls' events, once",
    async () => {
      const acme = await tenant('acme', ['acme.example.com']);
      const globex = await tenant('globex', ['globex.example.com']);
      const file = endpointsFile([acme, globex]);
      const outbox = tempOutbox();
      const first = await adapterFor(file, { OUTBOX_PATH: outbox });
      await acme.zammad.refuseConnections();
      await globex.zammad.refuseConnections();
      const calls = { acme: [] as SwitchCall[], globex: [] as SwitchCall[] };
      for (let n = 0; n < 3; n++) {
        calls.acme.push(await place(first, callOf('acme.example.com', n % 2 ? 'dialplan' : 'bridge')));
        calls.globex.push(await place(first, callOf('globex.example.com', n % 2 ? 'bridge' : 'dialplan')));
      }
      for (const call of [...calls.acme, ...calls.globex]) await call.closed;
      const m = await metrics(first.statusPort);
      assert.equal(m.get('cti_outbox_events{endpoint="acme"}'), 9);
      assert.equal(m.get('cti_outbox_events{endpoint="globex"}'), 9);
      first.proc.kill('SIGKILL');
      await first.exited;

      await acme.zammad.acceptConnections();
      await globex.zammad.acceptConnections();
      const second = await adapterFor(file, { OUTBOX_PATH: outbox });
      for (const call of calls.acme) await done(acme, call, ['newCall', 'answer', 'hangup'], 10_000);
      for (const call of calls.globex) await done(globex, call, ['newCall', 'answer', 'hangup'], 10_000);
      for (const call of calls.acme) noPosts(call, globex);
      for (const call of calls.globex) noPosts(call, acme);
      await noTokens(first, [acme, globex]);
      await noTokens(second, [acme, globex]);
    },
  );

  test(
    'SIGHUP: a new tenant starts, a bad file keeps the endpoints in use, ' +
      "a removed tenant's events are kept until it is back",
    async () => {
      const acme = await tenant('acme', ['acme.example.com']);
      const globex = await tenant('globex', ['globex.example.com']);
      const initech = await tenant('initech', ['initech.example']);
      const file = endpointsFile([acme, globex]);
      const adapter = await adapterFor(file);

      // A globex call in progress while globex leaves the file.
      const talking = await place(adapter, callOf('globex.example.com', 'dialplan', {}, 3000));
      await globex.zammad.waitFor((z) => accepted(z, talking.uuid).includes('answer'), 5000);
      endpointsFile([acme, initech], file);
      adapter.proc.kill('SIGHUP');
      await adapter.waitForLog((l) => l.message === 'SIGHUP: endpoints read again');
      const reread = adapter.lines.find((l) => l.message === 'SIGHUP: endpoints read again');
      assert.equal(reread?.['added'], 'initech');
      assert.equal(reread?.['removed'], 'globex');

      const fresh = await place(adapter, callOf('initech.example', 'bridge'));
      await done(initech, fresh);
      noPosts(fresh, acme, globex);

      await talking.closed;
      await adapter.waitForLog((l) => l.message.startsWith('event kept, not sent') && l['callId'] === talking.uuid);
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(accepted(globex.zammad, talking.uuid), ['newCall', 'answer'], 'the hangup is kept, not sent');
      noPosts(talking, acme, initech);
      const m = await metrics(adapter.statusPort);
      assert.equal(m.get('cti_outbox_held_total{endpoint="globex"}'), 1);
      assert.equal(m.get('cti_outbox_events{endpoint="globex"}'), 1);
      assert.equal(
        (await fetch(`http://127.0.0.1:${adapter.statusPort}/readyz`)).status,
        200,
        'held events of a removed tenant do not make the adapter unready',
      );

      // A bad file: one error line that says why, and the endpoints in use stay.
      writeFileSync(
        file,
        JSON.stringify({ endpoints: [{ name: 'acme', url: 'not a url', domains: ['acme.example.com'] }] }),
      );
      adapter.proc.kill('SIGHUP');
      const bad = await adapter.waitForLog((l) => l.message.startsWith('SIGHUP: the endpoints file is not usable'));
      assert.match(String(bad['problems']), /endpoints\[0\] "acme": url: is not a URL/);
      const still = await place(adapter, callOf('initech.example', 'bridge'));
      await done(initech, still);

      // globex back: what was kept for it goes out, to it alone.
      endpointsFile([acme, globex, initech], file);
      adapter.proc.kill('SIGHUP');
      await globex.zammad.waitFor((z) => accepted(z, talking.uuid).includes('hangup'), 5000);
      assert.deepEqual(accepted(globex.zammad, talking.uuid), ['newCall', 'answer', 'hangup']);
      noPosts(talking, acme, initech);
      await noTokens(adapter, [acme, globex, initech]);
    },
  );

  test(
    "a tenant's call still talking when the drain time is over: the next start re-attaches (FS_INBOUND_*) " +
      "and posts its hangup to that tenant's Zammad only",
    async () => {
      const acme = await tenant('acme', ['acme.example.com']);
      const globex = await tenant('globex', ['globex.example.com']);
      const sw = new FakeSwitch();
      const fs = new InboundSwitch(sw);
      await fs.start();
      const env = {
        OUTBOX_PATH: tempOutbox(),
        FS_INBOUND_HOST: '127.0.0.1',
        FS_INBOUND_PORT: String(fs.port),
        FS_INBOUND_PASSWORD: 'ClueCon',
      };
      const file = endpointsFile([acme, globex]);
      const first = await adapterFor(file, { ...env, SHUTDOWN_DRAIN_MS: '300' });
      const call = await sw.placeCall(
        { host: '127.0.0.1', port: first.eslPort },
        callOf('globex.example.com', 'bridge', {}, 60_000),
      );
      try {
        await globex.zammad.waitFor((z) => accepted(z, call.uuid).includes('answer'), 5000);
        assert.equal(await first.stop('SIGTERM'), 0);
        assert.ok(call.socketLostWhileUp, 'the call goes on in the switch');
        const second = await adapterFor(file, env);
        await second.waitForLog(
          (l) => /^re-attached to a call still in progress/.test(l.message) && l['callId'] === call.uuid,
        );
        call.hangup();
        await globex.zammad.waitFor((z) => accepted(z, call.uuid).includes('hangup'), 5000);
        await new Promise((r) => setTimeout(r, 200));
        assert.deepEqual(accepted(globex.zammad, call.uuid), ['newCall', 'answer', 'hangup']);
        noPosts(call, acme);
        await noTokens(second, [acme, globex]);
      } finally {
        call.hangup();
        await fs.stop();
      }
    },
  );

  test('a bad endpoints file at start: exit code 2, every bad entry named, no URL or token shown', async () => {
    const token = `leak-${randomUUID()}`;
    const file = join(dir, 'bad.json');
    writeFileSync(
      file,
      JSON.stringify({
        endpoints: [
          { name: 'acme', url: `https://z.acme.example/api/v1/cti/${token}`, domains: ['acme.example.com'] },
          { name: 'globex', url: `https://z.globex.example/api/v2/${token}`, domains: ['acme.example.com'] },
          { name: 'default', url: `https://z.x.example/api/v1/cti/${token}`, domain: ['x.example'] },
        ],
      }),
    );
    const adapter = await startAdapter({ ZAMMAD_ENDPOINTS_FILE: file }, { expectStart: false });
    const code = await adapter.exited;
    assert.equal(code, 2);
    const out = adapter.output();
    assert.match(out, /endpoints\[1\] "globex": url: must end in \/api\/v1\/cti\/<token>/);
    assert.match(out, /endpoints\[2\] "default": name: "default" is the name of ZAMMAD_CTI_URL's endpoint/);
    assert.match(out, /endpoints\[2\] "default": Unrecognized key: "domain"/);
    assert.ok(!out.includes(token), 'no token (no URL) in the message');
    assert.doesNotMatch(out, /\n\s+at /, 'no stack trace');
  });
});
