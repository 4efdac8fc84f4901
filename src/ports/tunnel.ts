import type { Socket } from 'node:net';
import type WebSocket from 'ws';
import type { ReadPool } from './read-pool.ts';

export interface TunnelLimits {
  /**
   * Bytes from the service that may wait to go out on the WebSocket; past it the service is
   * not read until they have gone. Bytes the other way wait in the service socket's own
   * write buffer, and past its high-water mark the WebSocket is not read.
   */
  maxQueuedBytes: number;
  /** After the WebSocket has closed, how long the service has to close its side before it is cut. */
  lingerMs: number;
}

/** Close codes the tunnel sends (RFC 6455, 7.4.1). */
const NORMAL = 1000;
const GOING_AWAY = 1001;
const PROTOCOL_ERROR = 1002;
const INTERNAL_ERROR = 1011;

/**
 * One TCP connection to a service carried over one WebSocket: binary frames verbatim both
 * ways, with backpressure both ways, so that a reader who stops reading on either side stops
 * the other side too and the tunnel holds no more than its limits, whatever the rate. There is
 * no half-close: the service's EOF closes the WebSocket (after the bytes read before it), and
 * the WebSocket's close ends the service connection.
 */
export class Tunnel {
  /** Resolves once both the WebSocket and the service connection are closed. */
  readonly closed: Promise<void>;
  private readingService = true;

  /**
   * `pool`: the service socket reads into it (it was connected with the pool's `onread`),
   * which then bounds what waits for the client instead of `limits.maxQueuedBytes`.
   */
  constructor(
    private readonly service: Socket,
    private readonly socket: WebSocket,
    private readonly limits: TunnelLimits,
    pool?: ReadPool,
  ) {
    // A peer that vanishes without a word (a pulled cable, a killed VM) is found by the kernel;
    // pings would also drop a client that merely stopped reading, which is its right.
    service.setKeepAlive(true, 30_000);
    service.on('error', () => {}); // 'close' follows, which is where the tunnel reacts.
    socket.on('error', () => {});
    const serviceClosed = new Promise<void>((resolve) => service.once('close', () => resolve()));
    const socketClosed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    this.closed = Promise.all([serviceClosed, socketClosed]).then(() => undefined);

    if (pool)
      pool.consume(
        (bytes, release) => this.fromPool(bytes, release),
        () => service.resume(),
      );
    else service.on('data', (chunk: Buffer) => this.fromService(chunk));
    service.on('drain', () => socket.resume());
    service.once('end', () => this.closeSocket(NORMAL, ''));
    service.once('close', (hadError) => {
      // The client's frames still on their way are read and dropped, so that its close is read too.
      socket.resume();
      if (hadError) this.closeSocket(INTERNAL_ERROR, 'the connection to the service failed');
      else this.closeSocket(NORMAL, '');
    });
    socket.on('message', (data: Buffer, isBinary: boolean) => this.fromClient(data, isBinary));
    socket.once('close', () => this.endService());
    // Sockets handed over paused (so that nothing went by unheard) start flowing now.
    socket.resume();
    service.resume();
  }

  /** Closes both sides at once (the daemon is stopping); the WebSocket is cut after graceMs. */
  async shutdown(graceMs: number): Promise<void> {
    this.service.destroy();
    this.closeSocket(GOING_AWAY, 'the daemon is shutting down');
    const timer = setTimeout(() => this.socket.terminate(), graceMs);
    await this.closed;
    clearTimeout(timer);
  }

  private fromService(chunk: Buffer): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    this.socket.send(chunk, { binary: true, compress: false }, () => this.maybeReadService());
    if (this.socket.bufferedAmount >= this.limits.maxQueuedBytes) {
      this.readingService = false;
      this.service.pause();
    }
  }

  /** Bytes read into the pool: its buffer comes back once the frame has gone out. */
  private fromPool(bytes: Buffer, release: () => void): void {
    if (this.socket.readyState !== this.socket.OPEN) {
      release();
      return;
    }
    this.socket.send(bytes, { binary: true, compress: false }, release);
  }

  /** After each frame has gone out: read the service again once half the queue has drained. */
  private maybeReadService(): void {
    if (this.readingService || this.socket.bufferedAmount > this.limits.maxQueuedBytes / 2) return;
    this.readingService = true;
    this.service.resume();
  }

  private fromClient(data: Buffer, isBinary: boolean): void {
    if (!isBinary) {
      this.service.destroy();
      this.closeSocket(PROTOCOL_ERROR, 'a tunnel carries binary frames only');
      return;
    }
    if (!this.service.writable) return;
    if (!this.service.write(data)) this.socket.pause();
  }

  private closeSocket(code: number, reason: string): void {
    const state = this.socket.readyState;
    if (state === this.socket.OPEN || state === this.socket.CONNECTING) this.socket.close(code, reason);
  }

  /**
   * The client is gone: the service gets its EOF after what was already written to it, and
   * whatever it still sends is dropped. A service that keeps its side open is cut after the
   * linger time.
   */
  private endService(): void {
    const { service } = this;
    if (service.destroyed) return;
    service.end();
    service.resume();
    const timer = setTimeout(() => service.destroy(), this.limits.lingerMs);
    timer.unref();
    service.once('close', () => clearTimeout(timer));
  }
}
