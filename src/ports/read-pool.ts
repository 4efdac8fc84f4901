import type { OnReadOpts } from 'node:net';

/** Takes bytes read into a pooled buffer; calls `release` once it no longer needs them. */
export type PooledConsumer = (bytes: Buffer, release: () => void) => void;

/**
 * A socket's reads, into a few fixed buffers instead of a new one per read (`net`'s `onread`).
 * A relay reads and forgets gigabytes: a fresh 64 KiB buffer per read kept the daemon's
 * garbage collector busy for a third of its time, where a small process barely noticed.
 * The pool is also the bound: with every buffer but one waiting for its consumer, reading
 * stops until one comes back.
 */
export class ReadPool {
  private readonly free: Buffer[] = [];
  /** Buffers not made yet: they are made as the reads need them, so an idle tunnel holds one. */
  private unmade: number;
  /** The buffer the socket reads into next; unset while it is being handed over. */
  private landing: Buffer | undefined;
  private consumer: PooledConsumer | undefined;
  private stopped = false;
  private resumeReading: () => void = () => {};

  constructor(
    buffers: number,
    private readonly bufferBytes: number,
  ) {
    if (buffers < 2) throw new Error('a read pool needs two buffers at least');
    this.unmade = buffers;
  }

  private take(): Buffer {
    const buffer = this.free.pop();
    if (buffer) return buffer;
    this.unmade--;
    return Buffer.allocUnsafeSlow(this.bufferBytes);
  }

  private get available(): number {
    return this.free.length + this.unmade;
  }

  /** For `net.connect({onread})`; the socket must be paused until consume() is called. */
  readonly onread: OnReadOpts = {
    buffer: () => {
      // A socket that failed to connect leaves its landing buffer unused: the next one takes it.
      this.landing ??= this.take();
      return this.landing;
    },
    callback: (bytesRead, buffer) => {
      this.landing = undefined;
      const bytes = (buffer as Buffer).subarray(0, bytesRead);
      let released = false;
      (this.consumer as PooledConsumer)(bytes, () => {
        if (released) return;
        released = true;
        this.free.push(buffer as Buffer);
        if (this.stopped) {
          this.stopped = false;
          this.resumeReading();
        }
      });
      // The next landing buffer is taken right after this returns: keep one for it.
      if (this.available > 1) return true;
      this.stopped = true;
      return false;
    },
  };

  /** Where the bytes go, and how reading restarts once a buffer has come back. */
  consume(consumer: PooledConsumer, resumeReading: () => void): void {
    this.consumer = consumer;
    this.resumeReading = resumeReading;
  }
}
