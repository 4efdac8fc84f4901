import { Code, ConnectError, type HandlerContext } from '@connectrpc/connect';

const DEFAULT_KEEPALIVE_SECONDS = 90;
// Longer intervals are taken as this: a timer cannot hold much more than 24 days, and a
// keepalive an hour apart keeps no connection alive anyway.
const MAX_KEEPALIVE_SECONDS = 3600;

/** The idle time after which a stream sends a keepalive, from `Keepalive-Ping-Interval`. */
export function keepaliveMs(context: HandlerContext): number {
  const seconds = Number(context.requestHeader.get('keepalive-ping-interval'));
  const chosen = Number.isFinite(seconds) && seconds > 0 ? seconds : DEFAULT_KEEPALIVE_SECONDS;
  return Math.min(chosen, MAX_KEEPALIVE_SECONDS) * 1000;
}

export const KEEPALIVE = Symbol('keepalive');

/**
 * What an iterator yields, with KEEPALIVE after every `idleMs` of silence. One timer serves
 * the whole stream, pushed back as items come, rather than a timer and a promise per item.
 */
export async function* withKeepalives<T>(
  iterator: AsyncIterator<T>,
  idleMs: number,
): AsyncGenerator<T | typeof KEEPALIVE> {
  let silent: () => void = () => {};
  let silence = new Promise<typeof KEEPALIVE>((resolve) => {
    silent = () => resolve(KEEPALIVE);
  });
  const timer = setTimeout(() => silent(), idleMs);
  try {
    for (;;) {
      const next = iterator.next();
      let result = await Promise.race([next, silence]);
      while (result === KEEPALIVE) {
        yield KEEPALIVE;
        silence = new Promise((resolve) => {
          silent = () => resolve(KEEPALIVE);
        });
        timer.refresh();
        result = await Promise.race([next, silence]);
      }
      if (result.done) return;
      timer.refresh();
      yield result.value;
    }
  } finally {
    clearTimeout(timer);
  }
}

/** A stream that ends because its deadline passed says so, rather than end as if all was said. */
export function throwIfDeadlinePassed(context: HandlerContext): void {
  if (!context.signal.aborted) return;
  const reason: unknown = context.signal.reason;
  if (reason instanceof ConnectError && reason.code === Code.DeadlineExceeded) throw reason;
}
