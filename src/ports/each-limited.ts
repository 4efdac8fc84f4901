/**
 * Runs `work` on each item in order, at most `limit` at a time, and stops taking new items once
 * `done()` says so (those already begun finish). Each step of a /proc scan is a file system call
 * on libuv's small thread pool: a bound keeps a scan from queueing thousands of them ahead of the
 * daemon's other file work.
 */
export async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
  done: () => boolean = () => false,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length && !done()) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
