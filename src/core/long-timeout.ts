// Node's timers fire at once for delays past 2^31 - 1 ms (about 24.8 days); longer ones are
// chained from pieces below that.
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface LongTimeout {
  clear(): void;
}

/** Like setTimeout, for any delay; unref'd, so that it never keeps the daemon alive alone. */
export function setLongTimeout(callback: () => void, ms: number): LongTimeout {
  let timer: NodeJS.Timeout;
  const due = Date.now() + ms;
  const arm = () => {
    const left = due - Date.now();
    timer = setTimeout(
      left > MAX_TIMER_MS ? arm : callback,
      Math.min(Math.max(left, 0), MAX_TIMER_MS),
    ).unref();
  };
  arm();
  return { clear: () => clearTimeout(timer) };
}
