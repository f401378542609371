/**
 * Logging: winston, JSON lines by default, colour lines on a terminal.
 * The Zammad token is a secret (the only one guarding the endpoint): it is replaced in every
 * line, whatever field it hides in, here and nowhere else.
 */
import winston from 'winston';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export type LogFields = Record<string, unknown>;

export interface Logger {
  error(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
  isDebug(): boolean;
}

export interface LogOptions {
  level: LogLevel;
  format: 'auto' | 'json' | 'pretty';
  /** Redacted from every line; the caller may append to it later. */
  secrets: readonly string[];
  stream?: NodeJS.WritableStream;
}

const REDACTED = '***';

/** `secrets` may grow while the logger lives (a tenant's token added on SIGHUP): append-only. */
function redactor(secrets: readonly string[]) {
  let needles: string[] = [];
  let known = -1;
  const scrub = (value: unknown, depth: number): unknown => {
    if (known !== secrets.length) {
      known = secrets.length;
      needles = secrets.filter((s) => s.length >= 4).flatMap((s) => [s, encodeURIComponent(s)]);
    }
    if (typeof value === 'string') {
      let out = value;
      for (const needle of needles) if (out.includes(needle)) out = out.split(needle).join(REDACTED);
      return out;
    }
    if (value instanceof Error) return scrub(`${value.name}: ${value.message}`, depth);
    if (value !== null && typeof value === 'object') {
      if (depth >= 4) {
        // Deeper than that it is written as text, scrubbed like any text (never as it is).
        try {
          return scrub(JSON.stringify(value), depth);
        } catch {
          return '[unserialisable]';
        }
      }
      if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[scrub(k, depth) as string] = scrub(v, depth + 1);
      return out;
    }
    return value;
  };
  return winston.format((info) => {
    for (const key of Object.keys(info)) {
      const value = scrub(info[key], 0);
      const name = scrub(key, 0) as string;
      if (name !== key) delete info[key];
      info[name] = value;
    }
    return info;
  })();
}

export function createLogger(options: LogOptions): Logger {
  const pretty =
    options.format === 'pretty' ||
    (options.format === 'auto' &&
      Boolean((options.stream ?? process.stdout) === process.stdout && process.stdout.isTTY));
  const format = pretty
    ? winston.format.combine(
        redactor(options.secrets),
        winston.format.colorize(),
        winston.format.timestamp({ format: 'HH:mm:ss.SSS' }),
        winston.format.printf(({ level, message, timestamp, ...rest }) => {
          const extra = Object.entries(rest)
            .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
            .join(' ');
          return `${String(timestamp)} ${level} ${String(message)}${extra ? ` ${extra}` : ''}`;
        }),
      )
    : winston.format.combine(redactor(options.secrets), winston.format.timestamp(), winston.format.json());
  const transport = options.stream
    ? new winston.transports.Stream({ stream: options.stream })
    : new winston.transports.Console();
  const root = winston.createLogger({ level: options.level, format, transports: [transport] });
  return wrap(root);
}

/**
 * winston formats every message (redaction, timestamp, JSON) before its transport drops those
 * below the level: the level is checked here first, so that a call's info lines cost nothing
 * at LOG_LEVEL=warn (bench/README.md). A child's fields are merged into a line only when it is
 * written: a child per call is one small object (methods on the prototype, a call may be held for
 * hours), not a winston logger.
 */
class Wrapped implements Logger {
  constructor(
    private readonly w: winston.Logger,
    private readonly base?: LogFields,
  ) {}
  private meta(f: LogFields | undefined): LogFields | undefined {
    const base = this.base;
    return base === undefined ? f : f === undefined ? base : { ...base, ...f };
  }
  error(m: string, f?: LogFields): void {
    this.w.error(m, this.meta(f));
  }
  warn(m: string, f?: LogFields): void {
    if (this.w.isWarnEnabled()) this.w.warn(m, this.meta(f));
  }
  info(m: string, f?: LogFields): void {
    if (this.w.isInfoEnabled()) this.w.info(m, this.meta(f));
  }
  debug(m: string, f?: LogFields): void {
    if (this.w.isDebugEnabled()) this.w.debug(m, this.meta(f));
  }
  child(fields: LogFields): Logger {
    return new Wrapped(this.w, this.meta(fields));
  }
  isDebug(): boolean {
    return this.w.isDebugEnabled();
  }
}

function wrap(w: winston.Logger): Logger {
  return new Wrapped(w);
}

/** A logger that drops everything: for unit tests and tools that print their own output. */
export const silentLogger: Logger = {
  error: () => {},
  warn: () => {},
  info: () => {},
  debug: () => {},
  child: () => silentLogger,
  isDebug: () => false,
};
