import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Where a port first accepted a connection, and after how long. */
export interface PortReady {
  address: '127.0.0.1' | '::1';
  waitedMs: number;
}

export interface WaitOptions {
  timeoutMs: number;
  /** Ends the wait early (the client went away); the promise then rejects with its reason. */
  signal?: AbortSignal;
  /** Between two rounds of attempts, for the first SLOW_AFTER_MS; SLOW_WAIT_INTERVAL_MS after. */
  intervalMs?: number;
}

// Linux tells nobody when a socket starts to listen (inotify does not see /proc, and netlink's
// socket diagnostics answer queries but send no events), so a wait has to try. A round of two
// refused tries (127.0.0.1, ::1) costs about 0.2 ms of CPU: every 50 ms (0.4% of a core
// for one wait) while a port that opens soon is likely, then every 250 ms.
export const WAIT_INTERVAL_MS = 50;
export const SLOW_WAIT_INTERVAL_MS = 250;
export const SLOW_AFTER_MS = 5000;
// A listener whose backlog is full drops the handshake instead of refusing it; the next round
// tries again rather than waiting on the kernel's retransmissions.
const ATTEMPT_MS = 1000;
const LOOPBACKS = ['127.0.0.1', '::1'] as const;

/**
 * Resolves once the port accepts a TCP connection on 127.0.0.1 or ::1 (the connection is closed
 * at once), or undefined when `timeoutMs` passes first; a timeout of 0 tries once.
 */
export async function waitForPort(port: number, options: WaitOptions): Promise<PortReady | undefined> {
  const { timeoutMs, signal, intervalMs = WAIT_INTERVAL_MS } = options;
  const started = performance.now();
  const remaining = () => timeoutMs - (performance.now() - started);
  for (;;) {
    for (const address of LOOPBACKS) {
      signal?.throwIfAborted();
      const limit = Math.min(ATTEMPT_MS, Math.max(remaining(), intervalMs));
      if (await accepts(port, address, limit, signal)) {
        return { address, waitedMs: Math.round(performance.now() - started) };
      }
    }
    const left = remaining();
    if (left <= 0) return undefined;
    const interval = performance.now() - started < SLOW_AFTER_MS ? intervalMs : SLOW_WAIT_INTERVAL_MS;
    // The abort's own reason, as throwIfAborted gives, rather than the timer's AbortError.
    await sleep(Math.min(interval, left), undefined, { signal }).catch((error: unknown) => {
      throw signal?.aborted ? signal.reason : error;
    });
  }
}

/** One attempt: true when the connection was made within `limitMs`. */
function accepts(port: number, host: string, limitMs: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    const finish = (connected: boolean) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.removeAllListeners();
      // A listener that writes first may leave bytes unread: closing then resets, which is harmless.
      socket.on('error', () => {});
      socket.destroy();
      resolve(connected);
    };
    const onAbort = () => finish(false);
    const timer = setTimeout(onAbort, limitMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => finish(true));
    // Refused, or no such address here (a machine without IPv6 has no ::1).
    socket.once('error', () => finish(false));
  });
}
