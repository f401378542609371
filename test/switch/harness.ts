/**
 * What every real-switch test file needs, in one place: the inbound connection to the switch
 * (with the leg collector on it), the adapters with their Zammad doubles ("lines"), the suite's
 * dialplan, and the teardown that removes it again — also when a test or a start-up step failed.
 *
 *   const sw = await RealSwitch.open();           // fails with one line when no switch answers
 *   const main = await sw.line({ name: 'main', zammad: { blockedNumbers: [...] } });
 *   await sw.dialplan('cti_test_bridge', [bridgeModeExtension({ …, eslPort: main.eslPort })]);
 *   const call = sw.call('answered', { to: '493099970100', from: '493055571600' });
 *   const done = await sw.finished(main, call);   // every leg ended, Zammad has the hangup
 *   after(() => sw.close());
 */
import { EslClient } from './esl-client.js';
import { LegCollector, type Leg, type TestCallLegs } from './legs.js';
import { installContexts, installPublicDialplan, type Context, type DialplanFile, type Extension } from './dialplan.js';
import { EslTap } from './esl-tap.js';
import { placeCall, type CallOptions, type PlacedCall } from './place-call.js';
import { startLine, type Line, type LineOptions } from './adapter.js';
import { switchAddress } from './switch-address.js';
import type { Params, ReceivedPost } from '@freeswitch-zammad-cti/sim/zammad';

export interface FinishedCall {
  legs: TestCallLegs;
  /** the lo-in channel the adapter was handed: its Unique-ID is Zammad's callId */
  inbound: Leg;
  callId: string;
  /** what Zammad received for the call, in arrival order */
  posts: ReceivedPost[];
  params: Params[];
  /** the originate's result: `+OK …` (the caller was answered) or `-ERR CAUSE` */
  result: string;
  /** the adapter's log lines of this call, one JSON line each (for failure messages) */
  adapterLog(): string;
}

export class RealSwitch {
  private readonly lines: Line[] = [];
  private readonly files: DialplanFile[] = [];
  private readonly taps: EslTap[] = [];

  private constructor(
    readonly esl: EslClient,
    readonly legs: LegCollector,
  ) {}

  /** Connects to FS_TEST_ESL; the error is one line naming the address and what to do. */
  static async open(): Promise<RealSwitch> {
    const address = switchAddress();
    let esl: EslClient;
    try {
      esl = await EslClient.connect(address, 5000);
    } catch (err) {
      throw new Error(unreachable(err));
    }
    const legs = await LegCollector.attach(esl);
    return new RealSwitch(esl, legs);
  }

  /** Starts a Zammad double and the built adapter beside it; stopped by close(). */
  async line(o: LineOptions): Promise<Line> {
    const line = await startLine(o);
    this.lines.push(line);
    return line;
  }

  /** Writes the suite's extensions into the switch's public context (removed by close()). */
  async dialplan(
    fileBase: string,
    extensions: readonly Extension[],
    fallbacks: readonly string[] = [],
  ): Promise<DialplanFile> {
    const file = await installPublicDialplan(this.esl, fileBase, extensions, fallbacks);
    this.files.push(file);
    return file;
  }

  /** Writes contexts of the suite's own (`dialplan/<fileBase>.xml`; removed by close()). */
  async contexts(fileBase: string, contexts: readonly Context[]): Promise<DialplanFile> {
    const file = await installContexts(this.esl, fileBase, contexts);
    this.files.push(file);
    return file;
  }

  /** A recording relay in front of a line's adapter (esl-tap.ts): point the gate at `tap.port`. */
  async tap(line: Line): Promise<EslTap> {
    const tap = await EslTap.start(() => line.eslPort);
    this.taps.push(tap);
    return tap;
  }

  call(label: string, o: CallOptions): PlacedCall {
    return placeCall(this.esl, this.legs, label, o);
  }

  /**
   * Waits (bounded) until every leg of the call has ended on the switch and Zammad accepted the
   * call's hangup (or, with `zammadHangup: false`, only the legs), then a short moment for a
   * stray extra post to show up.
   */
  async finished(
    line: Line,
    call: PlacedCall,
    o: { timeoutMs?: number; zammadHangup?: boolean } = {},
  ): Promise<FinishedCall> {
    const timeoutMs = o.timeoutMs ?? 30_000;
    const legs = await this.legs.allEnded(call.tag, timeoutMs);
    const inbound = legs.one('inbound');
    const callId = inbound.uuid;
    if (o.zammadHangup !== false) {
      await line.zammad.waitFor(
        (z) => z.postsFor(callId).some((p) => p.event === 'hangup' && p.status === 200),
        timeoutMs,
      );
    }
    const result = await call.result;
    await new Promise((r) => setTimeout(r, 300));
    const posts = line.zammad.postsFor(callId);
    const adapterLog = () =>
      line.adapter.lines
        .filter((l) => l['callId'] === callId)
        .map((l) => JSON.stringify(l))
        .join('\n');
    return {
      legs: this.legs.legsOf(call.tag),
      inbound,
      callId,
      posts,
      params: posts.map((p) => p.params),
      result: result.trim(),
      adapterLog,
    };
  }

  /**
   * Runs a test's assertions on a finished call; a failure carries the call's legs (as the
   * switch saw them), Zammad's requests and the adapter's log lines of the call.
   */
  async judge(done: FinishedCall, assertions: () => void | Promise<void>): Promise<void> {
    try {
      await assertions();
    } catch (err) {
      if (err instanceof Error) {
        const posts = done.posts
          .map((p) => `${p.event}:${p.status} ${JSON.stringify(p.params)} → ${p.reply}`)
          .join('\n  ');
        err.message +=
          `\n--- legs: ${done.legs.describe()}\n--- Zammad ` +
          `got:\n  ${posts}\n--- adapter log:\n${done.adapterLog()}`;
      }
      throw err;
    }
  }

  /** Removes the dialplan (reloadxml), stops the adapters and doubles, closes the connection. */
  async close(): Promise<void> {
    const errors: unknown[] = [];
    for (const f of this.files.splice(0)) await f.remove().catch((e: unknown) => errors.push(e));
    for (const l of this.lines.splice(0)) await l.stop().catch((e: unknown) => errors.push(e));
    for (const t of this.taps.splice(0)) await t.close().catch((e: unknown) => errors.push(e));
    this.legs.stop();
    await this.esl.close().catch(() => undefined);
    if (errors.length) throw errors[0];
  }
}

export function unreachable(err: unknown): string {
  const a = switchAddress();
  const why = err instanceof Error ? err.message : String(err);
  return (
    `FreeSWITCH not reachable: ${why}. The real-switch suite needs one at FS_TEST_ESL=${a.host}:${a.port} ` +
    '(password FS_TEST_ESL_PASSWORD); start a disposable one with ../shared/freeswitch/start.sh or see the ' +
    'README, "Tests against a real FreeSWITCH"'
  );
}
