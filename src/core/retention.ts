/**
 * Which finished processes the table forgets: pure rules over what the table knows of each, so
 * that they are tested without starting anything.
 */
export interface Retained {
  running: boolean;
  /** Its output is complete (the log is closed): only then may it be forgotten. */
  settled: boolean;
  /** The managed process it is an incarnation of, if any (one key for all its incarnations). */
  family?: unknown;
  /** The managed process's current incarnation (kept like any process, not as history). */
  current: boolean;
  /** Its output on disk. */
  diskBytes: number;
}

export interface RetentionLimits {
  /** The newest this many finished processes are kept. */
  maxFinished: number;
  /** A managed process keeps this many finished incarnations besides its current one. */
  managedHistory: number;
}

/**
 * The processes to forget, from a list in start order: a managed process's incarnations beyond
 * its history, then any finished process beyond the newest `maxFinished`.
 */
export function beyondRetention<T extends Retained>(
  inStartOrder: readonly T[],
  limits: RetentionLimits,
): T[] {
  const forget: T[] = [];
  const incarnations = new Map<unknown, number>();
  let finished = 0;
  for (const process of [...inStartOrder].reverse()) {
    if (process.running || !process.settled) continue;
    if (process.family !== undefined && !process.current) {
      const count = (incarnations.get(process.family) ?? 0) + 1;
      incarnations.set(process.family, count);
      if (count > limits.managedHistory) {
        forget.push(process);
        continue;
      }
    }
    if (++finished > limits.maxFinished) forget.push(process);
  }
  return forget;
}

/**
 * To bring spill files `excess` bytes under their cap: the finished processes to forget, oldest
 * first, and then the running ones to shed output from, those with the most on disk first.
 */
export function spillTrimPlan<T extends Retained>(
  inStartOrder: readonly T[],
  excess: number,
): { forget: T[]; shedFrom: T[] } {
  const forget: T[] = [];
  let left = excess;
  for (const process of inStartOrder) {
    if (left <= 0) break;
    if (process.running || !process.settled) continue;
    left -= process.diskBytes;
    forget.push(process);
  }
  const shedFrom =
    left <= 0
      ? []
      : inStartOrder
          .filter((process) => !forget.includes(process) && process.diskBytes > 0)
          .sort((a, b) => b.diskBytes - a.diskBytes);
  return { forget, shedFrom };
}
