/**
 * The subject of bench/shed.ts, in a child process of its own: a listener that sheds every call
 * with the adapter's functions (`shed`), or does the least any Node program can (`bare`). Reports
 * its CPU time after the warm-up calls when asked ('report').
 */
import net from 'node:net';
import { routingFacts } from '../src/call/facts.js';
import { sheddable } from '../src/call/flow.js';
import { handBackAndGo, peekChannelData } from '../src/switch/shed.js';

const subject = process.argv[2] === 'bare' ? 'bare' : 'shed';
const warmup = Number(process.argv[3] ?? 1000);
const rules = { defaultCountryCode: '49', extensionMaxDigits: 5, inboundContexts: ['public'], defaultBridge: '' };
const HAND_BACK = 'sendmsg\ncall-command: execute\nexecute-app-name: transfer\nexecute-app-arg: x\n\nexit\n\n';

let accepted = 0;
let shed = 0;
let from: NodeJS.CpuUsage | undefined;

async function shedOne(socket: net.Socket): Promise<void> {
  const peek = await peekChannelData(socket, { timeoutMs: 5000, maxBytes: 1 << 20 });
  if ('failure' in peek) return;
  const facts = routingFacts((h) => {
    const v = peek.data.get(h);
    return v === undefined ? undefined : String(v);
  }, rules);
  if (sheddable(facts)) shed++;
  await handBackAndGo(socket);
}

function bareOne(socket: net.Socket): void {
  let first = true;
  socket.on('data', () => {
    if (!first) return;
    first = false;
    socket.write(HAND_BACK);
  });
  socket.write('connect\n\n');
}

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.on('error', () => {});
  if (++accepted === warmup + 1) from = process.cpuUsage();
  if (subject === 'bare') bareOne(socket);
  else void shedOne(socket);
});
server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as net.AddressInfo).port }));
process.on('message', (m) => {
  if (m !== 'report') return;
  const used = process.cpuUsage(from);
  const calls = accepted - warmup;
  const figures = {
    calls,
    accepted,
    shed: subject === 'shed' ? shed : accepted,
    userMs: used.user / 1000,
    systemMs: used.system / 1000,
    cpuUsPerCall: (used.user + used.system) / calls,
  };
  // Exits by itself once the figures are sent: a --cpu-prof profile is written at a normal exit only.
  process.send?.(figures, () => process.exit(0));
});
