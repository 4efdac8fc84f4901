import { type BigIntStats, type FSWatcher, watch } from 'node:fs';
import { lstat, readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { SandboxError } from '../core/errors.ts';
import type { Accounts } from '../core/users.ts';
import { Waiters } from '../core/waiters.ts';
import { type Entry, readEntry } from './entry.ts';
import { fileError, onPath } from './errors.ts';
import type { OwnWrites } from './own-writes.ts';
import { isTemporaryName } from './write.ts';

export type WatchEventType = 'create' | 'write' | 'remove' | 'rename' | 'chmod';

export interface WatchEvent {
  /** The path relative to the watched directory. */
  name: string;
  type: WatchEventType;
  entry?: Entry;
}

export interface WatchLimits {
  /** Events held for a reader that has not taken them; beyond this they are lost, and that is reported. */
  maxEvents: number;
  /** Directories one recursive watch may follow (an inotify watch each). */
  maxDirectories: number;
}

export interface WatchOptions extends WatchLimits {
  recursive: boolean;
  includeEntry: boolean;
  accounts: Accounts;
  ownWrites: OwnWrites;
}

/** What inotify said, through fs.watch: 'rename' for a name that appeared or vanished, 'change' for a write or chmod. */
interface Notice {
  directory: string;
  kind: 'rename' | 'change';
  name: string;
  /** Notices delivered in one go share a batch: a rename is a vanished name followed at once by a new one. */
  batch: number;
  /** The path as it was when the notice arrived (looked at then, not when its turn comes). */
  stats: Promise<BigIntStats | undefined>;
}

interface WatchedDirectory {
  watcher: FSWatcher;
  /** The names in it, as far as the notices tell: whether a notice is an appearance or a departure. */
  present: Set<string>;
  /** Names reported as created when the directory itself appeared; their own notice may still follow. */
  announced: Set<string>;
}

/**
 * A watch of a directory (and, when recursive, of every directory below it) through inotify
 * (`fs.watch`, one per directory). Notices are translated in order into create, write, remove,
 * rename and chmod events, which wait in a bounded buffer for the reader; a reader too slow to
 * keep up learns how many it lost instead of making the buffer grow. The daemon's own
 * temporary files never show; its atomic writes show as the writes they stand for.
 */
export class DirectoryWatch {
  private readonly directories = new Map<string, WatchedDirectory>();
  private readonly notices: Notice[] = [];
  private events: WatchEvent[] = [];
  private lost = 0;
  private failure: Error | undefined;
  private closed = false;
  private batch = 0;
  private batchOpen = false;
  private translating = false;
  private ready = false;
  private readonly waiters = new Waiters();
  private readonly closeListeners: (() => void)[] = [];

  private constructor(
    readonly root: string,
    private readonly options: WatchOptions,
  ) {}

  static async open(root: string, options: WatchOptions): Promise<DirectoryWatch> {
    const stats = await onPath(root, () => stat(root));
    if (!stats.isDirectory()) throw new SandboxError('not_a_directory', `'${root}' is not a directory`);
    const directoryWatch = new DirectoryWatch(root, options);
    try {
      await directoryWatch.follow('', false);
    } catch (error) {
      directoryWatch.close();
      throw error;
    }
    if (directoryWatch.failure) {
      const failure = directoryWatch.failure;
      directoryWatch.close();
      throw failure;
    }
    directoryWatch.ready = true;
    directoryWatch.translate();
    return directoryWatch;
  }

  /**
   * Hands over the events waiting for the reader. When none wait but some were lost, that is
   * reported once (resource_exhausted: the reader should look at the directory again) and the
   * watch goes on; when the watch has failed, the failure is reported.
   */
  take(): WatchEvent[] {
    if (this.events.length > 0) {
      const events = this.events;
      this.events = [];
      return events;
    }
    if (this.lost > 0) {
      const lost = this.lost;
      this.lost = 0;
      throw new SandboxError(
        'resource_exhausted',
        `the watch of '${this.root}' lost ${lost} events: more than ${this.options.maxEvents} waited to be read; look at the directory again`,
      );
    }
    if (this.failure) throw this.failure;
    return [];
  }

  /** Resolves when take() has something to say, the watch is closed, or the signal aborts. */
  async waitForEvents(signal: AbortSignal): Promise<void> {
    if (this.events.length > 0 || this.lost > 0 || this.failure || this.closed) return;
    await this.waiters.wait(signal);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  onClose(listener: () => void): void {
    this.closeListeners.push(listener);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const directory of this.directories.values()) directory.watcher.close();
    this.directories.clear();
    this.notices.length = 0;
    this.wake();
    for (const listener of this.closeListeners) listener();
  }

  /** Starts watching a directory (and, when recursive, the directories in it). */
  private async follow(relative: string, announce: boolean): Promise<void> {
    if (this.closed || this.directories.has(relative)) return;
    const absolute = join(this.root, relative);
    if (this.directories.size >= this.options.maxDirectories) {
      this.fail(
        new SandboxError(
          'resource_exhausted',
          `the watch of '${this.root}' would follow more than ${this.options.maxDirectories} directories`,
        ),
      );
      return;
    }
    let watcher: FSWatcher;
    try {
      // Before the listing, so that nothing created in between goes unseen.
      watcher = watch(absolute, { persistent: false }, (kind, name) => this.notice(relative, kind, name));
    } catch (error) {
      if (relative !== '' && (error as NodeJS.ErrnoException).code === 'ENOENT') return; // Gone already.
      this.fail(watchError(error, absolute));
      return;
    }
    watcher.on('error', (error) => {
      if (relative === '') this.fail(watchError(error, absolute));
      else this.unfollow(relative);
    });
    const directory: WatchedDirectory = { watcher, present: new Set(), announced: new Set() };
    this.directories.set(relative, directory);
    const entries = await readdir(absolute, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (isTemporaryName(entry.name)) continue;
      directory.present.add(entry.name);
      if (announce) {
        // The directory is new, so everything in it is too, though its notices came before we looked.
        directory.announced.add(entry.name);
        await this.emit(childOf(relative, entry.name), 'create');
      }
    }
    if (!this.options.recursive) return;
    for (const entry of entries) {
      if (entry.isDirectory()) await this.follow(childOf(relative, entry.name), announce);
    }
  }

  private unfollow(relative: string): void {
    for (const [key, directory] of this.directories) {
      if (key === relative || relative === '' || key.startsWith(`${relative}/`)) {
        directory.watcher.close();
        this.directories.delete(key);
      }
    }
    if (relative === '')
      this.fail(new SandboxError('not_found', `the watched directory '${this.root}' is gone`));
  }

  private notice(directory: string, kind: string, name: string | null): void {
    if (this.closed || name === null) return;
    if (this.notices.length >= this.options.maxEvents) {
      this.lost++;
      this.wake();
      return;
    }
    if (!this.batchOpen) {
      this.batchOpen = true;
      setImmediate(() => {
        this.batch++;
        this.batchOpen = false;
      });
    }
    const stats = lstat(join(this.root, childOf(directory, name)), { bigint: true }).catch(() => undefined);
    this.notices.push({
      directory,
      kind: kind === 'change' ? 'change' : 'rename',
      name,
      batch: this.batch,
      stats,
    });
    this.translate();
  }

  /** Translates the waiting notices one at a time, in order; one run at a time. */
  private translate(): void {
    if (this.translating || !this.ready) return;
    this.translating = true;
    void (async () => {
      try {
        for (let notice = this.notices.shift(); notice && !this.closed; notice = this.notices.shift()) {
          await this.translateOne(notice);
        }
        for (const directory of this.directories.values()) directory.announced.clear();
      } catch (error) {
        this.fail(error instanceof Error ? error : new Error(String(error)));
      } finally {
        this.translating = false;
        if (this.notices.length > 0 && !this.closed) this.translate();
      }
    })();
  }

  private async translateOne(notice: Notice): Promise<void> {
    const directory = this.directories.get(notice.directory);
    if (!directory || isTemporaryName(notice.name)) return;
    const directoryPath = join(this.root, notice.directory);
    const name = childOf(notice.directory, notice.name);
    const absolute = join(this.root, name);
    // inotify names a directory's notices about itself by the directory's own name.
    const mayBeItself = !directory.present.has(notice.name) && notice.name === basename(directoryPath);

    const stats = await notice.stats;
    if (notice.kind === 'change') {
      if (mayBeItself) return; // Its parent reports it.
      // A write moves the modification time along with the change time; a chmod only the latter.
      await this.emit(name, stats && stats.mtimeNs !== stats.ctimeNs ? 'chmod' : 'write', absolute);
      return;
    }

    if (!directory.present.has(notice.name)) {
      if (!stats && mayBeItself && !(await exists(directoryPath))) {
        this.unfollow(notice.directory);
        return;
      }
      directory.present.add(notice.name);
      await this.appeared(name, absolute, stats?.isDirectory() ?? false);
      return;
    }
    if (stats) {
      // Still there: something was renamed over it.
      if (directory.announced.delete(notice.name)) return;
      await this.appeared(name, absolute, stats.isDirectory());
      return;
    }
    directory.present.delete(notice.name);
    if (this.directories.has(name)) this.unfollow(name);
    const next = this.notices[0];
    const movedHere =
      next !== undefined &&
      next.batch === notice.batch &&
      next.kind === 'rename' &&
      !isTemporaryName(next.name) &&
      this.directories.get(next.directory)?.present.has(next.name) === false &&
      (await next.stats) !== undefined;
    await this.emit(name, movedHere ? 'rename' : 'remove');
  }

  private async appeared(name: string, absolute: string, isDirectory: boolean): Promise<void> {
    const own = this.options.ownWrites.lookup(absolute);
    if (!own?.replaced) await this.emit(name, 'create', absolute);
    if (own) await this.emit(name, 'write', absolute);
    if (isDirectory && this.options.recursive) await this.follow(name, true);
  }

  private async emit(name: string, type: WatchEventType, absolute = join(this.root, name)): Promise<void> {
    if (this.events.length >= this.options.maxEvents) {
      this.lost++;
      this.wake();
      return;
    }
    const entry =
      this.options.includeEntry && type !== 'remove' && type !== 'rename'
        ? await readEntry(absolute, this.options.accounts).catch(() => undefined)
        : undefined;
    this.events.push(entry ? { name, type, entry } : { name, type });
    this.wake();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.wake();
  }

  private wake(): void {
    this.waiters.wake();
  }
}

function childOf(directory: string, name: string): string {
  return directory === '' ? name : `${directory}/${name}`;
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

function watchError(error: unknown, path: string): Error {
  // inotify's ENOSPC is about its own watch limit, not the disk.
  if ((error as NodeJS.ErrnoException).code === 'ENOSPC') {
    return new SandboxError('resource_exhausted', `no inotify watches left to watch '${path}'`);
  }
  const mapped = fileError(error, path);
  return mapped instanceof Error ? mapped : new Error(String(mapped));
}
