/** The part of modesl 1.x this project uses (the package ships no types). */
declare module 'modesl' {
  import type { EventEmitter } from 'node:events';

  export class Event {
    /** (type, subclass) or (headers, body) */
    constructor(typeOrHeaders: string | Record<string, unknown>, subclassOrBody?: string);
    type: string;
    body: string;
    headers: { name: string; value: string }[];
    getHeader(name: string): string | null;
    getBody(): string;
    serialize(format?: 'plain' | 'json' | 'xml'): string;
  }

  /** The socket-like object modesl reads from and writes to. */
  export interface SocketLike {
    on(event: 'data' | 'end' | 'error' | 'close', listener: (...args: unknown[]) => void): unknown;
    write(data: string): unknown;
    end(): unknown;
  }

  export class Connection extends EventEmitter {
    constructor(socket: SocketLike, onReady?: () => void);
    /** Inbound mode: connects to FreeSWITCH's event socket and authenticates. */
    constructor(host: string, port: number, password: string, onReady?: () => void);
    socket: SocketLike | null;
    /** Its Parser (set in the constructor): emits 'esl::event' (event, headers, body) to the connection. */
    parser: {
      emit(
        name: 'esl::event',
        event: Event,
        headers: Record<string, string | number>,
        body: string | undefined,
      ): boolean;
      _parseXmlBody(text: string): Record<string, unknown>;
    };
    channelData: Event | null;
    cmdCallbackQueue: unknown[];
    apiCallbackQueue: unknown[];
    getInfo(): Event | null;
    send(command: string, args?: Record<string, string>): void;
    sendRecv(command: string, args: Record<string, string> | null, cb: (reply: Event) => void): void;
    sendRecv(command: string, cb: (reply: Event) => void): void;
    /** Sent by modesl itself once `connect` is answered; esl::ready follows its reply. */
    subscribe(events: string[], cb?: () => void): void;
    api(command: string, cb: (reply: Event) => void): void;
    onAny(listener: (name: string | string[], ...args: unknown[]) => void): this;
    removeAllListeners(event?: string): this;
  }

  const esl: { Connection: typeof Connection; Event: typeof Event };
  export default esl;
}
