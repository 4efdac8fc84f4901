import type { ProcessTable } from '../../../core/process-table.ts';

/** List: the running processes with their configuration and tag. */
export function list(table: ProcessTable) {
  return () => ({
    processes: table
      .list()
      .filter((entry) => entry.running)
      .map(({ pid, spec }) => ({
        pid,
        tag: spec.name,
        config: { cmd: spec.command, args: spec.args, envs: spec.requestedEnv, cwd: spec.cwd },
      })),
  });
}
