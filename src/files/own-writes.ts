/**
 * The files the daemon itself has just put in place by renaming a temporary file over them,
 * so that a watch can report such a write as a write would look (WRITE for a replaced file,
 * CREATE then WRITE for a new one) instead of as the rename it is. Entries are forgotten after
 * a few seconds, and the oldest first beyond a bound.
 */
export class OwnWrites {
  private readonly entries = new Map<string, { replaced: boolean; at: number }>();

  constructor(
    private readonly keepMs = 10_000,
    private readonly maxEntries = 4096,
  ) {}

  record(path: string, replaced: boolean): void {
    this.entries.delete(path);
    this.entries.set(path, { replaced, at: Date.now() });
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  /** Whether the daemon's own write put this path in place just now, and if it replaced a file. */
  lookup(path: string): { replaced: boolean } | undefined {
    const entry = this.entries.get(path);
    if (!entry) return undefined;
    if (Date.now() - entry.at > this.keepMs) {
      this.entries.delete(path);
      return undefined;
    }
    return entry;
  }
}
