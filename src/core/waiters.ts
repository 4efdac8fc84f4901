/**
 * Readers waiting for something to change, woken all at once: a reader then looks again at
 * what it waits for. Each wait may end early by its own abort signal, and leaves nothing behind.
 */
export class Waiters {
  private readonly waiting = new Set<() => void>();

  /** Resolves at the next wake(), or when the signal aborts (at once if it has). */
  wait(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.waiting.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.waiting.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  wake(): void {
    for (const waiter of [...this.waiting]) waiter();
  }

  get size(): number {
    return this.waiting.size;
  }
}
