/**
 * Calls whose newCall was dropped: Zammad will never have them, so their later events would only
 * earn a 500 for ever. Bounded: the oldest are let go first.
 */
const LIMIT = 10_000;

export class Forgotten {
  private readonly calls = new Map<string, string>();

  /** Why the call's newCall was dropped, if it was. */
  reason(callId: string): string | undefined {
    return this.calls.get(callId);
  }

  add(callId: string, reason: string): void {
    this.calls.set(callId, reason);
    if (this.calls.size > LIMIT) this.calls.delete(this.calls.keys().next().value ?? '');
  }
}
