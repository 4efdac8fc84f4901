/**
 * The disk that all processes' spill files may use together. Writers report what they add
 * and free; past the cap, `trim` is asked (once per turn of the event loop, however many
 * writes crossed it) to free at least the excess.
 */
export class SpillQuota {
  private used = 0;
  private trimScheduled = false;

  constructor(
    private readonly maxBytes: number,
    private readonly trim: (excessBytes: number) => void,
  ) {}

  get usedBytes(): number {
    return this.used;
  }

  count(deltaBytes: number): void {
    this.used += deltaBytes;
    if (this.used <= this.maxBytes || this.trimScheduled) return;
    this.trimScheduled = true;
    queueMicrotask(() => {
      this.trimScheduled = false;
      const excess = this.used - this.maxBytes;
      if (excess > 0) this.trim(excess);
    });
  }
}
