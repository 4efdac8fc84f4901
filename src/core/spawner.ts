import type { Containment } from './containment/index.ts';
import type { OutputLogOptions } from './output-log.ts';
import { type ProcessOptions, SandboxProcess } from './process.ts';
import type { Spawner } from './process-table.ts';

export interface SpawnerOptions {
  /** Where each process and its descendants live, so that a kill reaches all of them. */
  containment: Containment;
  log: Omit<OutputLogOptions, 'spillDir' | 'diskUse'>;
  stdin: ProcessOptions['stdin'];
  drainGraceMs: number;
}

/** The table's way to start a real process: in a cell of its own, its output in a log. */
export function containedSpawner({
  containment,
  log,
  stdin,
  drainGraceMs,
}: SpawnerOptions): Spawner<SandboxProcess> {
  return async (spec, { spillDir, diskUse }) =>
    SandboxProcess.spawn(spec, {
      log: { ...log, spillDir, diskUse },
      stdin,
      drainGraceMs,
      cell: await containment.cell(spec.limits),
    });
}
