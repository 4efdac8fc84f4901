import { writeSync } from 'node:fs';
import { access, type FileHandle, mkdir, open, readdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

// The whole daemon moves, not only the thread that forks: a thread made during the spawn
// (node-pty starts one to wait for its child) must come back out with it.
const ENTER_FILE = 'cgroup.procs';

// After a kill or the leader's end, how long to wait between looks for an empty cgroup to
// remove; past the last, a sweep looks now and then.
const REMOVAL_DELAYS_MS = [0, 20, 100, 500, 2000];
const SWEEP_MS = 30_000;

/**
 * The daemon's folder in one cgroup hierarchy: `sandboxd-<pid namespace>-<pid>` below the
 * daemon's own cgroup, with one numbered cgroup in it per process. The daemon moves into a
 * process's cgroup for the length of its spawn and back; a cgroup is removed once released and
 * empty.
 */
export class CgroupFolder {
  private readonly groups = new Set<CgroupGroup>();
  private readonly sweep: NodeJS.Timeout;
  private readonly self = String(process.pid);

  private constructor(
    readonly base: string,
    private readonly home: FileHandle,
  ) {
    this.sweep = setInterval(() => {
      for (const group of this.groups) group.removeWhenEmpty();
    }, SWEEP_MS).unref();
  }

  /** Makes the folder below `ownDirectory`, after removing what dead daemons left there. */
  static async open(ownDirectory: string, namespace: string): Promise<CgroupFolder> {
    await removeStale(ownDirectory, namespace);
    const base = join(ownDirectory, `sandboxd-${namespace}-${process.pid}`);
    await mkdir(base);
    try {
      return new CgroupFolder(base, await open(join(ownDirectory, ENTER_FILE), 'w'));
    } catch (error) {
      await rmdir(base).catch(() => {});
      throw error;
    }
  }

  /** A new cgroup in the folder; `onRemoved` is called once it has been removed. */
  async group(name: string, onRemoved: () => void = () => {}): Promise<CgroupGroup> {
    const directory = join(this.base, name);
    await mkdir(directory);
    try {
      const handle = await open(join(directory, ENTER_FILE), 'w');
      const group = new CgroupGroup(this, directory, handle, onRemoved);
      this.groups.add(group);
      return group;
    } catch (error) {
      await rmdir(directory).catch(() => {});
      throw error;
    }
  }

  get directories(): string[] {
    return [...this.groups].map((group) => group.directory);
  }

  /** The daemon goes into the group (a spawn is under way). */
  moveIn(group: CgroupGroup): void {
    writeSync(group.handle.fd, this.self);
  }

  /** The daemon goes back to its own cgroup. */
  moveBack(): void {
    writeSync(this.home.fd, this.self);
  }

  /** True the first time. */
  forget(group: CgroupGroup): boolean {
    return this.groups.delete(group);
  }

  /** Waits (a while) for the groups to empty, removes them, then the folder. */
  async close(): Promise<void> {
    clearInterval(this.sweep);
    for (let i = 0; i < 100 && this.groups.size > 0; i++) {
      await Promise.all([...this.groups].map((group) => group.removeNow()));
      if (this.groups.size > 0) await sleep(20);
    }
    await this.home.close();
    await rmdir(this.base).catch((error: NodeJS.ErrnoException) => {
      console.error(`sandboxd: cannot remove ${this.base}: ${error.code}`);
    });
  }
}

/** One process's cgroup in a folder. */
export class CgroupGroup {
  private released = false;
  private removing = false;

  constructor(
    private readonly folder: CgroupFolder,
    readonly directory: string,
    readonly handle: FileHandle,
    private readonly onRemoved: () => void,
  ) {}

  /** Nothing more enters: the way in is closed. */
  closeEntry(): void {
    void this.handle.close().catch(() => {});
  }

  /** Nothing more enters; removed once empty. */
  release(): void {
    this.released = true;
    this.closeEntry();
    this.removeWhenEmpty();
  }

  /** Tries to remove the group a few times over the next seconds; the sweep goes on after that. */
  removeWhenEmpty(): void {
    if (!this.released || this.removing) return;
    this.removing = true;
    void (async () => {
      for (const delay of REMOVAL_DELAYS_MS) {
        if (delay > 0) await sleep(delay);
        if (await this.removeNow()) return;
      }
      this.removing = false;
    })();
  }

  /** Removes the group if it is empty; true once it is gone. */
  async removeNow(): Promise<boolean> {
    try {
      await rmdir(this.directory);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return false; // EBUSY: members left.
    }
    if (this.folder.forget(this)) this.onRemoved();
    return true;
  }
}

/**
 * What a daemon killed with SIGKILL left: the empty cgroups of daemons of this PID namespace
 * that no longer run. A cgroup that still has members stays (its processes are not ours to
 * end), and so does anything of another namespace, whose pids mean nothing here.
 */
export async function removeStale(parent: string, namespace: string): Promise<void> {
  const names = await readdir(parent).catch(() => [] as string[]);
  for (const name of names) {
    const [, ns, pid] = /^sandboxd-(\d+)-(\d+)$/.exec(name) ?? [];
    if (ns !== namespace || pid === undefined) continue;
    const running =
      Number(pid) !== process.pid &&
      (await access(`/proc/${pid}`).then(
        () => true,
        () => false,
      ));
    if (running) continue;
    const directory = join(parent, name);
    const groups = await readdir(directory, { withFileTypes: true }).catch(() => []);
    for (const group of groups) {
      if (group.isDirectory()) await rmdir(join(directory, group.name)).catch(() => {});
    }
    await rmdir(directory).catch(() => {});
  }
}
