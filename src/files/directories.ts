import { chown, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SandboxError } from '../core/errors.ts';
import { fileError, onPath } from './errors.ts';

export interface Owner {
  uid: number;
  gid: number;
}

/**
 * Creates a directory and its missing parents; the ones it creates are given to `owner`.
 * Returns whether the directory itself was created. A component that is a file is reported
 * as not_a_directory.
 */
export async function makeDirectories(path: string, owner: Owner | undefined): Promise<boolean> {
  let first: string | undefined;
  try {
    first = await mkdir(path, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') {
      throw new SandboxError('not_a_directory', `'${path}' or one of its parents is not a directory`);
    }
    throw fileError(error, path);
  }
  if (first === undefined) return false;
  if (owner) {
    // From the deepest created directory up to the first one.
    for (let dir = path; ; dir = dirname(dir)) {
      await onPath(dir, () => chown(dir, owner.uid, owner.gid));
      if (dir === first || dir === dirname(dir)) break;
    }
  }
  return true;
}
