import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * Whether `command` names an executable file, directly or through PATH. A pseudo-terminal
 * child reports a failed exec only as exit code 1, so it is checked before the fork.
 */
export function isExecutable(command: string, path: string | undefined): boolean {
  const candidates = command.includes('/')
    ? [command]
    : (path ?? '').split(delimiter).map((dir) => join(dir || '.', command));
  return candidates.some((candidate) => {
    try {
      accessSync(candidate, constants.X_OK);
      return statSync(candidate).isFile();
    } catch {
      return false;
    }
  });
}
