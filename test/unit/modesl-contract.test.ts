/**
 * What src/switch/esl.ts relies on in modesl, private members included, checked against the
 * installed modesl. package.json pins it exactly; when an upgrade changes any of this, the test
 * says what changed in a plain sentence instead of letting calls go wrong in production.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import esl from 'modesl';

const require = createRequire(import.meta.url);
const VERSION = (require('modesl/package.json') as { version: string }).version;
const PINNED = (require('../../package.json') as { dependencies: Record<string, string> }).dependencies['modesl'];

/** Fails with "modesl X.Y.Z changed: <what>; src/switch/esl.ts relies on it (<why>)". */
function relied(ok: boolean, what: string, why: string): void {
  if (!ok) assert.fail(`modesl ${VERSION} changed: ${what}; src/switch/esl.ts relies on it (${why})`);
}

/** The socket-like object modesl is given on an outbound connection (esl.ts GuardedSocket). */
class FakeSocket extends EventEmitter {
  written: string[] = [];
  write(data: string): boolean {
    this.written.push(data);
    return true;
  }
  end(): void {}
  /** What was written since the last call, as one string. */
  take(): string {
    const text = this.written.join('');
    this.written = [];
    return text;
  }
}

/** An event as esl.ts hands it in: only getHeader and getBody (esl-frames.ts BlockEvent). */
type Message = { getHeader(n: string): string | null; getBody(): string };
function message(headers: Record<string, string>, body = ''): Message {
  return { getHeader: (n) => headers[n] ?? null, getBody: () => body };
}

type Loose = Record<string, unknown>;

/**
 * A connection on a fake socket, its Parser and its emit as esl.ts reaches them. `handshake`:
 * `connect` answered and the subscription answered at once, as esl.ts does, nothing written yet.
 */
function outbound(handshake = false) {
  const socket = new FakeSocket();
  const conn = new esl.Connection(socket);
  const loose = conn as unknown as Loose;
  const parser = loose['parser'] as Loose | undefined;
  relied(
    typeof parser === 'object' && parser !== null && typeof parser['emit'] === 'function',
    'Connection#parser (set by the constructor, an EventEmitter) is gone',
    'messages read by esl-frames.ts are handed in with parser.emit("esl::event", …)',
  );
  const hand = (type: string, headers: Record<string, string>, body?: string, eventName?: string) => {
    const outer: Record<string, string> = { 'Content-Type': type };
    if (eventName !== undefined) outer['Event-Name'] = eventName;
    (parser as { emit(...a: unknown[]): boolean }).emit('esl::event', message(headers, body), outer, body);
  };
  if (handshake) {
    conn.subscribe = (_events, cb) => cb?.();
    hand('command/reply', { 'Reply-Text': '+OK', 'Event-Name': 'CHANNEL_DATA' }, undefined, 'CHANNEL_DATA');
    socket.take();
  }
  return { socket, conn, loose, parser: parser as Loose, hand };
}

describe(`modesl ${VERSION}: what src/switch/esl.ts relies on`, () => {
  test('src/switch/esl.ts is the only file of src/ that imports modesl', () => {
    const src = fileURLToPath(new URL('../../src', import.meta.url));
    const imports = /(?:from\s*|import\s*\(\s*|require\s*\(\s*)['"]modesl(?:\/[^'"]*)?['"]/;
    const importers = (readdirSync(src, { recursive: true }) as string[])
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
      .filter((f) => imports.test(readFileSync(join(src, f), 'utf8')))
      .map((f) => f.split('\\').join('/'));
    assert.deepEqual(importers, ['switch/esl.ts'], 'modesl belongs behind src/switch/esl.ts (pinned, contract-tested)');
  });

  test('package.json pins modesl exactly, to the installed version', () => {
    assert.ok(
      PINNED !== undefined && /^\d+\.\d+\.\d+$/.test(PINNED),
      `package.json asks for modesl "${String(PINNED)}": pin one exact version, since src/switch/esl.ts relies on ` +
        'its internals (and test/unit/modesl-contract.test.ts checks them)',
    );
    assert.equal(VERSION, PINNED, `modesl ${VERSION} is installed, package.json pins ${PINNED}: run npm install`);
  });

  test('outbound handshake: `connect` at once, then subscribe(events, cb); esl::ready when cb runs', () => {
    relied(
      typeof esl.Connection.prototype.subscribe === 'function',
      'Connection.prototype.subscribe is gone',
      'it is replaced on each connection to send `myevents json`',
    );
    const { socket, conn } = outbound();
    const first = socket.take();
    relied(first === 'connect\n\n', 'the outbound Connection no longer sends `connect` itself', 'the handshake');
    let subscribed: { events: unknown; cb: unknown } | undefined;
    conn.subscribe = (events, cb) => (subscribed = { events, cb });
    let ready = 0;
    conn.on('esl::ready', () => ready++);
    const data = message({ 'Reply-Text': '+OK', 'Unique-ID': 'u-1', 'Event-Name': 'CHANNEL_DATA' });
    (conn as unknown as { parser: { emit(...a: unknown[]): boolean } }).parser.emit(
      'esl::event',
      data,
      { 'Content-Type': 'command/reply', 'Event-Name': 'CHANNEL_DATA' },
      undefined,
    );
    relied(
      subscribed !== undefined && typeof subscribed.cb === 'function',
      'the reply to `connect` no longer calls this.subscribe(events, cb)',
      'its own subscription (switch-wide events) is replaced through it',
    );
    relied(
      conn.getInfo() === data,
      'the reply to `connect` (a command/reply with Event-Name CHANNEL_DATA) no longer becomes channelData/getInfo()',
      'the call reads its channel data there',
    );
    relied(ready === 0, 'esl::ready is emitted before the subscription is answered', 'the handshake order');
    (subscribed!.cb as () => void)();
    relied(ready === 1, 'esl::ready is no longer emitted when the subscription callback runs', 'the handshake');
    conn.channelData = null;
    relied(conn.getInfo() === null, 'getInfo() no longer reads Connection#channelData', 'it is dropped once read');
  });

  test('commands: written line by line; replies answer cmdCallbackQueue and apiCallbackQueue in order', () => {
    const { socket, conn, loose, hand } = outbound(true);
    const cmdQueue = loose['cmdCallbackQueue'];
    const apiQueue = loose['apiCallbackQueue'];
    relied(Array.isArray(cmdQueue), 'Connection#cmdCallbackQueue is no longer an array', 'it is emptied at teardown');
    relied(Array.isArray(apiQueue), 'Connection#apiCallbackQueue is no longer an array', 'it is emptied at teardown');
    const got: string[] = [];
    conn.sendRecv('sendmsg', { 'call-command': 'hangup', 'hangup-cause': 'NORMAL_CLEARING' }, (r) => {
      got.push(`cmd1 ${r.getHeader('Reply-Text') ?? ''}`);
    });
    conn.sendRecv('linger', null, (r) => got.push(`cmd2 ${r.getHeader('Reply-Text') ?? ''}`));
    conn.api('uuid_exists u-1', (r) => got.push(`api ${r.getBody()}`));
    relied(
      socket.take() ===
        'sendmsg\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING\n\nlinger\n\napi uuid_exists u-1\n\n',
      'sendRecv/api no longer write "line\\nName: value\\n\\n"',
      'commands and their headers are checked before they are given to modesl, not after',
    );
    relied(
      (cmdQueue as unknown[]).length === 2 && (apiQueue as unknown[]).length === 1,
      'sendRecv/api no longer queue their callbacks in cmdCallbackQueue/apiCallbackQueue',
      'emptying those queues is how pending callbacks are forgotten at teardown',
    );
    hand('api/response', {}, 'true');
    hand('command/reply', { 'Reply-Text': '+OK bye' });
    hand('command/reply', { 'Reply-Text': '-ERR no' });
    relied(
      got.join('|') === 'api true|cmd1 +OK bye|cmd2 -ERR no',
      `replies handed in no longer reach the callbacks in order (got ${got.join('|')})`,
      'every command is a promise resolved by its reply',
    );
    conn.send('exit');
    relied(socket.take() === 'exit\n\n', 'send() no longer writes "line\\n\\n"', '`exit` is sent with it');
  });

  test('emptied callback queues: a late reply calls nothing and does not throw', () => {
    const { conn, loose, hand } = outbound(true);
    let called = false;
    conn.sendRecv('linger', () => (called = true));
    conn.api('uuid_exists u-1', () => (called = true));
    const queues = [loose['cmdCallbackQueue'], loose['apiCallbackQueue']];
    relied(queues.every(Array.isArray), 'Connection#cmdCallbackQueue/#apiCallbackQueue are gone', 'teardown');
    for (const queue of queues as unknown[][]) queue.length = 0;
    hand('command/reply', { 'Reply-Text': '+OK' });
    hand('api/response', {}, 'true');
    relied(!called, 'callbacks still run after cmdCallbackQueue/apiCallbackQueue were emptied', 'teardown');
  });

  test('a disconnect notice is emitted as esl::event::disconnect::notice with the event', () => {
    const { conn, hand } = outbound();
    const seen: { name: string; disposition: unknown }[] = [];
    conn.onAny((name, ...args) => {
      const ev = args[0] as { getHeader?(n: string): unknown } | undefined;
      const text = Array.isArray(name) ? name.join('::') : name;
      seen.push({ name: text, disposition: ev?.getHeader?.('Content-Disposition') });
    });
    hand('text/disconnect-notice', { 'Content-Disposition': 'linger' }, 'Disconnected, goodbye.\n');
    const notice = seen.find((s) => s.name.startsWith('esl::event::disconnect::notice'));
    relied(
      notice?.disposition === 'linger',
      `a disconnect notice is no longer emitted as esl::event::disconnect::notice (seen: ${seen.map((s) => s.name)})`,
      'the call learns of the switch letting go through it',
    );
  });

  test('Parser#_parseXmlBody reads an XML event; a body without <headers> throws', () => {
    const { parser } = outbound();
    relied(
      typeof parser['_parseXmlBody'] === 'function',
      'Parser#_parseXmlBody is gone',
      'text/event-xml events are read with it',
    );
    const parseXml = parser['_parseXmlBody'] as (t: string) => Record<string, unknown>;
    const read = (text: string) => parseXml.call(parser, text);
    const xml =
      '<event><headers><Event-Name>CHANNEL_ANSWER</Event-Name><Unique-ID>u-1</Unique-ID>' +
      '<Content-Length>2</Content-Length></headers><body>hi</body></event>';
    const headers = read(xml);
    relied(
      headers['Event-Name'] === 'CHANNEL_ANSWER' && headers['Unique-ID'] === 'u-1',
      `Parser#_parseXmlBody no longer returns the event's headers as an object (got ${JSON.stringify(headers)})`,
      'an XML event is built from them with new esl.Event(headers)',
    );
    relied(
      headers['Content-Length'] === 2 && headers['_body'] === 'hi',
      'Parser#_parseXmlBody no longer gives Content-Length as a number and the body as _body',
      "an XML event reads as modesl's Parser would have read it",
    );
    const event = new esl.Event(headers);
    relied(
      event.getHeader('Unique-ID') === 'u-1' && event.getBody() === 'hi',
      'new Event(headers) no longer reads headers and _body',
      'an XML event is built with it',
    );
    relied(
      (() => {
        try {
          read('<event><nothing/></event>');
          return false;
        } catch {
          return true;
        }
      })(),
      'Parser#_parseXmlBody no longer throws on a body without <headers>',
      'a broken XML event closes its connection (test/e2e/esl-defects.test.ts 4b)',
    );
  });

  test("the socket's 'end' makes the connection let go of it", () => {
    const { socket, conn } = outbound();
    let ended = false;
    conn.on('esl::end', () => (ended = true));
    socket.emit('end');
    relied(
      conn.socket === null && ended,
      "the socket's 'end' no longer sets Connection#socket to null",
      'teardown emits it so that modesl drops the socket',
    );
  });

  test('inbound: auth, its own `event json` subscription, ready; events and a refused password by name', async () => {
    const commands: string[] = [];
    let password = 'secret';
    const open = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      open.add(socket);
      socket.on('close', () => open.delete(socket));
      socket.on('error', () => {});
      socket.write('Content-Type: auth/request\n\n');
      let buffered = '';
      socket.on('data', (d: Buffer) => {
        buffered += d.toString();
        for (let end = buffered.indexOf('\n\n'); end >= 0; end = buffered.indexOf('\n\n')) {
          const line = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          commands.push(line);
          if (line.startsWith('auth ')) {
            const answer = line === `auth ${password}` ? '+OK accepted' : '-ERR invalid';
            socket.write(`Content-Type: command/reply\nReply-Text: ${answer}\n\n`);
          } else if (line.startsWith('event ')) {
            socket.write('Content-Type: command/reply\nReply-Text: +OK event listener enabled json\n\n');
            const body = JSON.stringify({ 'Event-Name': 'CHANNEL_ANSWER', 'Unique-ID': 'u.1' });
            socket.write(`Content-Length: ${body.length}\nContent-Type: text/event-json\n\n${body}`);
          }
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const names: string[] = [];
      let conn!: InstanceType<typeof esl.Connection>;
      await new Promise<void>((resolve, reject) => {
        conn = new esl.Connection('127.0.0.1', port, 'secret', () => resolve());
        conn.on('error', reject);
        conn.onAny((name) => names.push(Array.isArray(name) ? name.join('::') : name));
        setTimeout(() => reject(new Error('no esl::ready')), 3000).unref();
      });
      const socket = conn.socket as unknown as net.Socket;
      relied(
        socket instanceof net.Socket,
        'Connection#socket is no longer the net.Socket of an inbound connection',
        "its 'close' is listened to and it is destroyed at teardown",
      );
      await new Promise((r) => setTimeout(r, 100));
      relied(
        commands[0] === 'auth secret' && commands[1] === 'event json BACKGROUND_JOB CHANNEL_EXECUTE_COMPLETE',
        `the inbound login is no longer "auth <password>" then "event json BACKGROUND_JOB …" (got ${commands})`,
        'test/doubles/inbound-switch.ts and the restart tests expect it',
      );
      relied(
        names.includes('esl::event::CHANNEL_ANSWER::u.1'),
        `a JSON event is no longer emitted as esl::event::<Event-Name>::<Unique-ID> (seen: ${names})`,
        'the inbound socket reads the names starting with esl::event::CHANNEL_',
      );
      socket.destroy();

      password = 'other';
      const failed = await new Promise<boolean>((resolve) => {
        const c = new esl.Connection('127.0.0.1', port, 'secret', () => resolve(false));
        c.on('error', () => resolve(false));
        c.on('esl::event::auth::fail', () => {
          (c.socket as unknown as net.Socket | null)?.destroy();
          resolve(true);
        });
      });
      relied(failed, 'a refused password no longer emits esl::event::auth::fail', 'a wrong password is named');
    } finally {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
