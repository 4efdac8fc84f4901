import { SandboxError } from '../errors.ts';
import type { Limits } from '../start-request.ts';

/** The cgroup controllers a limit needs, and the ones that count what a process uses. */
export type Controller = 'memory' | 'cpu' | 'cpuacct' | 'pids';

/** The limit each controller enforces, as the request spells it (for messages). */
const LIMIT_FIELD = { memory: 'memory_mb', cpu: 'cpus', pids: 'pids' } as const;
type LimitingController = keyof typeof LIMIT_FIELD;

/** Where controllers can be had, as the containment found them when it opened. */
export interface LimitSources {
  /** The controllers the cell's own cgroup has, with its files' version. */
  cell: { version: 1 | 2; controllers: ReadonlySet<Controller> };
  /** Why the cell's cgroup lacks a controller, for the message that refuses a limit. */
  cellLacks(controller: Controller): string;
  /** Mount points of the cgroup v1 hierarchies that have each controller, besides the cell's. */
  v1: ReadonlyMap<Controller, string>;
}

/** Which cgroups a process with limits gets, beside its cell. */
export interface LimitPlan {
  /** The controllers served by the cell's own cgroup. */
  cell: Controller[];
  /** One cgroup in each of these cgroup v1 hierarchies, for these controllers. */
  v1: { mountPoint: string; controllers: Controller[] }[];
}

/**
 * Every limit asked for must have its controller, in the cell's own cgroup or else in a cgroup
 * v1 hierarchy of its own (a hybrid machine has both), or the start is refused naming what is
 * missing. A process with any limit is also counted (memory with its OOM kills, pids, CPU
 * time) wherever a controller for that is at hand, so that its usage can be reported.
 */
export function planLimits(limits: Limits, sources: LimitSources): LimitPlan {
  const wanted: [Controller, boolean][] = [
    ['memory', limits.memoryBytes !== undefined],
    ['pids', limits.pids !== undefined],
    ['cpuacct', false],
  ];
  // The cpu controller only limits; cpuacct (or cgroup v2's own cpu.stat) counts.
  if (limits.cpus !== undefined) wanted.splice(1, 0, ['cpu', true]);
  const plan: LimitPlan = { cell: [], v1: [] };
  for (const [controller, required] of wanted) {
    if (sources.cell.controllers.has(controller)) {
      plan.cell.push(controller);
      continue;
    }
    const mountPoint = sources.v1.get(controller);
    if (mountPoint === undefined) {
      if (required)
        refuse(
          controller as LimitingController,
          `${sources.cellLacks(controller)}; no cgroup v1 ${controller} hierarchy`,
        );
      continue;
    }
    // Controllers mounted together (cpu,cpuacct) share one hierarchy, and so one cgroup.
    const group = plan.v1.find((entry) => entry.mountPoint === mountPoint);
    if (group) group.controllers.push(controller);
    else plan.v1.push({ mountPoint, controllers: [controller] });
  }
  return plan;
}

/** Refuses the first limit asked for, where no cgroup can hold any (`why`). */
export function refuseLimits(limits: Limits, why: string): never {
  const controller: LimitingController =
    limits.memoryBytes !== undefined ? 'memory' : limits.cpus !== undefined ? 'cpu' : 'pids';
  return refuse(controller, why);
}

function refuse(controller: LimitingController, why: string): never {
  throw new SandboxError(
    'invalid_argument',
    `limits.${LIMIT_FIELD[controller]}: no ${controller} controller (${why})`,
  );
}
