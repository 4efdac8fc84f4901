/** Something open that the daemon must close when it stops: a tunnel, or one still being set up. */
export interface Closable {
  shutdown(graceMs: number): Promise<void>;
}

/**
 * The open tunnels (and those still connecting to their service). The HTTP server lets go of
 * a connection once it is upgraded, so nothing else would close these when the daemon stops.
 */
export class Tunnels {
  private readonly open = new Set<Closable>();

  get size(): number {
    return this.open.size;
  }

  /** Holds `item` until `closed` settles; returns a function that lets go of it sooner. */
  track(item: Closable, closed?: Promise<unknown>): () => void {
    this.open.add(item);
    const release = () => {
      this.open.delete(item);
    };
    closed?.then(release, release);
    return release;
  }

  /** Closes everything open, each given graceMs to say goodbye before it is cut. */
  async closeAll(graceMs: number): Promise<void> {
    const items = [...this.open];
    this.open.clear();
    await Promise.all(items.map((item) => item.shutdown(graceMs)));
  }
}
