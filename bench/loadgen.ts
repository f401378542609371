/**
 * Load generator: plays FreeSWITCH's side of many outbound event-socket calls at once.
 *
 * It connects to the listener exactly as FreeSWITCH's `socket` application does and answers the
 * app's commands with pre-encoded frames from a real capture (frames.ts), the call's uuid written
 * in. No parsing of its own output, no per-event serialisation: a call costs it a few buffer
 * copies and writes, so that it is never the bottleneck (its own CPU time is reported).
 *
 * One call (bridge mode; dialplan mode: dialplan-frames.ts, the call handed back by `transfer`):
 * connect → CHANNEL_DATA; event/myevents/linger → replies (+ CHANNEL_PARK);
 * sendmsg bridge → +OK, CHANNEL_EXECUTE, CHANNEL_ANSWER, CHANNEL_BRIDGE (picked up);
 * then (at once, or on release in hold mode) CHANNEL_UNBRIDGE, CHANNEL_EXECUTE_COMPLETE;
 * sendmsg hangup → +OK, CHANNEL_HANGUP … CHANNEL_HANGUP_COMPLETE, linger notice;
 * exit → +OK bye, disconnect notice, close.
 *
 * Runs as a child process driven over IPC (run.ts), or in-process through `Generator`.
 */
import net from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadTemplates, render, type CallTemplates, type Step } from './frames.js';
import { loadDialplanTemplates, type DialplanTemplates } from './dialplan-frames.js';
import type { Header } from '@freeswitch-zammad-cti/sim/esl-wire';

export interface Target {
  host: string;
  port: number;
}

export type Job =
  /**
   * Closed loop: `concurrency` calls in flight, each replaced when it ends, for warmupMs + durationMs.
   * `routing: 'dialplan'`: the app hands each call back (dialplan-frames.ts) instead of bridging it.
   */
  | {
      mode: 'cycle';
      target: Target;
      tag: string;
      concurrency: number;
      warmupMs: number;
      durationMs: number;
      callTimeoutMs: number;
      routing?: 'bridge' | 'dialplan';
    }
  /**
   * Open loop: `rate` new calls a second whatever happens to the earlier ones; `routing` as above.
   * `overloadBoundMs`: the overload phase — calls fall open as FreeSWITCH's gate would (see `Overload`).
   */
  | {
      mode: 'rate';
      target: Target;
      tag: string;
      rate: number;
      warmupMs: number;
      durationMs: number;
      callTimeoutMs: number;
      routing?: 'bridge' | 'dialplan';
      overloadBoundMs?: number;
    }
  /** `count` calls up to the answered state; they stay there until `release`. */
  | {
      mode: 'hold';
      target: Target;
      tag: string;
      count: number;
      openConcurrency: number;
      callTimeoutMs: number;
      openRate?: number;
    };

export interface JobResult {
  started: number;
  /** The app sent `connect`: it took the call. */
  connected: number;
  /** Ended cleanly (exit → bye → closed). */
  completed: number;
  /** Completed between the end of the warm-up and the end of the window. */
  completedInWindow: number;
  windowMs: number;
  failed: number;
  failures: Record<string, number>;
  eventsSent: number;
  bytesSent: number;
  apiCommands: number;
  /**
   * [uuid, ms from writing the connect reply to reading the bridge command (dialplan mode: the `transfer`)] for calls
   * started in the window.
   */
  setup: [string, number][];
  /**
   * Calls started in the window that failed before the routing command (no set-up figure: they waited callTimeoutMs or
   * more).
   */
  setupMissing: number;
  /** CPU time of this process during the job, ms. */
  cpuMs: number;
  /** Event-loop delay of this process during the job (p99, max), ms: high values would mean the generator lags. */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  overload?: Overload;
}

/**
 * The overload phase's account. A call falls open where FreeSWITCH's gate would route it itself:
 * its connect is refused (`socket` returns at once), it gets no first command within the bound
 * (counted at the bound), the app sheds it (a `transfer` without a subscription: the dialplan routes
 * it at once, unreported), or the app lets it go (`exit`, or the socket closed after the first
 * command) before its routing command. Times are from the call's start (the TCP connect), so the
 * adapter's accept backlog counts. Only calls started in the window.
 */
export interface Overload {
  boundMs: number;
  fellOpen: { refused: number; noFirstCommand: number; letGo: number; shed: number };
  /** ms from the call's start to the moment it fell open. */
  fellOpenMs: number[];
  /** [uuid, ms from the call's start to its routing command]. */
  routed: [string, number][];
  /** Routed calls of the window that then ended cleanly. */
  completedRouted: string[];
  /** Every call routed during the job (window or not): Zammad must have all their events. */
  routedAll: string[];
  /** Calls of the window that failed (no end in time, closed before the first command, routed past the bound). */
  failed: number;
  /** Of them: routed, but later than the bound. */
  routedLate: number;
}

type Mark = (what: 'window-start' | 'window-end' | 'held') => void;

enum Phase {
  Opening,
  Bridged,
  Held,
  Ending,
  Done,
}

/** A 36-character uuid from a tag (8 hex), a generator number and a counter. */
function uuidFor(tag: string, gen: number, n: number): string {
  return `${tag}-${gen.toString(16).padStart(4, '0')}-4000-8000-${n.toString(16).padStart(12, '0')}`;
}

class Call {
  private pending = '';
  private phase = Phase.Opening;
  private readonly uuidBuf: Buffer;
  private connectAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private boundTimer: NodeJS.Timeout | undefined;
  private commanded = false;
  /** `myevents` came: FreeSWITCH would send the call's events. */
  private subscribed = false;
  connected = false;
  setupMs = -1;
  /** Overload: routed, but later than the bound. */
  late = false;

  constructor(
    private readonly run: Run,
    readonly uuid: string,
    readonly startedAt: number,
    private readonly socket: net.Socket,
  ) {
    this.uuidBuf = Buffer.from(uuid, 'latin1');
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // A refused connect: FreeSWITCH's `socket` fails at once and the gate's routing runs.
      if (err.code === 'ECONNREFUSED' && this.run.overload) this.run.fellOpen(this, 'refused');
      else this.run.fail(this, err.code ?? err.message);
    });
    socket.on('close', () => this.onClose());
    this.arm();
    const bound = this.run.overload?.boundMs;
    if (bound !== undefined)
      this.boundTimer = setTimeout(() => {
        if (this.commanded) return;
        this.run.fellOpen(this, 'noFirstCommand');
        this.socket.destroy();
      }, bound);
  }

  /** A call that does not end in time is a failure (the app lost an event or stalled). */
  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.run.fail(this, `no end within ${this.run.job.callTimeoutMs} ms (phase ${this.phase})`);
      this.socket.destroy();
    }, this.run.job.callTimeoutMs);
  }

  private write(s: Step): void {
    this.run.eventsSent += s.events;
    this.run.bytesSent += s.bytes;
    this.socket.write(render(s, this.uuidBuf));
  }

  private onData(d: Buffer): void {
    this.pending += d.toString('latin1');
    for (;;) {
      // read_packet(): CR/LF before a packet are skipped; a packet ends at the first blank line.
      let start = 0;
      while (
        start < this.pending.length &&
        (this.pending.charCodeAt(start) === 10 || this.pending.charCodeAt(start) === 13)
      )
        start++;
      const end = this.pending.indexOf('\n\n', start);
      if (end < 0) {
        if (start > 0) this.pending = this.pending.slice(start);
        return;
      }
      const packet = this.pending.slice(start, end + 1);
      this.pending = this.pending.slice(end + 2);
      this.onCommand(packet);
    }
  }

  /** The app's `filter`s, as FreeSWITCH keeps them for this listener. */
  private readonly filters: Header[] = [];

  private onCommand(packet: string): void {
    this.commanded = true;
    clearTimeout(this.boundTimer);
    const t = this.run.templates;
    const dialplan = this.run.dialplan;
    const steps = dialplan ?? t;
    const nl = packet.indexOf('\n');
    const line = nl < 0 ? packet : packet.slice(0, nl);
    if (line === 'connect') {
      // A second `connect` (a call the adapter looked at to shed, then took): the channel data again.
      if (!this.connected) {
        this.connected = true;
        this.run.connected++;
        this.connectAt = performance.now();
      }
      this.write(steps.connect);
    } else if (line.startsWith('event ')) this.write(steps.eventReply);
    else if (line.startsWith('myevents')) {
      this.subscribed = true;
      this.write(steps.myeventsReply);
    } else if (line.startsWith('linger')) this.write(steps.lingerReply);
    else if (line.startsWith('filter ') && dialplan) {
      const [h = '', ...v] = line.slice(7).split(' ');
      this.filters.push([h, v.join(' ')]);
      this.write(dialplan.filterReply(line));
    } else if (line.startsWith('api ')) {
      this.run.apiCommands++;
      this.write(dialplan ? dialplan.api(line) : t.api);
    } else if (line.startsWith('sendmsg') && dialplan) {
      // Dialplan mode: after `transfer`, everything the routed call sends that passes the app's filters.
      if (packet.includes('\nexecute-app-name: transfer') && this.phase === Phase.Opening && !this.subscribed) {
        // Shed (overload): handed back without a subscription, so FreeSWITCH sends no event of the
        // call; the gate's routing runs now, unreported. Outside the overload phase it is a failure.
        this.phase = Phase.Ending;
        this.write(dialplan.ok);
        if (this.run.overload) this.run.fellOpen(this, 'shed');
        else this.run.fail(this, 'shed (handed back unreported)');
      } else if (packet.includes('\nexecute-app-name: transfer') && this.phase === Phase.Opening) {
        this.setupMs = performance.now() - this.connectAt;
        this.run.onSetup(this);
        this.phase = Phase.Ending;
        this.write(dialplan.routed(this.filters));
      } else this.write(dialplan.ok);
    } else if (line.startsWith('sendmsg')) {
      if (packet.includes('\ncall-command: hangup')) {
        this.phase = Phase.Ending;
        this.write(t.hungUp);
      } else if (packet.includes('\nexecute-app-name: bridge') && this.phase === Phase.Opening) {
        this.setupMs = performance.now() - this.connectAt;
        this.run.onSetup(this);
        this.write(t.bridged);
        if (this.run.job.mode === 'hold') {
          this.phase = Phase.Held;
          clearTimeout(this.timer); // held as long as the run says
          this.run.onHeld(this);
        } else {
          this.phase = Phase.Bridged;
          this.write(t.unbridged);
        }
      } else this.write(t.ok);
    } else if (line === 'exit') {
      this.phase = Phase.Done;
      this.write(steps.bye);
      this.socket.end();
    } else this.write(steps.unknown);
  }

  /** Hold mode: the far end hangs up now. */
  release(): void {
    if (this.phase !== Phase.Held || this.socket.destroyed) return;
    this.phase = Phase.Bridged;
    this.arm();
    this.write(this.run.templates.unbridged);
  }

  private onClose(): void {
    clearTimeout(this.timer);
    clearTimeout(this.boundTimer);
    // Overload: let go before the routing command (`exit`, or closed after a first command): the
    // socket application returns and the dialplan routes the call.
    if (this.run.overload && this.setupMs < 0 && this.commanded) this.run.fellOpen(this, 'letGo');
    else if (this.phase === Phase.Done) this.run.complete(this);
    else this.run.fail(this, `closed by the app in phase ${this.phase}`);
  }
}

class Run {
  started = 0;
  connected = 0;
  completed = 0;
  completedInWindow = 0;
  failed = 0;
  readonly failures: Record<string, number> = {};
  eventsSent = 0;
  bytesSent = 0;
  apiCommands = 0;
  readonly setup: [string, number][] = [];
  setupMissing = 0;
  readonly overload: Overload | undefined;
  private readonly open = new Set<Call>();
  private readonly failedCalls = new WeakSet<Call>();
  private readonly held: Call[] = [];
  private t0 = performance.now();
  private heldMarked = false;
  private windowStart = Infinity;
  private windowEnd = Infinity;
  private starting = true;
  private tick: NodeJS.Timeout | undefined;
  private resolveDone!: () => void;
  readonly done = new Promise<void>((r) => (this.resolveDone = r));
  private readonly cpu0 = process.cpuUsage();
  private readonly eld = monitorEventLoopDelay({ resolution: 1 });

  constructor(
    readonly job: Job,
    readonly templates: CallTemplates,
    readonly dialplan: DialplanTemplates | undefined,
    private readonly gen: number,
    private readonly mark: Mark,
    private counter: { n: number },
  ) {
    if (job.mode === 'rate' && job.overloadBoundMs !== undefined)
      this.overload = {
        boundMs: job.overloadBoundMs,
        fellOpen: { refused: 0, noFirstCommand: 0, letGo: 0, shed: 0 },
        fellOpenMs: [],
        routed: [],
        completedRouted: [],
        routedAll: [],
        failed: 0,
        routedLate: 0,
      };
  }

  private inWindow(call: Call): boolean {
    return call.startedAt >= this.windowStart && call.startedAt < this.windowEnd;
  }

  start(): void {
    this.eld.enable();
    this.t0 = performance.now();
    const j = this.job;
    if (j.mode === 'cycle' || j.mode === 'rate') {
      this.windowStart = this.t0 + j.warmupMs;
      this.windowEnd = this.windowStart + j.durationMs;
      setTimeout(() => this.mark('window-start'), j.warmupMs).unref();
      setTimeout(() => {
        this.mark('window-end');
        this.starting = false;
        clearInterval(this.tick);
        this.maybeDone();
      }, j.warmupMs + j.durationMs).unref();
    }
    if (j.mode === 'cycle') {
      for (let i = 0; i < j.concurrency; i++) this.startCall();
    } else if (j.mode === 'rate') {
      this.tick = setInterval(() => {
        const due = Math.floor(((performance.now() - this.t0) * j.rate) / 1000);
        while (this.starting && this.started < due) this.startCall();
      }, 1);
    } else if (j.openRate) {
      // New calls at a steady rate (at most openConcurrency still opening), as calls arrive on a switch.
      this.tick = setInterval(() => {
        const due = Math.min(j.count, Math.floor(((performance.now() - this.t0) * (j.openRate ?? 0)) / 1000));
        while (this.started < due && this.opening() < j.openConcurrency) this.startCall();
        if (this.started >= j.count) clearInterval(this.tick);
      }, 1);
    } else {
      for (let i = 0; i < Math.min(j.openConcurrency, j.count); i++) this.startCall();
    }
  }

  private startCall(): void {
    const j = this.job;
    if (j.mode === 'hold' && this.started >= j.count) return;
    this.started++;
    const uuid = uuidFor(j.tag, this.gen, ++this.counter.n);
    const socket = net.connect({ host: j.target.host, port: j.target.port });
    const call = new Call(this, uuid, performance.now(), socket);
    this.open.add(call);
  }

  onSetup(call: Call): void {
    if (this.inWindow(call)) this.setup.push([call.uuid, call.setupMs]);
    const o = this.overload;
    if (!o) return;
    o.routedAll.push(call.uuid);
    if (!this.inWindow(call)) return;
    const ms = performance.now() - call.startedAt;
    o.routed.push([call.uuid, ms]);
    if (ms > o.boundMs) {
      call.late = true;
      o.routedLate++;
      o.failed++;
    }
  }

  /** Overload: the call fell open (`Overload`); it is over for the generator. */
  fellOpen(call: Call, why: keyof Overload['fellOpen']): void {
    const o = this.overload;
    if (!o || this.failedCalls.has(call)) return;
    this.failedCalls.add(call);
    this.open.delete(call);
    if (this.inWindow(call)) {
      o.fellOpen[why]++;
      o.fellOpenMs.push(performance.now() - call.startedAt);
    }
    this.next();
  }

  /** Calls started and not yet held (hold mode). */
  private opening(): number {
    return this.open.size - this.held.length;
  }

  onHeld(call: Call): void {
    this.held.push(call);
    const j = this.job;
    if (j.mode !== 'hold') return;
    if (!j.openRate) this.startCall(); // keep openConcurrency handshakes going
    this.checkHeld();
  }

  private checkHeld(): void {
    if (this.job.mode !== 'hold' || this.heldMarked || this.held.length + this.failed < this.job.count) return;
    this.heldMarked = true;
    this.mark('held');
  }

  release(): void {
    this.starting = false;
    for (const c of this.held.splice(0)) c.release();
    this.maybeDone();
  }

  complete(call: Call): void {
    if (this.failedCalls.has(call)) return;
    this.open.delete(call);
    this.completed++;
    if (this.overload && call.setupMs >= 0 && this.inWindow(call)) this.overload.completedRouted.push(call.uuid);
    const now = performance.now();
    if (now >= this.windowStart && now < this.windowEnd) this.completedInWindow++;
    this.next();
  }

  fail(call: Call, reason: string): void {
    if (this.failedCalls.has(call)) return;
    this.failedCalls.add(call);
    this.open.delete(call);
    this.failed++;
    if (call.setupMs < 0 && this.inWindow(call)) this.setupMissing++;
    // A routed call past the bound is already counted as failed by the overload account.
    if (this.overload && this.inWindow(call) && !call.late) this.overload.failed++;
    const key = reason.replace(/\d+/g, 'N');
    this.failures[key] = (this.failures[key] ?? 0) + 1;
    if (this.job.mode === 'hold') {
      if (!this.job.openRate) this.startCall();
      this.checkHeld();
    }
    this.next();
  }

  private next(): void {
    if (this.job.mode === 'cycle' && this.starting) this.startCall();
    this.maybeDone();
  }

  private maybeDone(): void {
    if (this.open.size > 0) return;
    if (this.job.mode !== 'hold' && this.starting) return;
    if (this.job.mode === 'hold' && (this.starting || this.held.length > 0)) return;
    clearInterval(this.tick);
    this.resolveDone();
  }

  result(): JobResult {
    this.eld.disable();
    const cpu = process.cpuUsage(this.cpu0);
    const j = this.job;
    return {
      started: this.started,
      connected: this.connected,
      completed: this.completed,
      completedInWindow: this.completedInWindow,
      windowMs: j.mode === 'hold' ? 0 : j.durationMs,
      failed: this.failed,
      failures: this.failures,
      eventsSent: this.eventsSent,
      bytesSent: this.bytesSent,
      apiCommands: this.apiCommands,
      setup: this.setup,
      setupMissing: this.setupMissing,
      cpuMs: (cpu.user + cpu.system) / 1000,
      loopDelayP99Ms: this.eld.percentile(99) / 1e6,
      loopDelayMaxMs: this.eld.max / 1e6,
      ...(this.overload ? { overload: this.overload } : {}),
    };
  }
}

/** One generator: runs one job at a time. */
export class Generator {
  private readonly counter = { n: 0 };
  private current: Run | undefined;
  private dialplan: DialplanTemplates | undefined;

  constructor(
    private readonly templates: CallTemplates,
    private readonly gen = 0,
  ) {}

  async run(job: Job, mark: Mark = () => {}): Promise<JobResult> {
    if (this.current) throw new Error('a job is already running');
    const dialplan = job.mode !== 'hold' && job.routing === 'dialplan';
    if (dialplan) this.dialplan ??= loadDialplanTemplates();
    const run = new Run(job, this.templates, dialplan ? this.dialplan : undefined, this.gen, mark, this.counter);
    this.current = run;
    run.start();
    await run.done;
    this.current = undefined;
    return run.result();
  }

  release(): void {
    this.current?.release();
  }
}

// ---------------------------------------------------------------------------------------------
// Child process mode: `node --import tsx bench/loadgen.ts <generator number>`, driven over IPC.

export type ToGenerator = { type: 'run'; id: number; job: Job } | { type: 'release' } | { type: 'exit' };
export type FromGenerator =
  | { type: 'ready' }
  | { type: 'mark'; id: number; what: 'window-start' | 'window-end' | 'held' }
  | { type: 'result'; id: number; result: JobResult }
  | { type: 'error'; id: number; error: string };

if (process.send && process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '\0')) {
  const send = (m: FromGenerator) => process.send?.(m);
  const generator = new Generator(
    loadTemplates(process.env['BENCH_TRANSCRIPT'] || undefined),
    Number(process.argv[2] ?? 0),
  );
  process.on('message', (m: ToGenerator) => {
    if (m.type === 'exit') process.exit(0);
    if (m.type === 'release') generator.release();
    if (m.type === 'run') {
      generator
        .run(m.job, (what) => send({ type: 'mark', id: m.id, what }))
        .then(
          (result) => send({ type: 'result', id: m.id, result }),
          (err: unknown) => send({ type: 'error', id: m.id, error: String(err) }),
        );
    }
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready' });
}
