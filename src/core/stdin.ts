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
  /** Bytes of writes that are not yet in the pipe's buffer. */
  private waitingBytes = 0;
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
    const { maxQueuedBytes, writeTimeoutMs } = this.options;
    // Writes waiting their turn hold their bytes in memory: beyond another queue's worth, a
    // writer is told at once to come back later.
    if (this.waitingBytes > 0 && this.waitingBytes + data.length > maxQueuedBytes) {
      return Promise.reject(
        new SandboxError('stdin_queue_full', `stdin: more than ${maxQueuedBytes} bytes are already waiting`),
      );
    }
    this.waitingBytes += data.length;
    const deadline = Date.now() + writeTimeoutMs;
    const accepted = this.tail
      .then(() => this.accept(data, deadline))
      .finally(() => {
        this.waitingBytes -= data.length;
      });
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

  /** Hands the bytes to the pipe once its buffer has room, waiting until the deadline at most. */
  private async accept(data: Buffer, deadline: number): Promise<void> {
    const { maxQueuedBytes, writeTimeoutMs } = this.options;
    while (this.pipe.writableNeedDrain && this.pipe.writableLength + data.length > maxQueuedBytes) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new SandboxError(
          'stdin_queue_full',
          `stdin queue is full (${maxQueuedBytes} bytes) and the process has not read for ${writeTimeoutMs} ms`,
        );
      }
      const stopWaiting = new AbortController();
      const { signal } = stopWaiting;
      await Promise.race([
        once(this.pipe, 'drain', { signal }),
        once(this.pipe, 'close', { signal }),
        sleep(left, undefined, { signal }),
      ])
        // An 'error' (EPIPE: the process is gone) ends the wait too; assertWritable tells.
        .catch(() => {})
        .finally(() => stopWaiting.abort());
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
