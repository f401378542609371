/** Waiters for the moment nothing is pending any more: a stop's drain waits on it, bounded. */
export class Idle {
  private readonly waiters = new Set<() => void>();

  /** Resolves true once notify() is called, false if that takes longer than timeoutMs. */
  wait(timeoutMs: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(done);
        resolve(false);
      }, timeoutMs);
      this.waiters.add(done);
    });
  }

  /** Nothing is pending: every waiter resolves. */
  notify(): void {
    for (const done of [...this.waiters]) done();
  }
}
