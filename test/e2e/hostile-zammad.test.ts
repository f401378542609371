/**
 * Hostile or broken answers on the Zammad side (issue 4): each one gives a clear log line, the
 * call goes on (bridged within the bounded wait), and no event is lost. And the token never
 * shows: a full run with every fault is grepped for it — logs, errors, metrics, health.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { placeCall, type CallScript, type SwitchCall } from '@freeswitch-zammad-cti/sim/switch';
import { ZammadDouble, type Fault, type FaultOptions } from '@freeswitch-zammad-cti/sim/zammad';
import { createLogger } from '../../src/process/log.js';
import { startAdapter, type AdapterProcess, type LogLine } from './adapter-process.js';
import { metric, waitUntil } from './raw-switch.js';

/** Every test ends, passed or failed: a hang is a failure, never a stuck CI run. */
const LIMIT = { timeout: 60_000 };
const TOKEN = `tok-${randomUUID()}`;
const FAST = {
  // Generous for a loaded CI machine: retries of a failed newCall fit well within the wait.
  ZAMMAD_NEWCALL_TIMEOUT_MS: '1500',
  ZAMMAD_REQUEST_TIMEOUT_MS: '2000',
  ZAMMAD_MAX_REPLY_BYTES: '4096',
  RETRY_BASE_MS: '50',
  RETRY_MAX_MS: '300',
  SHUTDOWN_DRAIN_MS: '1000',
};

function inbound(): CallScript {
  return {
    channel: {
      uuid: randomUUID(),
      callerNumber: '03055571600',
      destination: '491711234567890',
      sip: true,
      variables: { zammad_users: 'Alice', zammad_bridge: 'sofia/gateway/carrier/2000' },
    },
    targets: { '2000': { kind: 'answer', ringMs: 20, talkMs: 60 } },
  };
}

function outbound(): CallScript {
  return {
    channel: {
      uuid: randomUUID(),
      callerNumber: '2000',
      callerName: 'Agent Smith',
      destination: '01711234567',
      context: 'default',
      sip: true,
      variables: { zammad_bridge: 'sofia/gateway/carrier/01711234567' },
    },
    targets: { '01711234567': { kind: 'answer', ringMs: 20, talkMs: 60 } },
  };
}

const json = (body: unknown): Fault => ({
  kind: 'status',
  status: 200,
  process: true,
  contentType: 'application/json',
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

describe('broken answers from Zammad: one clear log line, the call goes on, nothing lost', () => {
  let zammad: ZammadDouble;
  let adapter: AdapterProcess;
  before(async () => {
    zammad = new ZammadDouble({ token: TOKEN });
    await zammad.start();
    adapter = await startAdapter({ ZAMMAD_CTI_URL: zammad.url, ...FAST });
  });
  after(async () => {
    await adapter?.stop();
    await zammad?.stop();
  });

  /** Places a call while `fault` applies to its newCall; returns it once every event reached Zammad. */
  async function callWith(
    fault: Fault,
    script: CallScript,
    opts: FaultOptions = { times: 1, events: ['newCall'] },
  ): Promise<{ call: SwitchCall; lines: LogLine[] }> {
    zammad.setFault(fault, opts);
    const call = await placeCall({ host: '127.0.0.1', port: adapter.eslPort }, script);
    await call.closed;
    assert.equal(call.bridges.length, 1, 'the call was bridged');
    await zammad.waitFor((z) => z.entry(call.uuid)?.state === 'hangup', 10_000);
    // Zammad's caller log has the call (so its newCall, whether that was answered 200 or stored
    // by a request that then timed out), answered once, hung up once.
    const entry = zammad.entry(call.uuid);
    assert.equal(entry?.answers, 1);
    assert.equal(entry?.hangups, 1);
    assert.deepEqual(
      zammad.acceptedEvents(call.uuid).filter((e) => e !== 'newCall'),
      ['answer', 'hangup'],
      'in order, once',
    );
    zammad.clearFault();
    return {
      call,
      lines: adapter.lines.filter((l) => l['callId'] === call.uuid && (l.level === 'warn' || l.level === 'error')),
    };
  }

  /** Exactly one warning or error line about the call, and it says what happened. */
  function oneClearLine(lines: LogLine[], pattern: RegExp): void {
    assert.equal(lines.length, 1, `one line, got: ${JSON.stringify(lines, null, 1)}`);
    assert.match(`${lines[0]?.message} ${String(lines[0]?.['reason'] ?? '')}`, pattern);
    assert.ok(!adapter.output().includes('    at '), 'no stack trace');
  }

  test('a 200 that is not JSON', LIMIT, async () => {
    const { lines } = await callWith(
      { kind: 'status', status: 200, process: true, contentType: 'text/plain', body: 'OK, thanks!' },
      inbound(),
    );
    oneClearLine(lines, /newCall with something that is not JSON; going on/);
  });

  test('an HTML 500 page (a proxy, a Rails error page)', LIMIT, async () => {
    const { lines } = await callWith({ kind: 'status', status: 500 }, inbound(), { times: 2, events: ['newCall'] });
    oneClearLine(lines, /stays in the outbox and is retried.*Zammad answered 500/);
  });

  test('a huge reply is read up to ZAMMAD_MAX_REPLY_BYTES and not acted upon', LIMIT, async () => {
    const { lines } = await callWith({ kind: 'hugeBody', bytes: 20 * 1024 * 1024 }, inbound());
    oneClearLine(lines, /newCall with 4096 bytes or more.*ignored/);
  });

  test('a reply with an action Zammad does not have', LIMIT, async () => {
    const { lines } = await callWith(json({ action: 'transfer', to: '0301234' }), inbound());
    oneClearLine(lines, /unknown action "transfer"; going on/);
  });

  test('a dial reply without a caller id', LIMIT, async () => {
    const { call, lines } = await callWith(json({ action: 'dial' }), outbound());
    oneClearLine(lines, /caller id that is not an E\.164 number; going on with the original caller id/);
    assert.ok(!call.commands.some((c) => c.headers['execute-app-name'] === 'set'), 'no caller id set');
  });

  test('dial replies with an invalid caller id: never set, never a second command', LIMIT, async () => {
    const invalid: unknown[] = [
      '4930777000000\n\napi system touch /tmp/cti-pwned',
      '4930777000000\r\nexecute-app-name: hangup',
      '+49 30 777000',
      '4930777000000;x',
      '%0A4930777000000',
      '',
      '+',
      '1'.repeat(25),
      4930777000000,
      ['4930777000000'],
    ];
    for (const callerId of invalid) {
      const { call, lines } = await callWith(json({ action: 'dial', caller_id: callerId }), outbound());
      oneClearLine(lines, /caller id that is not an E\.164 number/);
      const sent = call.commands.map((c) => c.raw).join('');
      assert.ok(
        !/system|pwned|effective_caller_id_number/.test(sent),
        `nothing of ${JSON.stringify(callerId)} reached the switch: ${sent}`,
      );
    }
    // The control: a valid one is set, as it is.
    const { call } = await callWith(json({ action: 'dial', caller_id: '+4930777000000' }), outbound());
    assert.ok(call.commands.some((c) => c.headers['execute-app-arg'] === 'effective_caller_id_number=+4930777000000'));
  });

  test('a reply that never ends (headers, then a byte now and then): the request times out', LIMIT, async () => {
    const { lines } = await callWith({ kind: 'neverEndingBody', intervalMs: 50 }, inbound());
    assert.ok(
      lines.some((l) => /no answer from Zammad within 1500 ms: going on/.test(l.message)),
      'the bounded wait',
    );
    assert.ok(
      lines.some((l) => /retried/.test(l.message) && /TIMEOUT/.test(String(l['reason']))),
      'the request timed out',
    );
    assert.ok(lines.length <= 2, JSON.stringify(lines));
  });

  test('no headers at all (a Zammad that hangs): the request times out', LIMIT, async () => {
    const { lines } = await callWith({ kind: 'hang', process: true }, inbound());
    assert.ok(lines.some((l) => /no answer from Zammad within 1500 ms: going on/.test(l.message)));
    assert.ok(lines.some((l) => /TIMEOUT/.test(String(l['reason']))));
    assert.ok(lines.length <= 2, JSON.stringify(lines));
  });

  test('a connection reset instead of an answer', LIMIT, async () => {
    const { lines } = await callWith({ kind: 'reset' }, inbound());
    oneClearLine(lines, /retried/);
  });

  test('a redirect: one line for the fault, events kept, all delivered once it is fixed', LIMIT, async () => {
    const errorsBefore = adapter.lines.filter((l) => /Zammad refuses all events/.test(l.message)).length;
    zammad.setFault({ kind: 'redirect', location: 'https://zammad.example/login?return_to=%2Fapi%2Fv1%2Fcti' });
    const calls = await Promise.all([
      placeCall({ host: '127.0.0.1', port: adapter.eslPort }, inbound()),
      placeCall({ host: '127.0.0.1', port: adapter.eslPort }, inbound()),
    ]);
    await Promise.all(calls.map((c) => c.closed));
    for (const c of calls) assert.equal(c.bridges.length, 1, 'bridged without Zammad');
    await waitUntil(
      async () => (await metric(adapter.statusPort, 'cti_zammad_config_fault{endpoint="default"}')) === 1,
      'config fault shown',
    );
    const faultLines = adapter.lines.filter((l) => /Zammad refuses all events/.test(l.message)).slice(errorsBefore);
    assert.equal(faultLines.length, 1, 'one line for the fault, not one per event');
    assert.match(faultLines[0]?.message ?? '', /redirect \(302 to \/\*\*\*\)/);
    zammad.clearFault();
    for (const c of calls) {
      await zammad.waitFor((z) => z.entry(c.uuid)?.state === 'hangup', 10_000);
      assert.deepEqual(zammad.acceptedEvents(c.uuid), ['newCall', 'answer', 'hangup']);
    }
  });
});

describe('a Zammad address that accepts connections and never speaks TLS', () => {
  let silent: net.Server;
  let adapter: AdapterProcess;
  const held = new Set<net.Socket>();
  before(async () => {
    silent = net.createServer((s) => {
      held.add(s);
      s.on('error', () => {});
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    adapter = await startAdapter({ ZAMMAD_CTI_URL: `https://127.0.0.1:${port}/api/v1/cti/${TOKEN}`, ...FAST });
  });
  after(async () => {
    await adapter?.stop();
    for (const s of held) s.destroy();
    silent?.close();
  });

  test('connect (TLS handshake) timeout: the call goes on, its events wait in the outbox', LIMIT, async () => {
    const call = await placeCall({ host: '127.0.0.1', port: adapter.eslPort }, inbound());
    await call.closed;
    assert.equal(call.bridges.length, 1);
    await waitUntil(
      async () => (await metric(adapter.statusPort, 'cti_outbox_events{endpoint="default"}')) === 3,
      'newCall, answer and hangup kept',
    );
    await adapter.waitForLog(
      (l) => l['callId'] === call.uuid && /retried/.test(l.message) && /TIMEOUT/.test(String(l['reason'])),
    );
    const ready = await fetch(`http://127.0.0.1:${adapter.statusPort}/readyz`);
    assert.equal(ready.status, 503);
  });
});

describe('the token never shows', () => {
  // A token with characters that URL encoding changes: both forms are looked for.
  const SECRET = `Sec+ret/${randomUUID()}`;
  const forms = [SECRET, encodeURIComponent(SECRET)];

  test('a full run with every fault: not in the output, not in /metrics, /readyz, /healthz', LIMIT, async () => {
    const zammad = new ZammadDouble({ token: SECRET });
    await zammad.start();
    const adapter = await startAdapter({ ZAMMAD_CTI_URL: zammad.url, LOG_LEVEL: 'debug', ...FAST });
    const seen: string[] = [];
    const status = async () => {
      for (const path of ['/metrics', '/readyz', '/healthz'])
        seen.push(await (await fetch(`http://127.0.0.1:${adapter.statusPort}${path}`)).text());
    };
    try {
      const path = new URL(zammad.url).pathname; // contains the token, URL-encoded
      // [fault, options, Zammad's setup is wrong: the fault shows in /readyz and the metrics until cleared]
      const faults: [Fault, FaultOptions, boolean][] = [
        [
          {
            kind: 'status',
            status: 401,
            contentType: 'application/json',
            body: JSON.stringify({ error: `Invalid token ${SECRET} for ${path}` }),
          },
          {},
          true,
        ],
        [{ kind: 'redirect', location: `${zammad.url}/elsewhere` }, {}, true],
        [
          {
            kind: 'status',
            status: 422,
            contentType: 'application/json',
            body: JSON.stringify({ error: `Feature is disabled, ${SECRET}` }),
          },
          {},
          true,
        ],
        [
          { kind: 'status', status: 500, body: `<html><body>No route matches ${path} (${SECRET})</body></html>` },
          { times: 1 },
          false,
        ],
        [
          {
            kind: 'status',
            status: 200,
            process: true,
            contentType: 'application/json',
            body: JSON.stringify({ action: SECRET }),
          },
          { times: 1, events: ['newCall'] },
          false,
        ],
        [{ kind: 'hang', process: true }, { times: 1 }, false],
        [{ kind: 'reset' }, { times: 1 }, false],
      ];
      for (const [fault, opts, setup] of faults) {
        zammad.setFault(fault, opts);
        const call = await placeCall({ host: '127.0.0.1', port: adapter.eslPort }, inbound());
        await call.closed;
        if (setup)
          await waitUntil(
            async () => (await metric(adapter.statusPort, 'cti_zammad_config_fault{endpoint="default"}')) === 1,
            'the fault shown',
          );
        await status();
        zammad.clearFault();
        await zammad.waitFor((z) => z.entry(call.uuid)?.state === 'hangup', 10_000);
      }
      await status();
      assert.equal(await adapter.stop(), 0);
    } finally {
      await adapter.stop('SIGKILL');
      await zammad.stop();
    }
    assert.ok(
      adapter.lines.some((l) => /Zammad refuses all events/.test(l.message)),
      'the faults were hit',
    );
    const everything = [adapter.output(), ...seen].join('\n');
    for (const form of forms)
      assert.ok(
        !everything.includes(form),
        `the token (${form === SECRET ? 'as it is' : 'URL-encoded'}) appeared:\n${everything
          .split('\n')
          .filter((l) => l.includes(form))
          .slice(0, 5)
          .join('\n')}`,
      );
  });

  test('the logger scrubs it wherever it hides: deep in a field, in a field name, in an error', LIMIT, async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => (text += c.toString('utf8')));
    const log = createLogger({ level: 'debug', format: 'json', secrets: [SECRET], stream: out });
    log.info('deep', { a: { b: { c: { d: { e: { f: SECRET, g: [encodeURIComponent(SECRET)] } } } } } });
    log.warn(`message ${SECRET}`, {
      [`key-${SECRET}`]: 1,
      error: new Error(`failed for ${encodeURIComponent(SECRET)}`),
    });
    log.child({ url: `https://zammad.example/api/v1/cti/${encodeURIComponent(SECRET)}` }).error('child');
    await waitUntil(() => text.split('\n').filter(Boolean).length >= 3, 'three lines written', 2000);
    assert.ok(text.split('\n').filter(Boolean).length === 3, text);
    for (const form of forms) assert.ok(!text.includes(form), text);
  });
});
