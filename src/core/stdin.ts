import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { SandboxError } from './errors.ts';

export interface StdinOptions {
  /** Bytes the queue may hold before a write waits for the process to read. */
  maxQueuedBytes: number;
  /** How long a write may wait for room before it fails. */
  writeTimeoutMs: number;
}

/**
 * A process's stdin pipe behind an ordered, bounded queue. A write resolves once its bytes
 * are accepted into the queue (the pipe's own buffer); writes are applied in call order, and
 * close delivers EOF after everything accepted before it.
 */
export class StdinWriter {
  private tail: Promise<void> = Promise.resolve();
  private closeRequested = false;
  private broken = false;

  constructor(
    private readonly pipe: Writable,
    private readonly options: StdinOptions,
  ) {
    // EPIPE and friends: the process closed its stdin or exited. Writes fail from now on.
    pipe.on('error', () => {
      this.broken = true;
    });
  }

  get writable(): boolean {
    return !this.closeRequested && !this.broken && !this.pipe.destroyed;
  }

  get closed(): boolean {
    return this.closeRequested;
  }

  write(data: Buffer): Promise<void> {
    this.assertWritable();
    const accepted = this.tail.then(() => this.accept(data));
    this.tail = accepted.catch(() => {});
    return accepted;
  }

  /** Idempotent. Resolves once EOF is queued behind the bytes accepted before it. */
  close(): Promise<void> {
    if (!this.closeRequested) {
      this.closeRequested = true;
      this.tail = this.tail.then(() => {
        if (!this.pipe.destroyed) this.pipe.end();
      });
    }
    return this.tail;
  }

  private async accept(data: Buffer): Promise<void> {
    const { maxQueuedBytes, writeTimeoutMs } = this.options;
    const deadline = Date.now() + writeTimeoutMs;
    while (this.pipe.writableNeedDrain && this.pipe.writableLength + data.length > maxQueuedBytes) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new SandboxError(
          'resource_exhausted',
          `stdin queue is full (${maxQueuedBytes} bytes) and the process has not read for ${writeTimeoutMs} ms`,
        );
      }
      const stopWaiting = new AbortController();
      const { signal } = stopWaiting;
      await Promise.race([
        once(this.pipe, 'drain', { signal }),
        once(this.pipe, 'close', { signal }),
        sleep(left, undefined, { signal }),
      ]).finally(() => stopWaiting.abort());
      this.assertWritable(true);
    }
    this.assertWritable(true);
    this.pipe.write(data);
  }

  private assertWritable(closeQueued = false): void {
    if (this.broken || this.pipe.destroyed || (this.closeRequested && !closeQueued)) {
      throw new SandboxError(
        'stdin_not_writable',
        'stdin is not writable: it was closed or the process exited',
      );
    }
  }
}
