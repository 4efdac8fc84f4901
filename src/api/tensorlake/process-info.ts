import type { SandboxProcess } from '../../core/process.ts';
import type { ProcessTable } from '../../core/process-table.ts';

/** A process as this dialect shows it; times are integer milliseconds since the epoch. */
export function processInfo(table: ProcessTable, process: SandboxProcess) {
  return {
    pid: process.pid,
    status: process.status,
    exit_code: process.exitCode,
    signal: process.signal,
    stdin_writable: process.stdinWritable,
    command: process.spec.command,
    args: process.spec.args,
    started_at: process.startedAt,
    ended_at: process.endedAt,
    ...(process.spec.name === undefined ? {} : { name: process.spec.name }),
    ...(table.isManaged(process) ? { managed: true } : {}),
  };
}
