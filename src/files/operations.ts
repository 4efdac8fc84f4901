import { cp, lstat, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SandboxError } from '../core/errors.ts';
import { makeDirectories, type Owner } from './directories.ts';
import { fileError, onPath } from './errors.ts';

/** Creates a directory and its parents; already_exists if it is there, not_a_directory if a file is. */
export async function makeDirectory(path: string, owner: Owner | undefined): Promise<void> {
  const existing = await lstat(path).catch(() => undefined);
  if (existing?.isDirectory()) throw new SandboxError('already_exists', `directory '${path}' already exists`);
  if (existing) throw new SandboxError('not_a_directory', `'${path}' exists and is not a directory`);
  if (!(await makeDirectories(path, owner))) {
    throw new SandboxError('already_exists', `directory '${path}' already exists`);
  }
}

/**
 * Moves a file or a tree; the destination's missing parents are created. Across file systems
 * it is copied, then the source removed.
 */
export async function move(source: string, destination: string, owner: Owner | undefined): Promise<void> {
  await onPath(source, () => lstat(source));
  await makeDirectories(dirname(destination), owner);
  try {
    await rename(source, destination);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw fileError(error, destination);
    await onPath(destination, () =>
      cp(source, destination, {
        recursive: true,
        force: true,
        preserveTimestamps: true,
        verbatimSymlinks: true,
      }),
    );
    await onPath(source, () => rm(source, { recursive: true, force: true }));
  }
}

/** Removes a file, a link (not what it leads to) or a whole tree; not_found when there is nothing. */
export async function remove(path: string): Promise<void> {
  await onPath(path, () => lstat(path));
  await onPath(path, () => rm(path, { recursive: true, force: true }));
}
