/**
 * `demo`: the whole thing on one machine with no switch and no Zammad. Starts the adapter, a
 * Zammad double (with a block list and an outbound caller-id route) and a switch double that
 * places a few calls over the real event-socket protocol — in bridge mode and, through the gate,
 * in dialplan mode (a queue, voicemail) — then prints Zammad's caller log.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { loadConfig } from '../../../src/process/config.js';
import { createLogger, silentLogger, type Logger } from '../../../src/process/log.js';
import { startApp, type App } from '../../../src/process/app.js';
import { FakeSwitch, type CallScript } from './switch.js';
import { ZammadDouble, type CtiLogEntry } from './zammad.js';
import { configuredEndpoints } from '../../../src/process/endpoints.js';

export interface DemoOptions {
  /** Keep the adapter and the doubles up after the calls (for scraping /metrics); stop() ends them. */
  keepRunning?: boolean;
  verbose?: boolean;
}

export interface DemoRun {
  entries: CtiLogEntry[];
  /** Calls the switch double placed: each must be in Zammad's log. */
  placed: number;
  statusPort: number;
  stop(): Promise<void>;
}

interface DemoCall {
  title: string;
  script: CallScript;
}

function calls(): DemoCall[] {
  const uuid = () => randomUUID();
  const inbound = { context: 'public', destination: '0301234567', sip: true } as const;
  // The shop's own routing behind the gate: a mod_callcenter queue, and a ring that falls to voicemail.
  const routing: Pick<CallScript, 'dialplan' | 'queues' | 'directory'> = {
    dialplan: {
      public: {
        '0301234568': [
          { app: 'set', data: 'hangup_after_bridge=true' },
          { app: 'callcenter', data: 'support@pbx.demo' },
        ],
        '0301234569': [
          { app: 'set', data: 'continue_on_fail=true' },
          { app: 'bridge', data: '{originate_timeout=1}user/1000@pbx.demo' },
          { app: 'answer' },
          { app: 'voicemail', data: 'default pbx.demo 1000' },
          { app: 'hangup' },
        ],
      },
    },
    queues: { 'support@pbx.demo': { agents: ['1001@pbx.demo'], musicMs: 300 } },
    directory: { '1000@pbx.demo': 'Alice Example', '1001@pbx.demo': 'Bob Example' },
  };
  return [
    {
      title: 'inbound, group ring, Bob answers',
      script: {
        channel: {
          uuid: uuid(),
          callerNumber: '+49 30 5557 1600',
          callerName: 'Customer',
          ...inbound,
          variables: { zammad_bridge: 'user/1000@pbx.demo,user/1001@pbx.demo', domain_name: 'pbx.demo' },
        },
        directory: { '1000@pbx.demo': 'Alice Example', '1001@pbx.demo': 'Bob Example' },
        targets: { '1000': { kind: 'ring' }, '1001': { kind: 'answer', ringMs: 300, talkMs: 400 } },
      },
    },
    {
      title: 'inbound, agent busy',
      script: {
        channel: {
          uuid: uuid(),
          callerNumber: '0221 555 0100',
          ...inbound,
          variables: { zammad_bridge: 'user/1000@pbx.demo', domain_name: 'pbx.demo' },
        },
        directory: { '1000@pbx.demo': 'Alice Example' },
        targets: { '1000': { kind: 'busy', ringMs: 200 } },
      },
    },
    {
      title: "inbound from a number on Zammad's block list: rejected",
      script: {
        channel: {
          uuid: uuid(),
          callerNumber: '040 666 0000',
          ...inbound,
          variables: { zammad_bridge: 'user/1000@pbx.demo', zammad_users: 'Alice Example' },
        },
      },
    },
    {
      title: 'inbound, caller hangs up while it rings',
      script: {
        channel: {
          uuid: uuid(),
          callerNumber: 'anonymous',
          ...inbound,
          hideNumber: true,
          variables: { zammad_bridge: 'user/1001@pbx.demo', zammad_users: 'Bob Example' },
        },
        targets: { '1001': { kind: 'ring' } },
        callerCancelAfterMs: 500,
      },
    },
    {
      title: 'inbound through the gate (dialplan mode): the queue plays music, Bob takes the call',
      script: {
        channel: {
          uuid: uuid(),
          callerNumber: '0711 555 0123',
          ...inbound,
          destination: '0301234568',
          variables: { zammad_handled: 'true', zammad_queue: 'support', domain_name: 'pbx.demo' },
        },
        ...routing,
        targets: { '1001': { kind: 'answer', ringMs: 300, talkMs: 400 } },
      },
    },
    {
      title: 'inbound through the gate (dialplan mode): nobody answers, the dialplan sends the caller to voicemail',
      script: {
        channel: {
          uuid: uuid(),
          callerNumber: '089 555 0199',
          ...inbound,
          destination: '0301234569',
          variables: { zammad_handled: 'true', domain_name: 'pbx.demo' },
        },
        ...routing,
        targets: { '1000': { kind: 'ring' } },
      },
    },
    {
      title: 'outbound, Zammad sets the caller id',
      script: {
        channel: {
          uuid: uuid(),
          callerNumber: '1000',
          callerName: 'Alice Example',
          destination: '0171 2345678',
          context: 'default',
          sip: true,
          variables: { zammad_bridge: 'sofia/gateway/carrier/01712345678' },
        },
        targets: { '01712345678': { kind: 'answer', ringMs: 300, talkMs: 300 } },
      },
    },
  ];
}

function table(entries: CtiLogEntry[]): string[] {
  const rows = entries.map((e) => [
    e.direction === 'in' ? 'in' : 'out',
    e.from ?? '',
    e.to ?? '',
    e.users ?? '',
    e.queue ?? '',
    e.state,
    e.cause ?? '',
    e.answeredBy ?? '',
    e.done ? 'done' : e.answeredBy === 'voicemail' ? 'to call back' : 'missed',
  ]);
  const head = ['dir', 'from', 'to', 'user(s)', 'queue', 'state', 'cause', 'answered by', 'result'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

export async function runDemo(out: (line: string) => void, options: DemoOptions = {}): Promise<DemoRun> {
  const dir = mkdtempSync(join(tmpdir(), 'cti-demo-'));
  const token = `demo-${randomUUID()}`;
  const zammad = new ZammadDouble({
    token,
    blockedNumbers: ['49406660000'],
    outboundRoutes: [{ dest: '49171*', callerId: '4930777000000' }],
  });
  await zammad.start();
  const config = loadConfig({
    ZAMMAD_CTI_URL: zammad.url,
    ESL_PORT: '0',
    STATUS_PORT: '0',
    OUTBOX_PATH: join(dir, 'outbox.sqlite'),
    LOG_LEVEL: 'info',
  });
  const log: Logger = options.verbose
    ? createLogger({ level: 'info', format: 'pretty', secrets: [token] })
    : silentLogger;
  let app: App | undefined;
  const stop = async () => {
    await app?.shutdown(1000);
    await zammad.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    app = await startApp(config, log, configuredEndpoints(config));
    out(
      `adapter listening for FreeSWITCH on 127.0.0.1:${app.eslPort}, status on http://127.0.0.1:${app.statusPort}/metrics`,
    );
    out(`Zammad double on ${zammad.baseUrl} (block list: 49406660000; outbound 49171* → caller id 4930777000000)`);
    out('');
    const fakeSwitch = new FakeSwitch({ hostname: 'demo' });
    const demoCalls = calls();
    const placed = await Promise.all(
      demoCalls.map(async (c) => {
        out(`switch: ${c.title}`);
        return fakeSwitch.placeCall({ host: '127.0.0.1', port: app!.eslPort }, c.script);
      }),
    );
    await Promise.all(placed.map((p) => p.closed));
    await zammad.waitFor((z) => placed.every((p) => z.entry(p.uuid)?.state === 'hangup'), 10_000);
    const entries = placed.map((p) => zammad.entry(p.uuid)).filter((e): e is CtiLogEntry => e !== undefined);
    out('');
    out("Zammad's caller log:");
    for (const line of table(entries)) out(`  ${line}`);
    const run: DemoRun = { entries, placed: placed.length, statusPort: app.statusPort, stop };
    if (!options.keepRunning) await stop();
    return run;
  } catch (err) {
    await stop();
    throw err;
  }
}
