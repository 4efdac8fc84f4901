import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import type { StartRequest as CoreStartRequest } from '../../core/process-table.ts';
import type { StartRequest } from '../../gen/process/process_pb.ts';

/** `~` is the home directory and a relative cwd is taken from there, as envd does. */
function resolveCwd(cwd: string | undefined, home: string): string | undefined {
  if (cwd === undefined || cwd === '') return undefined;
  if (cwd === '~') return home;
  if (cwd.startsWith('~/')) return join(home, cwd.slice(2));
  return isAbsolute(cwd) ? cwd : join(home, cwd);
}

/** The core's request; `user`, when the call names one, runs it as that user from their home. */
export function toCoreStart(request: StartRequest, user?: { name: string; home: string }): CoreStartRequest {
  const config = request.process;
  const size = request.pty?.size;
  return {
    command: config?.cmd ?? '',
    args: config?.args ?? [],
    env: { ...config?.envs },
    cwd: resolveCwd(config?.cwd, user?.home ?? homedir()),
    ...(user ? { user: user.name } : {}),
    // Absent means a pipe.
    stdin: request.stdin === false ? 'closed' : 'pipe',
    name: request.tag,
    pty: request.pty ? { cols: size?.cols || 80, rows: size?.rows || 24 } : undefined,
  };
}
