import { SandboxError } from './errors.ts';
import { pidOf } from './process-name.ts';

/** What the registry needs of a process. */
export interface Registered {
  readonly pid: number;
  readonly spec: { readonly name?: string };
}

/**
 * The processes the daemon knows, by pid and by name, and the names that starts under way
 * hold. A pid the kernel hands out again replaces the finished process that had it.
 */
export class ProcessRegistry<P extends Registered> {
  private readonly byPid = new Map<number, P>();
  private readonly byName = new Map<string, P>();
  private readonly reserved = new Set<string>();

  /** By pid (a number or digits) or by name. */
  find(ref: number | string): P | undefined {
    const pid = pidOf(ref);
    return pid === undefined ? this.byName.get(String(ref)) : this.byPid.get(pid);
  }

  /** By name only, digits included (a name that another dialect allows to be all digits). */
  named(name: string): P | undefined {
    return this.byName.get(name);
  }

  /** As find; throws not_found. */
  get(ref: number | string): P {
    const found = this.find(ref);
    if (found) return found;
    const what = pidOf(ref) === undefined ? `name '${ref}'` : `pid ${ref}`;
    throw new SandboxError('not_found', `process with ${what} not found`);
  }

  list(): P[] {
    return [...this.byPid.values()];
  }

  get size(): number {
    return this.byPid.size;
  }

  /**
   * Holds a name for a start under way. `held` says whether the process that has the name now
   * still holds it (it runs, or will be restarted); if not, the name passes on.
   */
  reserve(name: string, held: (holder: P) => boolean): void {
    if (this.reserved.has(name)) throw new SandboxError('name_taken', `name '${name}' is being taken`);
    const holder = this.byName.get(name);
    if (holder && held(holder)) {
      throw new SandboxError('name_taken', `name '${name}' is taken by process ${holder.pid}`);
    }
    this.reserved.add(name);
  }

  /** The start that reserved the name is over, started or not. */
  unreserve(name: string): void {
    this.reserved.delete(name);
  }

  /** Adds a process; returns the finished one it replaces, if its pid was reused. */
  add(entry: P): P | undefined {
    const replaced = this.byPid.get(entry.pid);
    if (replaced) this.remove(replaced);
    this.byPid.set(entry.pid, entry);
    if (entry.spec.name !== undefined) this.byName.set(entry.spec.name, entry);
    return replaced;
  }

  remove(entry: P): void {
    if (this.byPid.get(entry.pid) === entry) this.byPid.delete(entry.pid);
    const { name } = entry.spec;
    if (name !== undefined && this.byName.get(name) === entry) this.byName.delete(name);
  }

  clear(): void {
    this.byPid.clear();
    this.byName.clear();
  }
}
