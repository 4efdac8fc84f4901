import { constants, type Stats } from 'node:fs';
import { lstat, readlink, realpath, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Accounts } from '../core/users.ts';
import { onPath } from './errors.ts';
import { readMetadata } from './metadata.ts';

export type EntryType = 'file' | 'directory' | 'symlink' | 'other';

/** What the daemon tells about a path. */
export interface Entry {
  name: string;
  /** Absolute. */
  path: string;
  /** A symbolic link reports the type of what it leads to; 'symlink' when that is missing. */
  type: EntryType;
  size: number;
  /** Permission bits (of the link's target, for a symbolic link). */
  mode: number;
  /** The mode spelled out as Go's `FileMode.String` does, e.g. `-rw-r--r--` or `Lrwxrwxrwx`. */
  permissions: string;
  owner: string;
  group: string;
  modifiedMs: number;
  /** For a symbolic link: the path it resolves to (its own text when it leads nowhere). */
  symlinkTarget?: string;
  /** User metadata stored with the file, when asked for. */
  metadata?: Record<string, string>;
}

/** The entry for a path, not following a final symbolic link except to tell what it leads to. */
export async function readEntry(
  path: string,
  accounts: Accounts,
  { metadata = false }: { metadata?: boolean } = {},
): Promise<Entry> {
  const own = await onPath(path, () => lstat(path));
  return describe(path, own, accounts, metadata);
}

export async function describe(
  path: string,
  own: Stats,
  accounts: Accounts,
  metadata = false,
): Promise<Entry> {
  let type = typeOf(own);
  let mode = own.mode & 0o777;
  let symlinkTarget: string | undefined;
  if (own.isSymbolicLink()) {
    const target = await realpath(path).then(
      async (resolved) => ({ resolved, stats: await stat(resolved) }),
      () => undefined,
    );
    if (target) {
      symlinkTarget = target.resolved;
      type = typeOf(target.stats);
      mode = target.stats.mode & 0o777;
    } else {
      symlinkTarget = await readlink(path).catch(() => path);
    }
  }
  const [owner, group, stored] = await Promise.all([
    accounts.userName(own.uid),
    accounts.groupName(own.gid),
    metadata && type === 'file' ? readMetadata(path) : undefined,
  ]);
  return {
    name: basename(path),
    path,
    type,
    size: own.size,
    mode,
    permissions: goModeString(own.mode),
    owner,
    group,
    modifiedMs: own.mtimeMs,
    ...(symlinkTarget === undefined ? {} : { symlinkTarget }),
    ...(stored === undefined ? {} : { metadata: stored }),
  };
}

function typeOf(stats: Stats): EntryType {
  if (stats.isFile()) return 'file';
  if (stats.isDirectory()) return 'directory';
  if (stats.isSymbolicLink()) return 'symlink';
  return 'other';
}

const { S_IFMT, S_IFDIR, S_IFLNK, S_IFBLK, S_IFIFO, S_IFSOCK, S_IFCHR } = constants;
const FILE_KINDS = new Map<number, string>([
  [S_IFDIR, 'd'],
  [S_IFLNK, 'L'],
  [S_IFBLK, 'D'],
  [S_IFIFO, 'p'],
  [S_IFSOCK, 'S'],
  [S_IFCHR, 'Dc'],
]);

/**
 * A Unix mode as Go spells it (the reference daemon's format): kind and special bits as
 * letters in Go's order (d a l T L D p S u g c t), or '-' when there are none, then rwx × 3.
 */
export function goModeString(mode: number): string {
  const kind = FILE_KINDS.get(mode & S_IFMT) ?? '';
  // Go places setuid (u) and setgid (g) after the kind letters but before c; sticky (t) last.
  let letters = kind.replace('c', '');
  if (mode & 0o4000) letters += 'u';
  if (mode & 0o2000) letters += 'g';
  if (kind.includes('c')) letters += 'c';
  if (mode & 0o1000) letters += 't';
  const rwx = 'rwxrwxrwx'
    .split('')
    .map((letter, i) => (mode & (0o400 >> i) ? letter : '-'))
    .join('');
  return (letters || '-') + rwx;
}
