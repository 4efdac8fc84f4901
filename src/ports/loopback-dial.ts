import { connect, type OnReadOpts, type Socket } from 'node:net';

/** Why a service on the sandbox's loopback could not be reached. */
export type DialFailure = 'refused' | 'unreachable' | 'timeout' | 'aborted';

export class DialError extends Error {
  constructor(
    readonly failure: DialFailure,
    message: string,
  ) {
    super(message);
    this.name = 'DialError';
  }
}

export interface DialOptions {
  /** Both attempts together, IPv4 then IPv6, must connect within this long. */
  timeoutMs: number;
  /** Gives up at once (the client that asked went away). */
  signal?: AbortSignal;
  /** Reads into the caller's buffers (net's `onread`) rather than a new buffer per read. */
  onread?: OnReadOpts;
}

/**
 * Connects to a port of this machine's loopback: 127.0.0.1 first, then ::1 when that is
 * refused (a service may listen on IPv6 alone). Only the loopback: the caller names a port,
 * never a host. The socket comes back connected and paused (nothing is read until the caller
 * resumes it), with an error listener already on it.
 */
export async function dialLoopback(
  port: number,
  { timeoutMs, signal, onread }: DialOptions,
): Promise<Socket> {
  const deadline = Date.now() + timeoutMs;
  const attempt = (host: string, ms: number) => connectTo(host, port, ms, signal, onread);
  try {
    return await attempt('127.0.0.1', timeoutMs);
  } catch (error) {
    if (!(error instanceof DialError) || error.failure !== 'refused') throw error;
    // ::1 that is absent (no IPv6) or refuses too: the first refusal is the answer.
    return await attempt('::1', Math.max(1, deadline - Date.now())).catch((second: unknown) => {
      const worse =
        second instanceof DialError && (second.failure === 'timeout' || second.failure === 'aborted');
      throw worse ? second : error;
    });
  }
}

function connectTo(
  host: string,
  port: number,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  onread: OnReadOpts | undefined,
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new DialError('aborted', 'the client went away'));
      return;
    }
    const socket = connect({ host, port, noDelay: true, onread });
    // Paused before it connects, so that it does not start reading on its own.
    socket.pause();
    const settle = (error?: DialError) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('connect', onConnect);
      socket.off('error', onError);
      if (error) {
        socket.destroy();
        reject(error);
      } else {
        resolve(socket);
      }
    };
    const onConnect = () => {
      // Errors from here on are the tunnel's to handle; until it takes over, none may crash us.
      socket.on('error', () => {});
      settle();
    };
    const onError = (error: NodeJS.ErrnoException) => {
      settle(
        error.code === 'ECONNREFUSED'
          ? new DialError('refused', `nothing listens on port ${port}`)
          : new DialError('unreachable', `cannot connect to port ${port}: ${error.code ?? error.message}`),
      );
    };
    const onAbort = () => settle(new DialError('aborted', 'the client went away'));
    const timer = setTimeout(
      () =>
        settle(new DialError('timeout', `port ${port} did not accept a connection within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.once('connect', onConnect);
    socket.once('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
