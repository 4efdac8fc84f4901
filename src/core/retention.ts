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
  for (const entry of [...inStartOrder].reverse()) {
    if (entry.running || !entry.settled) continue;
    if (entry.family !== undefined && !entry.current) {
      const count = (incarnations.get(entry.family) ?? 0) + 1;
      incarnations.set(entry.family, count);
      if (count > limits.managedHistory) {
        forget.push(entry);
        continue;
      }
    }
    if (++finished > limits.maxFinished) forget.push(entry);
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
  for (const entry of inStartOrder) {
    if (left <= 0) break;
    if (entry.running || !entry.settled) continue;
    left -= entry.diskBytes;
    forget.push(entry);
  }
  const shedFrom =
    left <= 0
      ? []
      : inStartOrder
          .filter((entry) => !forget.includes(entry) && entry.diskBytes > 0)
          .sort((a, b) => b.diskBytes - a.diskBytes);
  return { forget, shedFrom };
}
