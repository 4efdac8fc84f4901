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

/** What an iterator yields, with KEEPALIVE after every `idleMs` of silence. */
export async function* withKeepalives<T>(
  iterator: AsyncIterator<T>,
  idleMs: number,
): AsyncGenerator<T | typeof KEEPALIVE> {
  for (;;) {
    const next = iterator.next();
    let result = await raceIdle(next, idleMs);
    while (result === KEEPALIVE) {
      yield KEEPALIVE;
      result = await raceIdle(next, idleMs);
    }
    if (result.done) return;
    yield result.value;
  }
}

async function raceIdle<T>(next: Promise<T>, idleMs: number): Promise<T | typeof KEEPALIVE> {
  let timer: NodeJS.Timeout | undefined;
  const idle = new Promise<typeof KEEPALIVE>((resolve) => {
    timer = setTimeout(() => resolve(KEEPALIVE), idleMs);
  });
  try {
    return await Promise.race([next, idle]);
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
