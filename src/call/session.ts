/**
 * The shell around flow.ts for one call: feeds it the switch's events and Zammad's answers,
 * performs its effects through the event socket and the outbox. No rules live here.
 */
import type { Logger } from '../process/log.js';
import {
  EslClosedError,
  EslUnsafeCommandError,
  type EslConnection,
  type SwitchEvent,
} from '../switch/esl-connection.js';
import { isChannelId } from '../switch/channel-id.js';
import type { EndpointChoice, ChoiceHints } from '../zammad/endpoint-choice.js';
import type { Early } from '../zammad/lane.js';
import type { Verdict } from '../zammad/verdict.js';
import { decisionFromReply } from '../zammad/replies.js';
import { callFacts, missingFacts, type CallFacts, type CallRules } from './facts.js';
import {
  initialState,
  step,
  type Answerer,
  type CallState,
  type CtiPost,
  type Decision,
  type Effect,
  type Input,
  type NewCallPost,
} from './flow.js';
import { DIALPLAN_EVENT_FILTERS, readSignal } from './signals.js';

/**
 * The calls this process follows, by uuid. A second socket connection for one of them (a
 * transfer back into a context whose gate lacks the `zammad_handled` guard) is let go.
 */
export interface FollowedCalls {
  claim(callId: string): boolean;
  release(callId: string): void;
}

/**
 * Zammad as a call sees it: which endpoint its events go to (decided once, at the start), and
 * durable delivery there (zammad/endpoint-set.ts).
 */
export interface ZammadSink {
  choose(hints: ChoiceHints): EndpointChoice;
  /** `early` hears at once that no decision will come (lane.ts Early); it answers whether the call still waits. */
  send(endpoint: string, post: CtiPost, early?: Early): Promise<Verdict>;
}

/**
 * The process's load as a call sees it (process/shedding.ts): whether to wait for Zammad's decision
 * at all, and the counts the overload levels are decided on.
 */
export interface CallLoad {
  /** Overload level 1 or more: route the caller at once, without Zammad's decision. */
  readonly shedding: boolean;
  /** A caller waits for Zammad's decision; `release` ends that wait at once. Returns: the wait is over. */
  waiting(release: () => void): () => void;
  /** A newCall went to the outbox; the returned function: Zammad answered it (or will not be asked for a decision). */
  unanswered(): () => void;
  /** The call's routing command (hand-back, bridge, reject, exit) went out, or never will: once per call. */
  routed(): void;
}

export interface SessionDeps {
  rules: CallRules;
  zammad: ZammadSink;
  log: Logger;
  newCallTimeoutMs: number;
  lookupTimeoutMs?: number;
  followed?: FollowedCalls;
  load?: CallLoad;
  metrics?: {
    decided?(kind: string, seconds: number, endpoint: string): void;
    /** A caller went on without waiting for Zammad's decision (reason: overload). */
    skipped?(endpoint: string, reason: string): void;
    ended?(cause: string): void;
  };
}

/**
 * A call is routed at most ZAMMAD_NEWCALL_TIMEOUT_MS + this after the connection was accepted: the
 * decision wait is cut short by what the handshake and the look-ups (1 s at most each) took.
 */
export const ROUTING_MARGIN_MS = 1000;

const DIRECTORY_ID = /^[\w.+-]+(@[\w.-]+)?$/;

/** What a look-up answered, when it is a usable value: printable, one line, sane length, no -ERR / _undef_. */
function usableText(text: string): string | undefined {
  const t = text.trim();
  // uuid_getvar answers `_undef_` for a variable the channel does not have (mod_commands.c).
  if (t === '' || t === '_undef_' || t.startsWith('-ERR') || t.length > 200 || /[\x00-\x1f\x7f]/.test(t))
    return undefined;
  return t;
}

export class CallSession {
  private state!: CallState;
  private log: Logger;
  /** The endpoint this call's events go to; undefined: not reported. */
  private endpoint: string | undefined;
  private readonly finished: Promise<void>;
  private resolveFinished!: () => void;
  /** What the call's one info line says about it (written when it ends, with the cause). */
  private summary: Record<string, string> = {};
  /** performance.now() by which the call must be routed, whatever Zammad does. */
  private readonly deadline: number;
  private routedNoted = false;

  constructor(
    private readonly conn: EslConnection,
    private readonly deps: SessionDeps,
  ) {
    this.log = deps.log.child({ remote: conn.remote });
    this.finished = new Promise((r) => (this.resolveFinished = r));
    this.deadline = performance.now() + deps.newCallTimeoutMs + ROUTING_MARGIN_MS;
  }

  /** Tells the load once that this call needs no routing command any more. */
  private noteRouted(): void {
    if (this.routedNoted) return;
    this.routedNoted = true;
    this.deps.load?.routed();
  }

  /** Runs the call to its end; resolves once the socket is closed and the hangup handed to the outbox. */
  async run(): Promise<void> {
    try {
      await this.follow();
    } finally {
      this.noteRouted();
    }
  }

  private async follow(): Promise<void> {
    const facts = await this.readFacts();
    if (!facts) return;
    const problem = missingFacts(facts);
    this.log = this.deps.log.child({ callId: facts.callId || undefined, remote: this.conn.remote });
    if (problem) this.log.error(`cannot report this call to Zammad (${problem}); routing it anyway`);
    if (facts.callId && this.deps.followed && !this.deps.followed.claim(facts.callId)) {
      // Posting anything would be a second newCall for the call. `exit` makes the socket
      // application return, and the dialplan goes on with what follows it.
      this.log.warn(
        'a second socket connection for a call already followed (does the gate check zammad_handled?): letting it go',
      );
      this.conn.exit();
      return;
    }
    // The call is followed once FreeSWITCH has taken the subscription: a refusal closes the connection.
    try {
      await this.open(facts.mode);
    } catch (err) {
      if (facts.callId) this.deps.followed?.release(facts.callId);
      this.logUnfollowed(err);
      return;
    }
    if (!problem) {
      const choice = this.deps.zammad.choose({
        ...(facts.zammadEndpoint !== undefined ? { endpoint: facts.zammadEndpoint } : {}),
        ...(facts.domain !== undefined ? { domain: facts.domain } : {}),
      });
      // Not reported (no endpoint for it, logged by the endpoint set): routed as if Zammad said nothing.
      if (choice.kind === 'endpoint') this.endpoint = choice.name;
    }
    this.state = initialState(facts, this.endpoint !== undefined);
    this.summary = {
      direction: facts.direction,
      from: facts.from,
      to: facts.to,
      mode: facts.mode,
      endpoint: this.endpoint ?? 'none',
    };
    // One info line per call, when it ends ('call ended'); its start is a debug line.
    this.log.debug('call', this.summary);

    this.conn.follow((e) => {
      const signal = readSignal(e);
      // `myevents` lets only this channel's events through (mod_event_socket.c event_handler(),
      // LFLAG_MYEVENTS: Unique-ID compared with the session's uuid); checked again for the few
      // events that mean something, not for every event (each look-up scans ~8 KB of JSON).
      if (signal && !(facts.callId && e.get('Unique-ID') !== facts.callId)) this.dispatch({ type: 'signal', signal });
    });
    this.conn.on('closed', (reason, detail) => {
      if (reason !== 'exit' && reason !== 'peer-closed')
        this.log.warn('event socket closed', { reason, ...(detail ? { detail } : {}) });
      if (reason === 'shutdown') {
        // The call goes on in the switch: the next start closes it in Zammad (process/recovery.ts).
        if (this.state.phase !== 'ended') this.log.warn('adapter stopping: call left open for the next start');
      } else if (this.state.phase !== 'ended') {
        this.dispatch({ type: 'connectionLost' });
      }
      if (facts.callId) this.deps.followed?.release(facts.callId);
      this.noteRouted();
      this.resolveFinished();
    });
    if (!this.conn.isOpen) {
      // Closed before 'closed' had a listener: it will not fire for us.
      if (facts.callId) this.deps.followed?.release(facts.callId);
      this.dispatch({ type: 'connectionLost' });
      return;
    }

    this.dispatch({ type: 'start' });
    await this.finished;
  }

  /**
   * The subscription (`myevents json`), linger and the filters, in one write (esl.ts sends what a
   * tick writes at once), answered in order; resolves with the subscription's answer. Without
   * linger FreeSWITCH closes the socket as soon as the channel is down and the last events can be
   * lost. Linger and filters are not waited for: FreeSWITCH runs a connection's commands in order,
   * so whatever the call sends next (its routing command) comes after them anyway.
   */
  private open(mode: CallFacts['mode']): Promise<string> {
    const subscribed = this.conn.subscribe();
    const rest = [this.conn.command('linger')];
    // A dialplan runs dozens of apps on the channel: only the events readSignal() reads.
    if (mode === 'dialplan')
      for (const [header, value] of DIALPLAN_EVENT_FILTERS) rest.push(this.conn.command(`filter ${header} ${value}`));
    Promise.all(rest).catch((err: unknown) =>
      this.log.warn('FreeSWITCH did not take linger/filter', { error: String(err) }),
    );
    return subscribed;
  }

  private logUnfollowed(err: unknown): void {
    this.log.warn(
      'event socket connection ended before the call could be followed (channel data and subscription)',
      err instanceof EslClosedError
        ? { reason: err.reason, ...(err.detail ? { detail: err.detail } : {}) }
        : { error: String(err) },
    );
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
      this.logUnfollowed(err);
      return undefined;
    }
    return callFacts((h) => data.get(h), this.deps.rules);
  }

  private dispatch(input: Input): void {
    const { state, effects } = step(this.state, input, this.deps.rules);
    this.state = state;
    for (const effect of effects) this.perform(effect);
    const p = state.phase;
    if (!(p === 'new' || p === 'resolving' || p === 'deciding') || !state.commanding || state.channelDown)
      this.noteRouted();
  }

  private perform(effect: Effect): void {
    switch (effect.type) {
      case 'lookupUsers':
        void Promise.all(effect.directoryIds.map((id) => this.lookupName(id))).then((names) =>
          this.dispatch({ type: 'usersResolved', names }),
        );
        return;
      case 'lookupAnswerer':
        void this.lookupAnswerer(effect.leg, effect.directoryId, effect.phone).then((answerer) =>
          this.dispatch({ type: 'answererResolved', leg: effect.leg, answerer }),
        );
        return;
      case 'decide':
        void this.decide(effect.post).then((decision) => this.dispatch({ type: 'decision', decision }));
        return;
      case 'post':
        // The outbox journals calls in progress with their events (store.ts), for crash recovery.
        if (effect.post.event === 'hangup') {
          this.deps.metrics?.ended?.(effect.post.cause);
          this.log.info('call ended', { ...this.summary, cause: effect.post.cause });
        }
        if (this.endpoint !== undefined) void this.deps.zammad.send(this.endpoint, effect.post);
        return;
      case 'setVariable':
        this.command(this.conn.execute('set', `${effect.name}=${effect.value}`), 'set');
        return;
      case 'bridge':
        this.command(this.conn.execute('bridge', effect.dialString), 'bridge');
        return;
      case 'handBack':
        this.handBack();
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

  /**
   * `transfer` returns the socket application and runs the dialplan again; the socket stays
   * connected and gets every event of the channel (routing/ obs. 1 and 2). Not `execute_extension`:
   * it keeps the call inside the socket application (obs. 3).
   */
  private handBack(): void {
    this.conn.execute('transfer', '${destination_number} XML ${context}').catch((err: unknown) => {
      if (err instanceof EslClosedError) return;
      // Left parked, the caller would hear silence: `exit` returns the socket application and
      // the dialplan goes on with the actions after it (the gate's continue="true").
      this.log.error('FreeSWITCH refused the hand-back transfer: letting the call go on in the dialplan', {
        error: String(err),
      });
      this.conn.exit();
    });
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

  /**
   * Posts newCall and waits for Zammad at most newCallTimeoutMs, less what the call's deadline has
   * left; delivery goes on in the outbox after that. Under overload the wait is skipped or ended.
   */
  private async decide(post: NewCallPost): Promise<Decision> {
    const started = performance.now();
    const waitMs = Math.max(0, Math.min(this.deps.newCallTimeoutMs, Math.floor(this.deadline - started)));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => (timer = setTimeout(resolve, waitMs, null)));
    // No decision can come (a configuration fault, Zammad unreachable, the disk, overload): go on at once.
    let noDecision!: (v: Verdict) => void;
    const early = new Promise<Verdict>((resolve) => (noDecision = resolve));
    let waiting = true;
    let toldEarly = false;
    let answered: (() => void) | undefined;
    const told = (v: Verdict) => {
      toldEarly = true;
      answered?.(); // not asked for a decision: not a newCall Zammad owes an answer to
      noDecision(v);
      return waiting;
    };
    const endpoint = this.endpoint;
    if (endpoint === undefined) return { kind: 'continue', why: 'not-reportable' };
    const sent = this.deps.zammad.send(endpoint, post, told);
    const load = this.deps.load;
    if (load && !toldEarly) {
      let once = load.unanswered();
      answered = () => {
        once();
        once = () => {};
      };
      void sent.finally(answered);
    }
    // The same early path as Zammad unreachable (lane.ts goOn); a fault told at once (synchronously) wins.
    let shed = !toldEarly && load?.shedding === true;
    const release = shed
      ? undefined
      : load?.waiting(() => {
          shed = true;
          noDecision({ kind: 'retry', reason: 'overload' });
        });
    const verdict = shed ? null : await Promise.race([sent, early, timeout]);
    waiting = false;
    release?.();
    clearTimeout(timer);
    const seconds = (performance.now() - started) / 1000;
    if (shed && !toldEarly) {
      // Logged once per level change (process/shedding.ts), not per call.
      this.deps.metrics?.skipped?.(endpoint, 'overload');
      this.deps.metrics?.decided?.('overload', seconds, endpoint);
      return { kind: 'continue', why: 'overload' };
    }
    if (verdict === null) {
      this.log.warn(
        `no answer from Zammad within ${waitMs} ms: going on without its decision (newCall stays in the outbox)`,
      );
      this.deps.metrics?.decided?.('timeout', seconds, endpoint);
      return { kind: 'continue', why: 'timeout' };
    }
    if (verdict.kind !== 'delivered') {
      this.deps.metrics?.decided?.('error', seconds, endpoint);
      return { kind: 'continue', why: 'error' };
    }
    const { decision, note } = decisionFromReply(verdict.body);
    if (note) this.log.warn(`${note}; going on`);
    this.deps.metrics?.decided?.(decision.kind, seconds, endpoint);
    return decision;
  }

  private lookupName(directoryId: string): Promise<string | undefined> {
    return this.userVar(directoryId, 'effective_caller_id_name');
  }

  /** A directory user's variable (`user_data`); undefined when unknown, unsafe or slow. */
  private async userVar(directoryId: string, name: string): Promise<string | undefined> {
    // Only a directory id we parsed ourselves goes into the command: no spaces, no newlines.
    if (!DIRECTORY_ID.test(directoryId)) return undefined;
    return this.apiText(`user_data ${directoryId} var ${name}`);
  }

  /**
   * Who is on the B-leg `leg`: its directory entry is the dial string's winner (`directoryId`), or
   * the leg's own `dialed_user`@`dialed_domain` (set by the user/ endpoint, for group rings and
   * mod_callcenter agents alike), or its `cc_agent` (routing/ obs. 9). A leg not dialled as
   * `user/` has none: the answer then names no user. A leg that called in (`phone`: a pickup, a
   * retrieve) is its phone's user: `user_name`@`domain_name` where it authenticated, else its
   * caller id in its own domain or in the domain the caller's dialplan dialled users of.
   */
  private async lookupAnswerer(leg: string, directoryId: string | undefined, phone?: string): Promise<Answerer> {
    let id = directoryId;
    if (id === undefined && isChannelId(leg)) {
      id = phone === undefined ? await this.dialledUser(leg) : await this.phoneUser(leg, phone);
      if (id !== undefined && !DIRECTORY_ID.test(id)) id = undefined;
    }
    if (id === undefined) return phone !== undefined && DIRECTORY_ID.test(phone) ? { number: phone } : {};
    const [name, userId] = await Promise.all([
      this.userVar(id, 'effective_caller_id_name'),
      this.userVar(id, 'zammad_user_id'),
    ]);
    return {
      ...(name !== undefined ? { name } : {}),
      // Zammad's user ids are numbers; anything else would be a misconfigured directory.
      ...(userId !== undefined && /^\d{1,12}$/.test(userId) ? { userId } : {}),
      number: id.split('@')[0] as string,
    };
  }

  private async dialledUser(leg: string): Promise<string | undefined> {
    const [user, domain] = await Promise.all([this.legVar(leg, 'dialed_user'), this.legVar(leg, 'dialed_domain')]);
    if (user && DIRECTORY_ID.test(user)) return domain ? `${user}@${domain}` : user;
    return this.legVar(leg, 'cc_agent');
  }

  private legVar(leg: string, name: string): Promise<string | undefined> {
    return this.apiText(`uuid_getvar ${leg} ${name}`);
  }

  /**
   * sofia sets `domain_name` of an unauthenticated leg to the SIP From host (seen: 127.0.0.1): it
   * names the directory domain only next to `user_name` (digest auth), else it comes last.
   */
  private async phoneUser(leg: string, phone: string): Promise<string | undefined> {
    const [user, domain] = await Promise.all([this.legVar(leg, 'user_name'), this.legVar(leg, 'domain_name')]);
    if (user && domain) return `${user}@${domain}`;
    const callId = this.state.facts.callId;
    const dialled = isChannelId(callId) ? await this.legVar(callId, 'dialed_domain') : undefined;
    const home = dialled ?? this.state.facts.domain ?? domain;
    return home ? `${phone}@${home}` : phone;
  }

  /** One `api` over the call's socket, bounded; the answer's text, or undefined for nothing usable. */
  private async apiText(line: string): Promise<string | undefined> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<undefined>(
        (resolve) => (timer = setTimeout(resolve, this.deps.lookupTimeoutMs ?? 1000, undefined)),
      );
      const text = await Promise.race([this.conn.api(line), timeout]);
      if (text === undefined) this.log.debug('no answer to a look-up in time', { command: line.split(' ')[0] });
      return text === undefined ? undefined : usableText(text);
    } catch (err) {
      this.log.debug('look-up failed', { command: line.split(' ')[0], error: String(err) });
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }
}
