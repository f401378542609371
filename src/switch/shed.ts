/**
 * Shedding a call on the raw socket, without modesl, a subscription or Zammad: what the adapter
 * does with the calls it cannot take under overload (process/shedding.ts). It asks for the channel
 * data (`connect`), and the caller decides from it: hand the call back to the dialplan at once
 * (`sendmsg` transfer, then `exit`, in one write) or take it as a call after all (an EslConnection
 * on the same socket, whose own `connect` FreeSWITCH answers with the channel data again:
 * mod_event_socket.c parse_command(), `connect` replies every time).
 *
 * Why a hand-back and not a closed port: closing a listening port resets the connections the
 * kernel holds for it, and FreeSWITCH parks a call whose socket ends before the socket application
 * has parked it (docs/reference/freeswitch.md). Why the transfer goes with `exit` in one write:
 * the transfer is queued on the session as a private event before the connection ends, and
 * switch_ivr_park() runs it whenever it starts (switch_ivr.c), so the race that `connect` + `exit`
 * alone loses cannot happen (test/switch/scenarios/shed.test.ts proves it on the real switch).
 */
import type { Socket } from 'node:net';
import { HeaderText } from './esl-frames.js';

const LFLF = Buffer.from('\n\n');

export interface ShedOptions {
  /** The channel data must arrive within this long (ms), or the socket is closed. */
  timeoutMs: number;
  /** Bytes read without a complete reply before the socket is closed. */
  maxBytes: number;
}

/** Why a shed connection ended without its channel data. */
export type PeekFailure = 'closed' | 'timeout' | 'too-large' | 'not-channel-data';

/** The hand-back, as in CallSession.handBack(): the new hunt skips the gate (zammad_handled). */
const HAND_BACK =
  'sendmsg\ncall-command: execute\nexecute-app-name: transfer\n' +
  'execute-app-arg: ${destination_number} XML ${context}\n\nexit\n\n';

/** After the hand-back, FreeSWITCH answers and closes at once; a peer that does not is closed after this. */
const GOODBYE_MS = 5000;

/**
 * Sends `connect` and resolves with the reply's header block (the channel data), or with why it
 * did not come. The socket is left as it was found (no listener of this function on it) when the
 * channel data came; otherwise it is destroyed.
 */
export function peekChannelData(
  socket: Socket,
  options: ShedOptions,
): Promise<{ data: HeaderText } | { failure: PeekFailure }> {
  return new Promise((resolve) => {
    let chunks: Buffer[] = [];
    let read = 0;
    const finish = (result: { data: HeaderText } | { failure: PeekFailure }) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      if ('failure' in result) socket.destroy();
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      // The reply is one header block (no body): it ends at the first blank line. Anything after it
      // would be FreeSWITCH talking out of turn, and is not looked at.
      const from = Math.max(0, read - 1);
      chunks.push(chunk);
      read += chunk.length;
      const all = chunks.length === 1 ? chunk : Buffer.concat(chunks, read);
      chunks = [all];
      const end = all.indexOf(LFLF, from);
      if (end < 0) {
        if (read > options.maxBytes) finish({ failure: 'too-large' });
        return;
      }
      // latin1: FreeSWITCH URL-encodes every value (switch_event_serialize), so the block is ASCII.
      const reply = new HeaderText(all.toString('latin1', 0, end + 1));
      const ok = reply.get('Content-Type') === 'command/reply' && reply.get('Unique-ID') !== undefined;
      finish(ok ? { data: reply } : { failure: 'not-channel-data' });
    };
    const onClose = () => finish({ failure: 'closed' });
    const timer = setTimeout(() => finish({ failure: 'timeout' }), options.timeoutMs);
    timer.unref();
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.write('connect\n\n');
  });
}

/**
 * Hands the call back to the dialplan and lets the connection go: `transfer`, `exit`, in one write.
 * What FreeSWITCH sends back (two replies, the disconnect notice) is read and dropped until it closes.
 * Resolves once the socket is closed.
 */
export function handBackAndGo(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => socket.destroy(), GOODBYE_MS);
    timer.unref();
    socket.on('data', () => {});
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.resume();
    // FreeSWITCH closes the connection after `exit` (mod_event_socket.c: +OK bye, disconnect notice).
    socket.write(HAND_BACK);
  });
}
