import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

/**
 * Whether `command` names an executable file, directly or through PATH. A pseudo-terminal
 * child reports a failed exec only as exit code 1, so it is checked before the fork.
 */
export async function isExecutable(command: string, path: string | undefined): Promise<boolean> {
  const candidates = command.includes('/')
    ? [command]
    : (path ?? '').split(delimiter).map((dir) => join(dir || '.', command));
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK);
      if ((await stat(candidate)).isFile()) return true;
    } catch {
      // Not here: the next one.
    }
  }
  return false;
}
