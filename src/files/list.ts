import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SandboxError } from '../core/errors.ts';
import type { Accounts } from '../core/users.ts';
import { describe, type Entry } from './entry.ts';
import { onPath } from './errors.ts';

export interface ListOptions {
  /** 1: the directory's own entries; N: N levels down. */
  depth: number;
  /** A listing that would hold more entries than this fails instead of growing without bound. */
  maxEntries: number;
}

// Entries are described this many at a time: enough to keep the thread pool busy, few enough
// that a huge directory does not queue a promise per entry at once.
const BATCH = 64;

/**
 * The entries under a directory (a symbolic link to one is followed), each directory's own
 * entries in name order, followed by what is below them; links below are not followed. Paths
 * are given under `path` as the caller named it.
 */
export async function listDirectory(
  path: string,
  accounts: Accounts,
  options: ListOptions,
): Promise<Entry[]> {
  const resolved = await onPath(path, () => realpath(path));
  const stats = await onPath(path, () => stat(resolved));
  if (!stats.isDirectory()) throw new SandboxError('not_a_directory', `'${path}' is not a directory`);
  const entries: Entry[] = [];
  await walk(resolved, path, 1, entries, accounts, options);
  return entries;
}

async function walk(
  real: string,
  shown: string,
  level: number,
  into: Entry[],
  accounts: Accounts,
  options: ListOptions,
): Promise<void> {
  const names = (await onPath(shown, () => readdir(real))).sort(byBytes);
  if (into.length + names.length > options.maxEntries) {
    throw new SandboxError(
      'resource_exhausted',
      `'${shown}' holds more than ${options.maxEntries} entries at this depth; list with a smaller depth`,
    );
  }
  for (let i = 0; i < names.length; i += BATCH) {
    const batch = await Promise.all(
      names.slice(i, i + BATCH).map(async (name) => {
        const own = await lstat(join(real, name)).catch(() => undefined);
        // Gone since it was listed.
        return (
          own && { entry: await describe(join(shown, name), own, accounts), isDirectory: own.isDirectory() }
        );
      }),
    );
    for (const item of batch) {
      if (!item) continue;
      into.push(item.entry);
      if (item.isDirectory && level < options.depth) {
        await walk(join(real, item.entry.name), item.entry.path, level + 1, into, accounts, options);
      }
    }
  }
}

function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
