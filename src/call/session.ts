/**
 * The shell around flow.ts for one call: feeds it the switch's events and Zammad's answers,
 * performs its effects through the event socket and the outbox. No rules live here.
 */
import type { Logger } from '../process/log.js';
import { EslClosedError, EslUnsafeCommandError, type EslConnection, type SwitchEvent } from '../switch/esl-connection.js';
import type { Outbox } from '../zammad/outbox.js';
import { decisionFromReply } from '../zammad/replies.js';
import { callFacts, missingFacts, type CallFacts, type CallRules } from './facts.js';
import { initialState, step, type CallState, type Decision, type Effect, type Input, type NewCallPost } from './flow.js';
import { readSignal } from './signals.js';

export interface SessionDeps {
  rules: CallRules;
  outbox: Outbox;
  log: Logger;
  newCallTimeoutMs: number;
  lookupTimeoutMs?: number;
  metrics?: {
    decided?(kind: string, seconds: number): void;
    ended?(cause: string): void;
  };
}

/** A directory name goes into a Zammad post: printable, one line, sane length. */
function cleanName(text: string): string | undefined {
  const t = text.trim();
  if (t === '' || t.startsWith('-ERR') || t.length > 200 || /[\x00-\x1f\x7f]/.test(t)) return undefined;
  return t;
}

export class CallSession {
  private state!: CallState;
  private log: Logger;
  private readonly finished: Promise<void>;
  private resolveFinished!: () => void;

  constructor(
    private readonly conn: EslConnection,
    private readonly deps: SessionDeps,
  ) {
    this.log = deps.log.child({ remote: conn.remote });
    this.finished = new Promise((r) => (this.resolveFinished = r));
  }

  /** Runs the call to its end; resolves once the socket is closed and the hangup handed to the outbox. */
  async run(): Promise<void> {
    const facts = await this.readFacts();
    if (!facts) return;
    const problem = missingFacts(facts);
    this.log = this.deps.log.child({ callId: facts.callId || undefined, remote: this.conn.remote });
    if (problem) this.log.error(`cannot report this call to Zammad (${problem}); bridging it anyway`);
    this.state = initialState(facts, problem === undefined);
    this.log.info('call', { direction: facts.direction, from: facts.from, to: facts.to });

    this.conn.on('event', (e) => {
      // myevents filters by uuid on the switch; a listener-wide subscription (modesl's) may not.
      if (facts.callId && e.get('Unique-ID') !== facts.callId) return;
      const signal = readSignal(e);
      if (signal) this.dispatch({ type: 'signal', signal });
    });
    this.conn.on('closed', (reason, detail) => {
      if (reason !== 'exit' && reason !== 'peer-closed') this.log.warn('event socket closed', { reason, ...(detail ? { detail } : {}) });
      if (reason === 'shutdown') {
        // The call goes on in the switch: the next start closes it in Zammad (process/recovery.ts).
        if (this.state.phase !== 'ended') this.log.warn('adapter stopping: call left open for the next start');
      } else if (this.state.phase !== 'ended') {
        this.dispatch({ type: 'connectionLost' });
      }
      this.resolveFinished();
    });
    if (!this.conn.isOpen) {
      this.dispatch({ type: 'connectionLost' });
      return;
    }

    try {
      await this.conn.command('myevents');
      // Without linger FreeSWITCH closes the socket as soon as the channel is down and the last events can be lost.
      await this.conn.command('linger');
    } catch (err) {
      this.log.warn('FreeSWITCH did not take myevents/linger', { error: String(err) });
    }
    this.dispatch({ type: 'start' });
    await this.finished;
  }

  /**
   * The call's facts from the channel data. A function of its own so that the channel data (several
   * KB per call) is not kept alive by run()'s frame for the whole call.
   */
  private async readFacts(): Promise<CallFacts | undefined> {
    let data: SwitchEvent;
    try {
      data = await this.conn.ready();
    } catch (err) {
      this.log.warn('event socket connection ended before FreeSWITCH sent the channel data', { reason: err instanceof EslClosedError ? err.reason : String(err) });
      return undefined;
    }
    return callFacts((h) => data.get(h), this.deps.rules);
  }

  private dispatch(input: Input): void {
    const { state, effects } = step(this.state, input, this.deps.rules);
    this.state = state;
    for (const effect of effects) this.perform(effect);
  }

  private perform(effect: Effect): void {
    switch (effect.type) {
      case 'lookupUsers':
        void Promise.all(effect.directoryIds.map((id) => this.lookupName(id))).then((names) => this.dispatch({ type: 'usersResolved', names }));
        return;
      case 'lookupAnswerer':
        void this.lookupName(effect.directoryId).then((name) => this.dispatch({ type: 'answererResolved', name }));
        return;
      case 'decide':
        void this.decide(effect.post).then((decision) => this.dispatch({ type: 'decision', decision }));
        return;
      case 'post':
        // The outbox journals calls in progress with their events (store.ts), for crash recovery.
        if (effect.post.event === 'hangup') {
          this.deps.metrics?.ended?.(effect.post.cause);
          this.log.info('call ended', { cause: effect.post.cause });
        }
        void this.deps.outbox.send(effect.post);
        return;
      case 'setVariable':
        this.command(this.conn.execute('set', `${effect.name}=${effect.value}`), 'set');
        return;
      case 'bridge':
        this.command(this.conn.execute('bridge', effect.dialString), 'bridge');
        return;
      case 'hangup':
        this.command(this.conn.hangup(effect.cause), 'hangup');
        return;
      case 'exit':
        this.conn.exit();
        return;
      case 'log':
        this.log[effect.level](effect.message, effect.fields);
        return;
    }
  }

  private command(p: Promise<string>, what: string): void {
    p.catch((err: unknown) => {
      if (err instanceof EslClosedError) this.log.debug(`${what} not sent: socket closed`);
      else if (err instanceof EslUnsafeCommandError && what === 'bridge') {
        // Never bridged: hang the caller up rather than leave them in silence in the socket's park.
        this.log.error(`${err.message}: check the zammad_bridge variable of this call; hanging the caller up`);
        this.command(this.conn.hangup('NORMAL_TEMPORARY_FAILURE'), 'hangup');
      } else if (err instanceof EslUnsafeCommandError) this.log.error(err.message);
      else this.log.warn(`FreeSWITCH refused ${what}`, { error: String(err) });
    });
  }

  /** Posts newCall and waits for Zammad at most newCallTimeoutMs; delivery goes on in the outbox after that. */
  private async decide(post: NewCallPost): Promise<Decision> {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => (timer = setTimeout(resolve, this.deps.newCallTimeoutMs, null)));
    const verdict = await Promise.race([this.deps.outbox.send(post), timeout]);
    clearTimeout(timer);
    const seconds = (performance.now() - started) / 1000;
    if (verdict === null) {
      this.log.warn(`no answer from Zammad within ${this.deps.newCallTimeoutMs} ms: bridging without its decision (newCall stays in the outbox)`);
      this.deps.metrics?.decided?.('timeout', seconds);
      return { kind: 'continue', why: 'timeout' };
    }
    if (verdict.kind !== 'delivered') {
      this.deps.metrics?.decided?.('error', seconds);
      return { kind: 'continue', why: 'error' };
    }
    const { decision, note } = decisionFromReply(verdict.body);
    if (note) this.log.warn(`${note}; bridging`);
    this.deps.metrics?.decided?.(decision.kind, seconds);
    return decision;
  }

  private async lookupName(directoryId: string): Promise<string | undefined> {
    // Only a directory id we parsed ourselves goes into the command: no spaces, no newlines.
    if (!/^[\w.+-]+(@[\w.-]+)?$/.test(directoryId)) return undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(resolve, this.deps.lookupTimeoutMs ?? 1000, undefined)));
      const text = await Promise.race([this.conn.api(`user_data ${directoryId} var effective_caller_id_name`), timeout]);
      return text === undefined ? undefined : cleanName(text);
    } catch {
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }
}
