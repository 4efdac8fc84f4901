import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

// Where a command is looked up when the environment has no PATH, as execvp does.
const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';

/**
 * The file `command` names, directly or through PATH (the process's own, as execvp would look
 * it up), if it is an executable file; undefined when there is none.
 */
export async function findExecutable(command: string, path: string | undefined): Promise<string | undefined> {
  const candidates = command.includes('/')
    ? [command]
    : (path ?? DEFAULT_PATH).split(delimiter).map((dir) => join(dir || '.', command));
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK);
      if ((await stat(candidate)).isFile()) return candidate;
    } catch {
      // Not here: the next one.
    }
  }
  return undefined;
}

/**
 * Whether `command` names an executable file, directly or through PATH. A pseudo-terminal
 * child reports a failed exec only as exit code 1, so it is checked before the fork.
 */
export async function isExecutable(command: string, path: string | undefined): Promise<boolean> {
  return (await findExecutable(command, path)) !== undefined;
}

/**
 * findExecutable, remembered: a start looks up the same few commands again and again. A hit
 * that no longer holds (the file went) is forgotten by the caller, who looks again.
 */
export class CommandPaths {
  private readonly found = new Map<string, string>();

  constructor(private readonly maxEntries = 256) {}

  async find(command: string, path: string | undefined): Promise<string | undefined> {
    const key = `${path ?? ''}\0${command}`;
    const known = this.found.get(key);
    if (known !== undefined) return known;
    const file = await findExecutable(command, path);
    if (file === undefined) return undefined;
    if (this.found.size >= this.maxEntries) this.found.delete(this.found.keys().next().value as string);
    this.found.set(key, file);
    return file;
  }

  forget(command: string, path: string | undefined): void {
    this.found.delete(`${path ?? ''}\0${command}`);
  }
}
