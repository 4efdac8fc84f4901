import type { StartRequest as CoreStartRequest } from '../../../core/process-table.ts';
import type { StartRequest } from '../../../gen/process/process_pb.ts';

/**
 * The core's request: a mapping of fields, the core's rules for the rest (`~` and a relative
 * cwd start at the user's home, a terminal side of 0 is the default). `user`, when the call
 * names one, runs it as that user; `deadlineMs` is the call's Connect-Timeout-Ms.
 */
export function toCoreStart(request: StartRequest, user?: string, deadlineMs?: number): CoreStartRequest {
  const config = request.process;
  return {
    command: config?.cmd ?? '',
    args: config?.args ?? [],
    env: { ...config?.envs },
    cwd: config?.cwd,
    ...(user === undefined ? {} : { user }),
    // Absent means a pipe.
    stdin: request.stdin === false ? 'closed' : 'pipe',
    name: request.tag,
    nameKind: 'tag',
    pty: request.pty ? { cols: request.pty.size?.cols, rows: request.pty.size?.rows } : undefined,
    deadlineMs,
  };
}
