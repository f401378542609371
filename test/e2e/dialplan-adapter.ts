/**
 * What the dialplan-mode suites (dialplan-sim, transfers-sim, pickup-transfer) share: Zammad's
 * double and the real adapter program with DEFAULT_BRIDGE empty, started before the calling
 * file's tests and stopped after them; Zammad's posts for a call once it took the hangup; a
 * summary of those posts.
 */
import { after, before } from 'node:test';
import { randomUUID } from 'node:crypto';
import { placeCall, type CallScript, type SwitchCall } from '@freeswitch-zammad-cti/sim/switch';
import { ZammadDouble, type Params, type ZammadDoubleOptions } from '@freeswitch-zammad-cti/sim/zammad';
import { startAdapter, type AdapterProcess } from './adapter-process.js';

/** What the adapter sends to hand the call back to the dialplan. */
export const HAND_BACK = 'sendmsg execute transfer ${destination_number} XML ${context}';

export interface DialplanAdapter {
  readonly zammad: ZammadDouble;
  /** The adapter's event socket port (once started). */
  eslPort(): number;
  /** Zammad's posts for a call once it took the call's hangup, and 100 ms later: a stray post would show up by then. */
  postsOf(callId: string): Promise<Params[]>;
  /** Places a scripted call on the adapter; once it is over, the call and Zammad's posts for it. */
  place(sc: CallScript, during?: (call: SwitchCall) => Promise<void>): Promise<{ call: SwitchCall; posts: Params[] }>;
}

/** Registers the file's before/after hooks: Zammad's double (with `options`), then the adapter pointed at it. */
export function dialplanAdapter(options: Omit<ZammadDoubleOptions, 'token'> = {}): DialplanAdapter {
  const zammad = new ZammadDouble({ token: `tok-${randomUUID()}`, ...options });
  let adapter: AdapterProcess | undefined;

  before(async () => {
    await zammad.start();
    adapter = await startAdapter({ ZAMMAD_CTI_URL: zammad.url, ZAMMAD_NEWCALL_TIMEOUT_MS: '1500', DEFAULT_BRIDGE: '' });
  });

  after(async () => {
    await adapter?.stop();
    await zammad.stop();
  });

  const eslPort = (): number => {
    if (!adapter) throw new Error('the adapter is not started (before() failed?)');
    return adapter.eslPort;
  };

  const postsOf = async (callId: string): Promise<Params[]> => {
    await zammad.waitFor(
      (z) => z.postsFor(callId).some((p) => p.params['event'] === 'hangup' && p.status === 200),
      5000,
    );
    await new Promise((r) => setTimeout(r, 100)); // a stray post would show up now
    return zammad.postsFor(callId).map((p) => p.params);
  };

  const place = async (sc: CallScript, during?: (call: SwitchCall) => Promise<void>) => {
    const call = await placeCall({ host: '127.0.0.1', port: eslPort() }, sc);
    if (during) await during(call);
    await call.channelDone;
    await call.closed;
    return { call, posts: await postsOf(call.uuid) };
  };

  return { zammad, eslPort, postsOf, place };
}

/** event, user, user_id, answeringNumber, cause of each post */
export const summary = (posts: Params[]) =>
  posts.map((p) =>
    [p['event'], p['user'] ?? '', p['user_id'] ?? '', p['answeringNumber'] ?? '', p['cause'] ?? '']
      .filter((x) => x !== '')
      .join(' '),
  );
