import { CgroupContainment } from './cgroup.ts';
import { ProcTreeContainment } from './proc-tree.ts';
import type { Containment, ContainmentChoice } from './types.ts';

export type { Cell, Containment, ContainmentChoice, ContainmentMode, Usage } from './types.ts';

/**
 * The way descendants are tracked: `auto` takes the first that works of a cgroup v2 per
 * process, a cgroup v1 freezer per process, and walking /proc. A mode asked for by name must
 * work, or the daemon does not start.
 */
export async function openContainment(choice: ContainmentChoice): Promise<Containment> {
  if (choice === 'proc') return new ProcTreeContainment();
  if (choice !== 'auto') {
    try {
      return await CgroupContainment.open(choice);
    } catch (error) {
      throw new Error(`cannot track processes with ${choice}: ${(error as Error).message}`);
    }
  }
  for (const kind of ['cgroup2', 'cgroup1'] as const) {
    try {
      return await CgroupContainment.open(kind);
    } catch {
      // Not mounted, not writable, or too old: try the next.
    }
  }
  return new ProcTreeContainment();
}
