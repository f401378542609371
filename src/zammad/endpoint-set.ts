/**
 * The Zammads this adapter reports to, one per tenant (endpoints-file.ts) plus ZAMMAD_CTI_URL's.
 * Each endpoint has its own connection pool (client.ts) and its own Outbox — lanes, retry and
 * backoff, configuration fault, readiness — so one Zammad refusing, timing out or answering 401
 * never delays another's events. They share the disk (store.ts), each event stored with its
 * endpoint's name: it goes to that Zammad or to none.
 *
 * An endpoint that leaves the configuration (SIGHUP with a new file) keeps its events, counted
 * and logged, sending nothing, until its name comes back or OUTBOX_MAX_AGE_HOURS drops them.
 */
import type { CtiPost } from '../call/flow.js';
import type { Logger } from '../process/log.js';
import { ZammadClient } from './client.js';
import type { Endpoint } from './endpoints-file.js';
import { safeUrl, tokenOf } from './endpoint-url.js';
import { Outbox, type OutboxOptions, type Poster } from './outbox.js';
import {
  chooseEndpoint,
  choiceTable,
  type EndpointChoice,
  type ChoiceHints,
  type ChoiceTable,
} from './endpoint-choice.js';
import type { OutboxStore } from './store.js';
import type { Early } from './lane.js';
import type { Verdict } from './verdict.js';

export interface EndpointSetOptions {
  /** Per endpoint: its outbox's concurrency is its pool's size. */
  outbox: OutboxOptions;
  maxReplyBytes: number;
}

export interface EndpointHooks {
  posted?(endpoint: string, event: string, result: string, seconds: number): void;
  dropped?(endpoint: string, reason: string, events: number): void;
  held?(endpoint: string, events: number): void;
  /** A ringing caller went on without waiting for this endpoint's decision (reason: 'unreachable'). */
  skipped?(endpoint: string, reason: string): void;
  unrouted?(why: 'unknown-endpoint' | 'no-match'): void;
}

export interface EndpointStatus {
  name: string;
  /** In the configuration now. */
  configured: boolean;
  /** The URL with its token hidden. */
  url?: string;
  ok: boolean;
  /** Zammad refuses every event of this endpoint (wrong token, integration off). */
  configFault: boolean;
  detail: string;
  events: number;
  oldestAgeMs: number;
}

interface Member {
  outbox: Outbox;
  client?: ZammadClient;
  url?: string;
}

/** One line per domain (or unknown name) and hour, not one per call. */
const UNROUTED_LOG_EVERY_MS = 3_600_000;
const UNROUTED_LOG_KEYS = 10_000;

const notConfigured = (name: string) =>
  `endpoint "${name}" is not in the configuration (ZAMMAD_ENDPOINTS_FILE / ZAMMAD_CTI_URL)`;

/** Never asked: an outbox is given it only while suspended. */
const NOWHERE: Poster = {
  post: () =>
    Promise.resolve({ kind: 'failure', code: 'NOT_CONFIGURED', error: 'endpoint not configured', sent: false }),
};

export class EndpointSet {
  private readonly members = new Map<string, Member>();
  private table: ChoiceTable = choiceTable([]);
  private readonly unroutedLogged = new Map<string, number>();

  constructor(
    private readonly store: OutboxStore,
    private readonly options: EndpointSetOptions,
    private readonly log: Logger,
    private readonly hooks: EndpointHooks = {},
    /** Append-only list the logger redacts (log.ts): every token configured is added. */
    private readonly secrets: string[] = [],
    private readonly now: () => number = Date.now,
  ) {}

  /** The first configuration, then what an earlier run left on disk — also for endpoints no longer configured. */
  start(endpoints: readonly Endpoint[]): number {
    this.apply(endpoints);
    for (const name of this.store.endpoints()) this.member(name);
    let restored = 0;
    for (const member of this.members.values()) restored += member.outbox.restore();
    return restored;
  }

  /**
   * A new configuration (SIGHUP): new endpoints start, changed URLs apply to the next request, removed ones hold
   * their events.
   */
  reload(endpoints: readonly Endpoint[]): { added: string[]; changed: string[]; removed: string[] } {
    return this.apply(endpoints);
  }

  /**
   * Where a call's events go; decided once per call. A call that has nowhere to go is logged (throttled) and
   * counted.
   */
  choose(hints: ChoiceHints): EndpointChoice {
    const choice = chooseEndpoint(this.table, hints);
    if (choice.kind === 'none') this.noteUnrouted(choice);
    return choice;
  }

  send(endpoint: string, post: CtiPost, early?: Early): Promise<Verdict> {
    return this.member(endpoint).outbox.send(post, early);
  }

  get depth(): number {
    let n = 0;
    for (const m of this.members.values()) n += m.outbox.depth;
    return n;
  }

  status(): EndpointStatus[] {
    return [...this.members].map(([name, m]) => {
      const events = m.outbox.depth;
      const fault = m.client ? m.outbox.configFault : undefined;
      const base = {
        name,
        configured: m.client !== undefined,
        ...(m.url !== undefined ? { url: safeUrl(m.url) } : {}),
        events,
        oldestAgeMs: m.outbox.oldestAgeMs(),
        configFault: fault !== undefined,
      };
      if (!m.client)
        return {
          ...base,
          ok: true,
          detail: `not configured: ${events} events kept until it is again or OUTBOX_MAX_AGE_HOURS drops them`,
        };
      if (fault) return { ...base, ok: false, detail: fault };
      const unreachable = m.outbox.unreachable;
      const down = `Zammad is unreachable (${unreachable}): calls go on without its decision`;
      if (unreachable !== undefined) return { ...base, ok: false, detail: down };
      const reachable = m.outbox.zammadReachable;
      if (reachable === false) return { ...base, ok: false, detail: 'Zammad did not answer the last request' };
      return { ...base, ok: true, detail: reachable === undefined ? 'no request yet' : 'answered' };
    });
  }

  /** Resolves true once no configured endpoint has events waiting, false after timeoutMs. Held events stay on disk. */
  async drain(timeoutMs: number): Promise<boolean> {
    const results = await Promise.all(
      [...this.members.values()].filter((m) => m.client).map((m) => m.outbox.drain(timeoutMs)),
    );
    return results.every(Boolean);
  }

  close(): void {
    for (const m of this.members.values()) m.outbox.close();
  }

  async destroy(): Promise<void> {
    this.close();
    await Promise.allSettled([...this.members.values()].map((m) => m.client?.destroy()));
  }

  private apply(endpoints: readonly Endpoint[]): { added: string[]; changed: string[]; removed: string[] } {
    const added: string[] = [];
    const changed: string[] = [];
    const removed: string[] = [];
    const wanted = new Map(endpoints.map((e) => [e.name, e]));
    for (const e of endpoints) {
      const token = tokenOf(e.url);
      if (!this.secrets.includes(token)) this.secrets.push(token);
      const m = this.members.get(e.name);
      if (m?.url === e.url) continue;
      const client = new ZammadClient({
        url: e.url,
        maxConnections: this.options.outbox.concurrency,
        maxReplyBytes: this.options.maxReplyBytes,
      });
      if (!m) {
        this.members.set(e.name, { outbox: this.outbox(e.name, client), client, url: e.url });
        added.push(e.name);
        continue;
      }
      const old = m.client;
      if (old) m.outbox.usePoster(client);
      else m.outbox.resume(client);
      m.client = client;
      m.url = e.url;
      (old ? changed : added).push(e.name);
      // Requests in flight finish on the old pool; then it closes.
      void old?.close().catch(() => {});
    }
    for (const [name, m] of this.members) {
      if (wanted.has(name) || !m.client) continue;
      m.outbox.suspend(notConfigured(name));
      void m.client.close().catch(() => {});
      delete m.client;
      delete m.url;
      removed.push(name);
    }
    this.table = choiceTable(endpoints);
    return { added, changed, removed };
  }

  /** The endpoint's member; one not configured gets a held outbox, so its events are kept, never sent elsewhere. */
  private member(name: string): Member {
    let m = this.members.get(name);
    if (!m) {
      m = { outbox: this.outbox(name, NOWHERE) };
      m.outbox.suspend(notConfigured(name));
      this.members.set(name, m);
    }
    return m;
  }

  private outbox(name: string, poster: Poster): Outbox {
    return new Outbox(
      this.store.scoped(name),
      poster,
      this.options.outbox,
      this.log.child({ endpoint: name }),
      {
        posted: (event, result, seconds) => this.hooks.posted?.(name, event, result, seconds),
        dropped: (reason, events) => this.hooks.dropped?.(name, reason, events),
        held: (events) => this.hooks.held?.(name, events),
        skipped: (reason) => this.hooks.skipped?.(name, reason),
      },
      this.now,
    );
  }

  /** A call that goes to no Zammad: counted, and logged once per domain (or unknown name) and hour. */
  private noteUnrouted(choice: Extract<EndpointChoice, { kind: 'none' }>): void {
    this.hooks.unrouted?.(choice.why);
    const detail = choice.detail.slice(0, 100);
    const key = `${choice.why}\0${detail}`;
    const last = this.unroutedLogged.get(key);
    const now = this.now();
    if (last !== undefined && now - last < UNROUTED_LOG_EVERY_MS) return;
    if (this.unroutedLogged.size >= UNROUTED_LOG_KEYS) this.unroutedLogged.clear();
    this.unroutedLogged.set(key, now);
    if (choice.why === 'unknown-endpoint') {
      this.log.error(
        `zammad_endpoint "${detail}" names no endpoint of ZAMMAD_ENDPOINTS_FILE: ` +
          'calls with it are not reported to Zammad (logged once an hour)',
        { endpoint: detail },
      );
    } else {
      this.log.warn(
        `no Zammad endpoint for ${detail ? `domain "${detail}"` : 'calls without domain_name'}: ` +
          'not reported to Zammad (add the domain to an endpoint in ZAMMAD_ENDPOINTS_FILE or set ZAMMAD_CTI_URL; ' +
          'logged once an hour)',
        { domain: detail },
      );
    }
  }
}
