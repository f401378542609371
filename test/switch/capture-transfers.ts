/**
 * Captures, on the real switch, what the CALLER's outbound socket receives when a person is
 * connected to the caller by `uuid_bridge` (pickup, attended transfer, retrieve from park) and
 * when a supervisor eavesdrops. Writes one transcript per scenario in the format of
 * test/fixtures/esl (see test/fixtures/esl/transfers/README.md).
 *
 *   flock /tmp/freeswitch.lock node --import tsx test/switch/capture-transfers.ts OUT_DIR [scenario…]
 *
 * The capture server is a dialplan-mode adapter with nothing filtered: it sends `connect`,
 * `myevents`, `linger`, hands the call back (`transfer ${destination_number} XML ${context}`),
 * and `exit` 1.5 s after CHANNEL_HANGUP_COMPLETE. Every byte in both directions is recorded.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RealSwitch } from './harness.js';
import { freePort } from './adapter.js';
import type { Extension } from './dialplan.js';
import { user } from './scenario-kit.js';

const CTX = 'cti_cap';
const CTX_PHONES = 'cti_cap_phones';
/** the callers' numbers: 4930999860xx → CTX; the phones' feature codes: 4930999869xx → CTX_PHONES */
const N = {
  ringCarol: '493099986001',
  talkDan: '493099986002',
  park: '493099986003',
  pickupBleg: '493099986901',
  pickup: '493099986902',
  retrieve: '493099986903',
  eavesdrop: '493099986904',
} as const;

interface Rec {
  dir: 'FS->APP' | 'APP->FS' | 'NOTE' | 'FS-CLOSED' | 'APP-CLOSED';
  at: number;
  data: Buffer;
}

class CaptureServer {
  readonly conns: { recs: Rec[]; uuid?: string; done: Promise<void> }[] = [];
  private constructor(
    readonly server: Server,
    readonly port: number,
  ) {}

  static async start(): Promise<CaptureServer> {
    const port = await freePort();
    const server = createServer();
    const cap = new CaptureServer(server, port);
    server.on('connection', (s) => cap.onConnection(s));
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    return cap;
  }

  private onConnection(s: Socket): void {
    const recs: Rec[] = [];
    let finish!: () => void;
    const entry: { recs: Rec[]; uuid?: string; done: Promise<void> } = {
      recs,
      done: new Promise<void>((r) => (finish = r)),
    };
    this.conns.push(entry);
    const write = (text: string) => {
      recs.push({ dir: 'APP->FS', at: Date.now() + (performance.now() % 1), data: Buffer.from(text) });
      s.write(text);
    };
    let stage = 0;
    let seen = '';
    s.on('data', (chunk: Buffer) => {
      recs.push({ dir: 'FS->APP', at: Date.now(), data: chunk });
      seen += chunk.toString('latin1');
      if (stage === 0 && seen.includes('Event-Name: CHANNEL_DATA')) {
        entry.uuid = /\nUnique-ID: ([^\n]+)/.exec(seen)?.[1];
        stage = 1;
        write('myevents\n\n');
        write('linger\n\n');
        write(
          'sendmsg\ncall-command: execute\nexecute-app-name: transfer\nexecute-app-arg: ' +
            '${destination_number} XML ${context}\n\n',
        );
      }
      if (stage === 1 && seen.includes('Event-Name: CHANNEL_HANGUP_COMPLETE')) {
        stage = 2;
        setTimeout(() => write('exit\n\n'), 1500);
      }
    });
    s.on('close', () => {
      recs.push({ dir: 'FS-CLOSED', at: Date.now(), data: Buffer.alloc(0) });
      finish();
    });
    write('connect\n\n');
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

function render(name: string, header: string[], recs: Rec[]): string {
  const t0 = recs[0]?.at ?? 0;
  const out = [
    `# scenario: ${name}`,
    '# FreeSWITCH Version 1.10.12-release~64bit (shared/freeswitch bundle, git tag v1.10.12)',
    ...header.map((h) => `# ${h}`),
  ];
  recs.forEach((r, i) => {
    const iso = new Date(r.at).toISOString().replace('Z', '000Z');
    out.push(`===== ${i + 1} ${iso} +${((r.at - t0) / 1000).toFixed(6)} ${r.dir} ${r.data.length} bytes =====`);
    out.push(r.data.toString('latin1'));
  });
  return `${out.join('\n')}\n`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const [outDir = 'captures', ...only] = process.argv.slice(2);
  mkdirSync(outDir, { recursive: true });
  const sw = await RealSwitch.open();
  const cap = await CaptureServer.start();
  const hab: Extension['actions'][number] = ['set', 'hangup_after_bridge=true'];
  const phone = (name: string, number: string, actions: Extension['actions']): Extension => ({
    name: `cti_cap_${name}`,
    number,
    actions,
  });
  try {
    await sw.contexts(`00_cti_cap_${process.pid}`, [
      {
        name: CTX,
        extensions: [
          {
            name: 'cti_cap_gate',
            expression: '^(\\+?\\d{6,20})$',
            continue: true,
            conditions: [['${zammad_handled}', '^$']],
            actions: [
              ['set', 'zammad_handled=true'],
              ['socket', `127.0.0.1:${cap.port} async full`],
            ],
          },
          phone('ring_carol', N.ringCarol, [hab, ['bridge', user('2002')]]),
          phone('talk_dan', N.talkDan, [hab, ['bridge', user('2004')]]),
          phone('park', N.park, [['answer'], ['park']]),
        ],
      },
      {
        name: CTX_PHONES,
        extensions: [
          phone('pickup_bleg', N.pickupBleg, [['intercept', '-bleg ${sip_h_X-Target}']]),
          phone('pickup', N.pickup, [['intercept', '${sip_h_X-Target}']]),
          phone('retrieve', N.retrieve, [
            ['answer'],
            ['set', 'res=${uuid_bridge(${uuid} ${sip_h_X-Target})}'],
            ['park'],
          ]),
          phone('eavesdrop', N.eavesdrop, [['answer'], ['eavesdrop', '${sip_h_X-Target}']]),
        ],
      },
    ]);
    await sw.dialplan(`00_cti_cap_${process.pid}`, [
      {
        name: 'cti_cap_in',
        expression: '^(4930999860\\d\\d)$',
        actions: [
          ['set', 'zammad_direction=in'],
          ['transfer', `$1 XML ${CTX}`],
        ],
      },
      { name: 'cti_cap_phones', expression: '^(4930999869\\d\\d)$', actions: [['transfer', `$1 XML ${CTX_PHONES}`]] },
    ]);

    const scenarios: Record<string, () => Promise<string[]>> = {
      'pickup-intercept-bleg': async () => {
        const call = sw.call('cap-pickup-bleg', { to: N.ringCarol, from: '493055571600' });
        const ringing = await sw.legs.waitFor(
          call.tag,
          (l) => l.byRole('bleg').some((b) => b.has('CHANNEL_PROGRESS') || b.has('CHANNEL_PROGRESS_MEDIA')),
          15_000,
          '2002 ringing',
        );
        const carol = ringing.one('bleg');
        await sleep(1000);
        const bob = sw.call('cap-picker', {
          to: N.pickupBleg,
          from: '2003',
          fromName: 'Bob Agent',
          vars: { 'sip_h_X-Target': carol.uuid },
        });
        await sleep(3000);
        await sw.esl.api(`uuid_kill ${bob.callerUuid} NORMAL_CLEARING`);
        await sw.legs.allEnded(call.tag, 20_000);
        return [
          `caller: originate … sofia/lo-targets/${N.ringCarol}@127.0.0.1:5090 &park(); ` +
            `the dialplan bridges ${user('2002')} (rings, never answers)`,
          `1 s after 2002 rang: Bob's phone (caller id 2003 'Bob Agent') dialled ${N.pickupBleg}: ` +
            "intercept -bleg <2002's B-leg uuid> (FusionPBX *8 / **ext)",
          `3 s later the suite hung Bob's phone up (uuid_kill of his lo-targets channel)`,
        ];
      },
      'pickup-intercept': async () => {
        const call = sw.call('cap-pickup', { to: N.ringCarol, from: '493055571600' });
        const ringing = await sw.legs.waitFor(
          call.tag,
          (l) => l.byRole('bleg').some((b) => b.has('CHANNEL_PROGRESS') || b.has('CHANNEL_PROGRESS_MEDIA')),
          15_000,
          '2002 ringing',
        );
        const inbound = ringing.one('inbound');
        await sleep(1000);
        const bob = sw.call('cap-picker', {
          to: N.pickup,
          from: '2003',
          fromName: 'Bob Agent',
          vars: { 'sip_h_X-Target': inbound.uuid },
        });
        await sleep(3000);
        await sw.esl.api(`uuid_kill ${bob.callerUuid} NORMAL_CLEARING`);
        await sw.legs.allEnded(call.tag, 20_000);
        return [
          `caller: as pickup-intercept-bleg; the dialplan bridges ${user('2002')} (rings)`,
          `1 s after 2002 rang: Bob's phone (caller id 2003) dialled ${N.pickup}: ` +
            "intercept <the caller channel's uuid>",
          `3 s later the suite hung Bob's phone up`,
        ];
      },
      'attended-transfer-att-xfer': async () => {
        const call = sw.call('cap-attxfer', { to: N.talkDan, from: '493055571600' });
        const talking = await sw.legs.waitFor(
          call.tag,
          (l) => l.byRole('inbound').some((i) => i.has('CHANNEL_BRIDGE')),
          15_000,
          'talking to 2004',
        );
        const dan = talking.one('bleg');
        await sleep(1000);
        await sw.esl.api(`uuid_broadcast ${dan.uuid} att_xfer::${user('2000')}`);
        // 2000 answers at once, plays 3 s: Dan hangs up 1 s into the consultation
        await sleep(1500);
        const how = process.env['ATT_END'] ?? 'kill';
        if (how === 'dtmf') await sw.esl.api(`uuid_recv_dtmf ${dan.uuid} *`);
        else if (how === 'phone') await sw.esl.api(`uuid_kill ${talking.one('phone').uuid} NORMAL_CLEARING`);
        else await sw.esl.api(`uuid_kill ${dan.uuid} NORMAL_CLEARING`);
        await sw.legs.allEnded(call.tag, 30_000);
        return [
          `caller: the dialplan bridges ${user('2004')} (Dan answers, talks 20 s)`,
          `1 s after the bridge: uuid_broadcast <Dan's B-leg> att_xfer::${user('2000')} (what *4 runs on the ` +
            "agent's leg); 2000 answers, plays 3 s, hangs up",
          {
            phone:
              "1.5 s later Dan's phone hung up (uuid_kill of its lo-targets channel, a SIP BYE): " +
              'the caller is connected to 2000',
            dtmf:
              "1.5 s later Dan pressed the hangup key: uuid_recv_dtmf <Dan's B-leg> * (attxfer_hangup_key): " +
              'the caller is connected to 2000',
            kill:
              "1.5 s later: uuid_kill <Dan's B-leg> NORMAL_CLEARING: the caller's bridge returns first and its " +
              "dialplan ends (hangup) before att_xfer's uuid_bridge",
          }[how] ?? how,
        ];
      },
      'attended-transfer-uuid-bridge': async () => {
        const call = sw.call('cap-uuid-bridge', { to: N.talkDan, from: '493055571600' });
        const talking = await sw.legs.waitFor(
          call.tag,
          (l) => l.byRole('inbound').some((i) => i.has('CHANNEL_BRIDGE')),
          15_000,
          'talking to 2004',
        );
        const inbound = talking.one('inbound');
        await sleep(1000);
        const reply = await sw.esl.api(`originate {sip_h_X-Cti-Test=${call.tag}}${user('2000')} &park()`, 15_000);
        const zoe = /^\+OK ([\w-]+)/.exec(reply.trim())?.[1];
        if (!zoe) throw new Error(`originate to 2000: ${reply}`);
        await sw.esl.api(`uuid_bridge ${zoe} ${inbound.uuid}`);
        await sw.legs.allEnded(call.tag, 30_000);
        return [
          `caller: the dialplan bridges ${user('2004')} (Dan answers, talks 20 s)`,
          `1 s after the bridge: inbound ESL originate ${user('2000')} &park() (answers, 3 s tone, hangs up), ` +
            "then uuid_bridge <2000's leg> <the caller channel> (a consult-then-transfer done by a phone or an " +
            "operator panel); Dan's leg is left alone",
        ];
      },
      'park-retrieve': async () => {
        const call = sw.call('cap-park', { to: N.park, from: '493055571600' });
        const parked = await sw.legs.waitFor(
          call.tag,
          (l) => l.byRole('inbound').some((i) => i.has('CHANNEL_ANSWER')),
          15_000,
          'caller parked',
        );
        const inbound = parked.one('inbound');
        await sleep(1500);
        const bob = sw.call('cap-retriever', {
          to: N.retrieve,
          from: '2003',
          fromName: 'Bob Agent',
          vars: { 'sip_h_X-Target': inbound.uuid },
        });
        await sleep(3000);
        await sw.esl.api(`uuid_kill ${bob.callerUuid} NORMAL_CLEARING`);
        await sleep(1000);
        await sw.esl.api(`uuid_kill ${call.callerUuid} NORMAL_CLEARING`).catch(() => undefined);
        await sw.legs.allEnded(call.tag, 20_000);
        return [
          `caller: the dialplan runs answer, park (a parking lot without mod_valet_parking)`,
          `1.5 s later Bob's phone (caller id 2003) dialled ${N.retrieve}: answer, ` +
            "set res=${uuid_bridge(${uuid} <the caller channel>)} (the retriever's own channel bridges)",
          `3 s later the suite hung Bob's phone up; 1 s later the caller`,
        ];
      },
      eavesdrop: async () => {
        const call = sw.call('cap-eavesdrop', { to: N.talkDan, from: '493055571600' });
        const talking = await sw.legs.waitFor(
          call.tag,
          (l) => l.byRole('inbound').some((i) => i.has('CHANNEL_BRIDGE')),
          15_000,
          'talking to 2004',
        );
        const inbound = talking.one('inbound');
        await sleep(1000);
        const sup = sw.call('cap-spy', {
          to: N.eavesdrop,
          from: '2003',
          fromName: 'Bob Agent',
          vars: { 'sip_h_X-Target': inbound.uuid },
        });
        await sleep(3000);
        await sw.esl.api(`uuid_kill ${sup.callerUuid} NORMAL_CLEARING`);
        await sleep(1000);
        await sw.esl.api(`uuid_kill ${call.callerUuid} NORMAL_CLEARING`);
        await sw.legs.allEnded(call.tag, 20_000);
        return [
          `caller: the dialplan bridges ${user('2004')} (Dan answers, talks 20 s)`,
          `1 s after the bridge a supervisor's phone (caller id 2003) dialled ${N.eavesdrop}: answer, ` +
            'eavesdrop <the caller channel>; 3 s later the supervisor hung up, 1 s later the caller',
        ];
      },
    };
    for (const [name, run] of Object.entries(scenarios)) {
      if (only.length && !only.includes(name)) continue;
      const before = cap.conns.length;
      const notes = await run();
      await sleep(2500);
      const mine = cap.conns.slice(before);
      await Promise.race([Promise.all(mine.map((c) => c.done)), sleep(5000)]);
      mine.forEach((c, i) => {
        const file = join(outDir, `${name}${mine.length > 1 ? `-${i + 1}` : ''}.txt`);
        writeFileSync(file, render(name, [`the socket channel: ${c.uuid ?? '?'}`, ...notes], c.recs));
        console.log(`${file}: ${c.recs.length} records`);
      });
    }
  } finally {
    await cap.close().catch(() => undefined);
    await sw.close();
  }
}

await main();
