import { writeSync } from 'node:fs';
import {
  access,
  type FileHandle,
  mkdir,
  open,
  readdir,
  readFile,
  readlink,
  rmdir,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SandboxError } from '../errors.ts';
import { cgroup1Location, cgroup2Location } from './cgroup-location.ts';
import type { Cell, Containment, ContainmentMode } from './types.ts';

/** What differs between the two kinds of hierarchy. */
interface Flavour {
  mode: ContainmentMode;
  name: string;
  /** SIGKILL to every member of `directory` and of the cells below it. */
  kill(directory: string, cells: string[]): Promise<void>;
}

const v2: Flavour = {
  mode: 'cgroup2',
  name: 'cgroup v2',
  // The kernel kills every member of the cgroup and of those below it, forks in flight included.
  kill: (directory) => writeFile(join(directory, 'cgroup.kill'), '1'),
};

const v1: Flavour = {
  mode: 'cgroup1',
  name: 'cgroup v1 freezer',
  // Frozen members cannot fork, so the list read while frozen is complete; they die once thawed.
  async kill(directory, cells) {
    const state = join(directory, 'freezer.state');
    await writeFile(state, 'FROZEN');
    for (let i = 0; i < 200 && (await readFile(state, 'utf8')).trim() !== 'FROZEN'; i++) {
      await sleep(i < 10 ? 1 : 10); // A member in uninterruptible sleep holds the freeze back.
    }
    try {
      for (const cell of [directory, ...cells]) await signalMembers(cell, 9);
    } finally {
      await writeFile(state, 'THAWED');
    }
  },
};

// The whole daemon moves, not only the thread that forks: a thread made during the spawn
// (node-pty starts one to wait for its child) must come back out with it.
const ENTER_FILE = 'cgroup.procs';

// After a kill or the leader's end, how long to wait between looks for an empty cell to remove;
// past the last, a sweep looks now and then.
const REMOVAL_DELAYS_MS = [0, 20, 100, 500, 2000];
const SWEEP_MS = 30_000;

/**
 * One cgroup per process, below one cgroup of the daemon's own (`sandboxd-<pid namespace>-<pid>`
 * beside the daemon's cgroup). A spawn moves the daemon into the new cgroup for the length of the fork
 * and back, so the child starts inside it and no early fork of its can escape. Kill is the
 * cgroup's: every member, whatever session or group it made for itself.
 */
export class CgroupContainment implements Containment {
  readonly mode: ContainmentMode;
  readonly description: string;
  private readonly cells = new Set<CgroupCell>();
  private spare: Promise<CgroupCell> | undefined;
  private count = 0;
  private closing = false;
  private readonly sweep: NodeJS.Timeout;
  private readonly self = String(process.pid);

  private constructor(
    private readonly flavour: Flavour,
    readonly base: string,
    private readonly home: FileHandle,
  ) {
    this.mode = flavour.mode;
    this.description = `${flavour.name} at ${base}`;
    this.sweep = setInterval(() => {
      for (const cell of this.cells) cell.removeWhenEmpty();
    }, SWEEP_MS).unref();
  }

  /** Opens the hierarchy the daemon can use, or throws why it cannot. */
  static async open(kind: 'cgroup2' | 'cgroup1'): Promise<CgroupContainment> {
    const flavour = kind === 'cgroup2' ? v2 : v1;
    const location = kind === 'cgroup2' ? await cgroup2Location() : await cgroup1Location('freezer');
    if (!location) throw new Error(`no ${flavour.name} hierarchy is mounted for this process`);
    const namespace = /\[(\d+)\]/.exec(await readlink('/proc/self/ns/pid').catch(() => ''))?.[1] ?? '0';
    await removeStale(location.ownDirectory, namespace);
    const base = join(location.ownDirectory, `sandboxd-${namespace}-${process.pid}`);
    await mkdir(base);
    let home: FileHandle | undefined;
    try {
      if (kind === 'cgroup2') await access(join(base, 'cgroup.kill')); // Linux 5.14 and later.
      home = await open(join(location.ownDirectory, ENTER_FILE), 'w');
      const containment = new CgroupContainment(flavour, base, home);
      // A first cell, entered and left once, shows that the daemon may move itself.
      const first = await containment.makeCell();
      await first.handle.write(containment.self);
      await home.write(containment.self);
      containment.spare = Promise.resolve(first);
      return containment;
    } catch (error) {
      await home?.close();
      await rmdir(join(base, '1')).catch(() => {});
      await rmdir(base).catch(() => {});
      throw error;
    }
  }

  cell(): Promise<Cell> {
    if (this.closing) return Promise.reject(shuttingDown());
    const taken = this.spare ?? this.makeCell();
    // The next start finds its cgroup made already.
    this.spare = this.makeCell();
    this.spare.catch(() => {
      this.spare = undefined;
    });
    return taken;
  }

  async signalAll(signal: number): Promise<void> {
    await Promise.all([...this.cells].map((cell) => cell.signal(signal)));
  }

  async killAll(): Promise<void> {
    // From here on nothing enters: the daemon itself is never inside what is killed.
    this.closing = true;
    try {
      await this.flavour.kill(
        this.base,
        [...this.cells].map((cell) => cell.directory),
      );
    } catch (error) {
      console.error(`sandboxd: cannot kill the processes in ${this.base}:`, error);
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.sweep);
    const spare = await this.spare?.catch(() => undefined);
    spare?.release();
    for (let i = 0; i < 100 && this.cells.size > 0; i++) {
      await Promise.all([...this.cells].map((cell) => cell.removeNow()));
      if (this.cells.size > 0) await sleep(20);
    }
    await this.home.close();
    await rmdir(this.base).catch((error: NodeJS.ErrnoException) => {
      console.error(`sandboxd: cannot remove ${this.base}: ${error.code}`);
    });
  }

  private async makeCell(): Promise<CgroupCell> {
    const directory = join(this.base, String(++this.count));
    await mkdir(directory);
    const cell = new CgroupCell(this, directory, await open(join(directory, ENTER_FILE), 'w'));
    this.cells.add(cell);
    return cell;
  }

  /** Called by a cell: the spawn is under way, the daemon goes in. */
  enter(cell: CgroupCell): void {
    if (this.closing) throw shuttingDown();
    writeSync(cell.handle.fd, this.self);
  }

  /** Called by a cell: the fork is done, the daemon goes back where it was. */
  leave(): void {
    try {
      writeSync(this.home.fd, this.self);
    } catch (error) {
      // Staying would put the daemon among the processes a kill of that cell ends.
      console.error('sandboxd: cannot move the daemon back to its own cgroup:', error);
      process.exit(70);
    }
  }

  killCell(cell: CgroupCell): Promise<void> {
    return this.flavour.kill(cell.directory, []);
  }

  forget(cell: CgroupCell): void {
    this.cells.delete(cell);
  }
}

class CgroupCell implements Cell {
  private released = false;
  private removing = false;

  constructor(
    private readonly owner: CgroupContainment,
    readonly directory: string,
    readonly handle: FileHandle,
  ) {}

  enter<T>(spawn: () => T): T {
    this.owner.enter(this);
    try {
      return spawn();
    } finally {
      this.owner.leave();
      void this.handle.close().catch(() => {});
    }
  }

  adopt(): void {}

  release(): void {
    this.released = true;
    void this.handle.close().catch(() => {});
    this.removeWhenEmpty();
  }

  async kill(): Promise<void> {
    try {
      await this.owner.killCell(this);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
        console.error(`sandboxd: cannot kill the processes in ${this.directory}:`, error);
    }
    this.removeWhenEmpty();
  }

  async signal(signal: number): Promise<void> {
    await signalMembers(this.directory, signal).catch(() => {});
  }

  /** Tries to remove the cell a few times over the next seconds; the sweep goes on after that. */
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

  /** Removes the cell if it is empty; true once it is gone. */
  async removeNow(): Promise<boolean> {
    try {
      await rmdir(this.directory);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return false; // EBUSY: members left.
    }
    this.owner.forget(this);
    return true;
  }
}

/**
 * What a daemon killed with SIGKILL left: the empty cgroups of daemons of this PID namespace
 * that no longer run. A cgroup that still has members stays (its processes are not ours to
 * end), and so does anything of another namespace, whose pids mean nothing here.
 */
async function removeStale(parent: string, namespace: string): Promise<void> {
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
    const cells = await readdir(directory, { withFileTypes: true }).catch(() => []);
    for (const cell of cells) {
      if (cell.isDirectory()) await rmdir(join(directory, cell.name)).catch(() => {});
    }
    await rmdir(directory).catch(() => {});
  }
}

async function signalMembers(directory: string, signal: number): Promise<void> {
  const text = await readFile(join(directory, 'cgroup.procs'), 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    // The daemon is inside a cell only during a spawn, never while this runs; skip it all the same.
    if (line === '' || Number(line) === process.pid) continue;
    try {
      process.kill(Number(line), signal);
    } catch {
      // Gone meanwhile.
    }
  }
}

function shuttingDown(): SandboxError {
  return new SandboxError('not_running', 'the daemon is shutting down');
}
