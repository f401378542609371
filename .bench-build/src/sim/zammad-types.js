/**
 * The Zammad double's public types: its settings and options, what it records of each request
 * (ReceivedPost), its caller log entries (CtiLogEntry, Zammad's Cti::Log), and the faults it can
 * be told to inject. Re-exported by zammad.ts.
 */
export {};
//# sourceMappingURL=zammad-types.js.map