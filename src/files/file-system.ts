import { homedir, userInfo } from 'node:os';
import type { Readable } from 'node:stream';
import { SandboxError } from '../core/errors.ts';
import { resolvePath } from '../core/paths.ts';
import type { Accounts } from '../core/users.ts';
import type { Owner } from './directories.ts';
import { type Entry, readEntry } from './entry.ts';
import { listDirectory } from './list.ts';
import { checkMetadata } from './metadata.ts';
import { makeDirectory, move, remove } from './operations.ts';
import { OwnWrites } from './own-writes.ts';
import { OpenFile } from './read.ts';
import { DirectoryWatch, type WatchLimits } from './watch.ts';
import { type WriteResult, writeAtomically } from './write.ts';

/** Whom a file operation is done for: relative paths start at their home, new files are theirs. */
export interface FileUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface FileSystemOptions {
  accounts: Accounts;
  /** A directory listing longer than this fails rather than grow the daemon. */
  maxListEntries: number;
  watch: WatchLimits & {
    /** Open watches, all clients together. */
    maxWatches: number;
  };
}

/**
 * Files, for the dialects: stat, streamed reads, atomic streamed writes, listings, directories,
 * moves, removal and watches. It knows nothing of HTTP.
 */
export class FileSystem {
  private readonly ownWrites = new OwnWrites();
  private readonly watches = new Set<DirectoryWatch>();
  private readonly daemonUser: FileUser;

  constructor(private readonly options: FileSystemOptions) {
    const me = userInfo();
    // $HOME first, as for the daemon's own processes.
    this.daemonUser = { name: me.username, uid: me.uid, gid: me.gid, home: homedir() };
  }

  /** The named user, or the daemon's own when no name is given; invalid_user when there is none such. */
  async user(name?: string): Promise<FileUser> {
    if (name === undefined || name === '') return this.daemonUser;
    const account = await this.options.accounts.byName(name);
    if (!account) throw new SandboxError('invalid_user', `invalid user: '${name}' does not exist`);
    return account;
  }

  /** An absolute path from what a client sent (see resolvePath). */
  resolve(path: string, user: FileUser = this.daemonUser): string {
    return resolvePath(path, user.home);
  }

  stat(path: string): Promise<Entry> {
    return readEntry(path, this.options.accounts, { metadata: true });
  }

  open(path: string): Promise<OpenFile> {
    return OpenFile.open(path);
  }

  write(
    path: string,
    source: Readable,
    user: FileUser = this.daemonUser,
    metadata?: Record<string, string>,
  ): Promise<WriteResult> {
    if (metadata) checkMetadata(metadata);
    return writeAtomically(path, source, { owner: this.ownerFor(user), metadata, ownWrites: this.ownWrites });
  }

  list(path: string, depth = 1): Promise<Entry[]> {
    return listDirectory(path, this.options.accounts, { depth, maxEntries: this.options.maxListEntries });
  }

  async makeDirectory(path: string, user: FileUser = this.daemonUser): Promise<Entry> {
    await makeDirectory(path, this.ownerFor(user));
    return readEntry(path, this.options.accounts);
  }

  async move(source: string, destination: string, user: FileUser = this.daemonUser): Promise<Entry> {
    await move(source, destination, this.ownerFor(user));
    return readEntry(destination, this.options.accounts);
  }

  remove(path: string): Promise<void> {
    return remove(path);
  }

  async watch(path: string, { recursive = false, includeEntry = false } = {}): Promise<DirectoryWatch> {
    const { maxWatches, ...limits } = this.options.watch;
    if (this.watches.size >= maxWatches) {
      throw new SandboxError('resource_exhausted', `${maxWatches} watches are open; remove one first`);
    }
    const watch = await DirectoryWatch.open(path, {
      ...limits,
      recursive,
      includeEntry,
      accounts: this.options.accounts,
      ownWrites: this.ownWrites,
    });
    this.watches.add(watch);
    watch.onClose(() => this.watches.delete(watch));
    return watch;
  }

  /** Ends every watch. */
  close(): void {
    for (const watch of [...this.watches]) watch.close();
  }

  /** New files and directories are given to another user only where the daemon may do that. */
  private ownerFor(user: FileUser): Owner | undefined {
    const mayGiveAway = this.daemonUser.uid === 0;
    const isOther = user.uid !== this.daemonUser.uid || user.gid !== this.daemonUser.gid;
    return mayGiveAway && isOther ? { uid: user.uid, gid: user.gid } : undefined;
  }
}
