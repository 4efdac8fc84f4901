import { access, readFile, readlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SandboxError } from '../errors.ts';
import type { Limits } from '../start-request.ts';
import {
  enableControllers,
  limitWrites,
  type OpenedWrite,
  openCgroupFiles,
  readControllers,
  readV1OomKills,
  readV1Usage,
  readV2OomKills,
  readV2Usage,
  writeCgroupFiles,
  writeOpened,
} from './cgroup-files.ts';
import { CgroupFolder, type CgroupGroup, removeStale } from './cgroup-folder.ts';
import { type CgroupLocation, cgroup1Location, cgroup2Location } from './cgroup-location.ts';
import { type Controller, type LimitPlan, type LimitSources, planLimits } from './limit-plan.ts';
import type { Cell, Containment, ContainmentMode, Usage } from './types.ts';

/** What differs between the two kinds of hierarchy. */
interface Flavour {
  mode: ContainmentMode;
  name: string;
  version: 1 | 2;
  /** SIGKILL to every member of `directory` and of the cells below it. */
  kill(directory: string, cells: string[]): Promise<void>;
}

const v2: Flavour = {
  mode: 'cgroup2',
  name: 'cgroup v2',
  version: 2,
  // The kernel kills every member of the cgroup and of those below it, forks in flight included.
  kill: (directory) => writeFile(join(directory, 'cgroup.kill'), '1'),
};

const v1: Flavour = {
  mode: 'cgroup1',
  name: 'cgroup v1 freezer',
  version: 1,
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

// What a process's own cgroup v2 could limit, enabled for every cell when the daemon's cgroup
// passes them on.
const V2_LIMIT_CONTROLLERS: Controller[] = ['memory', 'cpu', 'pids'];
// The cgroup v1 hierarchies a process with limits may get a cgroup in.
const V1_CONTROLLERS: Controller[] = ['memory', 'cpu', 'cpuacct', 'pids'];

/**
 * One cgroup per process (a cell), in the daemon's folder of the hierarchy (see CgroupFolder).
 * A spawn moves the daemon into the new cgroup for the length of the fork and back, so the child
 * starts inside it and no early fork of its can escape. Kill is the cgroup's: every member,
 * whatever session or group it made for itself.
 *
 * Limits go into the cell's own cgroup where its hierarchy has the controller (cgroup v2 with
 * the controller passed on), else into a cgroup of the process's in the cgroup v1 hierarchy of
 * that controller (a hybrid machine), made only for processes with limits and entered the same
 * way, in the same synchronous step.
 */
export class CgroupContainment implements Containment {
  readonly mode: ContainmentMode;
  readonly description: string;
  readonly base: string;
  private readonly cells = new Set<CgroupCell>();
  private spare: Promise<CgroupCell> | undefined;
  private count = 0;
  private closing = false;
  /** The daemon's folder in each cgroup v1 hierarchy that holds limits, made on first use. */
  private readonly limitFolders = new Map<string, Promise<CgroupFolder>>();

  private constructor(
    private readonly flavour: Flavour,
    private readonly folder: CgroupFolder,
    private readonly namespace: string,
    /** Where limits can be had; v1 hierarchies by mount point, with the daemon's own cgroup there. */
    readonly sources: LimitSources,
    private readonly v1Locations: ReadonlyMap<string, CgroupLocation>,
  ) {
    this.mode = flavour.mode;
    this.base = folder.base;
    this.description = `${flavour.name} at ${folder.base}`;
  }

  /** Opens the hierarchy the daemon can use, or throws why it cannot. */
  static async open(kind: 'cgroup2' | 'cgroup1'): Promise<CgroupContainment> {
    const flavour = kind === 'cgroup2' ? v2 : v1;
    const location = kind === 'cgroup2' ? await cgroup2Location() : await cgroup1Location('freezer');
    if (!location) throw new Error(`no ${flavour.name} hierarchy is mounted for this process`);
    const namespace = /\[(\d+)\]/.exec(await readlink('/proc/self/ns/pid').catch(() => ''))?.[1] ?? '0';
    const folder = await CgroupFolder.open(location.ownDirectory, namespace);
    try {
      if (kind === 'cgroup2') await access(join(folder.base, 'cgroup.kill')); // Linux 5.14 and later.
      const { sources, v1Locations } = await limitSources(flavour, location, folder.base, namespace);
      const containment = new CgroupContainment(flavour, folder, namespace, sources, v1Locations);
      // A first cell, entered and left once, shows that the daemon may move itself.
      const first = await containment.makeCell();
      folder.moveIn(first.group);
      folder.moveBack();
      containment.spare = Promise.resolve(first);
      return containment;
    } catch (error) {
      await folder.close();
      throw error;
    }
  }

  async cell(limits?: Limits): Promise<Cell> {
    if (this.closing) throw shuttingDown();
    // Refused before anything is made when a limit cannot be held here.
    const plan = limits && planLimits(limits, this.sources);
    const taken = this.spare ?? this.makeCell();
    // The next start finds its cgroup made already.
    this.spare = this.makeCell();
    this.spare.catch(() => {
      this.spare = undefined;
    });
    const cell = await taken;
    if (limits && plan) {
      try {
        await cell.limit(limits, plan, (mountPoint) => this.limitFolder(mountPoint));
      } catch (error) {
        cell.release();
        if (error instanceof SandboxError) throw error;
        throw new SandboxError('invalid_argument', `limits: cannot apply them: ${(error as Error).message}`);
      }
    }
    return cell;
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
    const spare = await this.spare?.catch(() => undefined);
    spare?.release();
    await this.folder.close();
    // Their members were the cells' members, gone by now.
    const limitFolders = await Promise.all(
      [...this.limitFolders.values()].map((folder) => folder.catch(() => undefined)),
    );
    await Promise.all(limitFolders.map((folder) => folder?.close()));
  }

  private async makeCell(): Promise<CgroupCell> {
    let cell: CgroupCell | undefined;
    // The cell is forgotten with its own cgroup; its cgroup v1 ones go on their own.
    const group = await this.folder.group(String(++this.count), () => {
      if (cell) this.cells.delete(cell);
    });
    cell = new CgroupCell(this, this.folder, group, this.flavour.version, this.sources);
    this.cells.add(cell);
    return cell;
  }

  private limitFolder(mountPoint: string): Promise<CgroupFolder> {
    let folder = this.limitFolders.get(mountPoint);
    if (!folder) {
      const location = this.v1Locations.get(mountPoint) as CgroupLocation;
      folder = CgroupFolder.open(location.ownDirectory, this.namespace);
      // A failure is the start's; the next start tries again.
      folder.catch(() => this.limitFolders.delete(mountPoint));
      this.limitFolders.set(mountPoint, folder);
    }
    return folder;
  }

  /** Called by a cell: a spawn is about to move the daemon in. */
  assertOpen(): void {
    if (this.closing) throw shuttingDown();
  }

  killCell(cell: CgroupCell): Promise<void> {
    return this.flavour.kill(cell.directory, []);
  }
}

/** One cgroup the daemon enters for a spawn: the cell's own, or one of a v1 hierarchy that limits. */
interface Membership {
  folder: CgroupFolder;
  group: CgroupGroup;
}

class CgroupCell implements Cell {
  /** The cell's own cgroup first, then the limits' cgroup v1 ones. */
  private readonly memberships: Membership[];
  /** Limits written once the daemon has left (see LimitWrites). */
  private afterSpawn: OpenedWrite[] = [];
  /** Where each controller counts for this process, in cgroup v1 files. */
  private readonly v1Directories: Partial<Record<Controller, string>> = {};

  constructor(
    private readonly owner: CgroupContainment,
    folder: CgroupFolder,
    readonly group: CgroupGroup,
    private readonly version: 1 | 2,
    private readonly sources: LimitSources,
  ) {
    this.memberships = [{ folder, group }];
  }

  get directory(): string {
    return this.group.directory;
  }

  /** Writes the limits and makes the cgroups they need elsewhere; before the spawn. */
  async limit(limits: Limits, plan: LimitPlan, folderOf: (mountPoint: string) => Promise<CgroupFolder>) {
    const apply = async (version: 1 | 2, directory: string, controllers: Controller[]) => {
      for (const controller of controllers) {
        const { beforeSpawn, afterSpawn } = limitWrites(version, controller, limits);
        await writeCgroupFiles(directory, beforeSpawn);
        this.afterSpawn.push(...(await openCgroupFiles(directory, afterSpawn)));
        if (version === 1) this.v1Directories[controller] = directory;
      }
    };
    await apply(this.version, this.directory, plan.cell);
    for (const { mountPoint, controllers } of plan.v1) {
      const folder = await folderOf(mountPoint);
      // Named as the cell, so that a process's cgroups are found by one number in every hierarchy.
      const group = await folder.group(basename(this.directory));
      this.memberships.push({ folder, group });
      await apply(1, group.directory, controllers);
    }
  }

  enter<T>(spawn: () => T): T {
    this.owner.assertOpen();
    const entered: CgroupFolder[] = [];
    let spawned = false;
    try {
      for (const { folder, group } of this.memberships) {
        folder.moveIn(group);
        entered.push(folder);
      }
      const result = spawn();
      spawned = true;
      return result;
    } finally {
      for (const folder of entered) moveBackOrExit(folder);
      for (const { group } of this.memberships) group.closeEntry();
      if (spawned) this.tighten();
    }
  }

  adopt(): void {}

  release(): void {
    for (const { group } of this.memberships) group.release();
    this.closeLimitFiles();
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

  async usage(): Promise<Usage | undefined> {
    const hasV1 = Object.keys(this.v1Directories).length > 0;
    const [own, others] = await Promise.all([
      this.version === 2 ? readV2Usage(this.directory) : undefined,
      hasV1 ? readV1Usage(this.v1Directories) : undefined,
    ]);
    // The cell's own cgroup v2 counts first; v1 fills in what it does not count.
    const usage: Usage = { ...others, ...own };
    return Object.keys(usage).length === 0 ? undefined : usage;
  }

  async oomKills(): Promise<number | undefined> {
    if (this.v1Directories.memory !== undefined) return readV1OomKills(this.v1Directories.memory);
    if (this.version === 2 && this.sources.cell.controllers.has('memory'))
      return readV2OomKills(this.directory);
    return undefined;
  }

  removeWhenEmpty(): void {
    for (const { group } of this.memberships) group.removeWhenEmpty();
  }

  /** The CPU quota and the process count, written once the daemon is out (see LimitWrites). */
  private tighten(): void {
    if (this.afterSpawn.length === 0) return;
    try {
      writeOpened(this.afterSpawn);
    } catch (error) {
      // A process is never left running without the limits it asked for.
      console.error(`sandboxd: cannot apply the limits of ${this.directory}, killing its process:`, error);
      void this.kill();
    } finally {
      this.closeLimitFiles();
    }
  }

  private closeLimitFiles(): void {
    for (const { handle } of this.afterSpawn) void handle.close().catch(() => {});
    this.afterSpawn = [];
  }
}

/** Staying would put the daemon among the processes a kill of that cell ends, under its limits. */
function moveBackOrExit(folder: CgroupFolder): void {
  try {
    folder.moveBack();
  } catch (error) {
    console.error('sandboxd: cannot move the daemon back to its own cgroup:', error);
    process.exit(70);
  }
}

/**
 * Which controllers the cell's own cgroup has, why it lacks the others, and the cgroup v1
 * hierarchies for those. In cgroup v2 the daemon's folder passes on to the cells whatever of
 * memory, cpu and pids its parent passes on to it (the folder has no processes of its own, so
 * the kernel allows it); cpu.stat, which counts CPU time, is every v2 cgroup's.
 */
async function limitSources(
  flavour: Flavour,
  location: CgroupLocation,
  base: string,
  namespace: string,
): Promise<{ sources: LimitSources; v1Locations: Map<string, CgroupLocation> }> {
  const cellControllers = new Set<Controller>();
  const lacks = new Map<Controller, string>();
  const v1ByController = new Map<Controller, string>();
  const v1Locations = new Map<string, CgroupLocation>();
  if (flavour.version === 2) {
    const offered = await readControllers(base);
    const wanted = V2_LIMIT_CONTROLLERS.filter((controller) => offered.has(controller));
    const refused = await enableControllers(base, wanted);
    const enabled = await readControllers(base, 'cgroup.subtree_control');
    const passedOn = [...offered].join(' ') || 'none';
    for (const controller of V2_LIMIT_CONTROLLERS) {
      if (enabled.has(controller)) cellControllers.add(controller);
      else if (!offered.has(controller))
        lacks.set(
          controller,
          `cgroup v2 at ${location.ownDirectory} does not pass it on (its cgroup.subtree_control enables ${passedOn})`,
        );
      else
        lacks.set(
          controller,
          `cgroup v2 at ${base} refused to enable it (${refused.get(controller) ?? 'unknown'})`,
        );
    }
    cellControllers.add('cpuacct');
  }
  for (const controller of V1_CONTROLLERS) {
    if (cellControllers.has(controller)) continue;
    const found = await cgroup1Location(controller);
    // A mount listed but out of reach (another mounted over it) is as good as none.
    if (!found || !(await reachable(found.ownDirectory))) continue;
    if (flavour.version === 1 && found.mountPoint === location.mountPoint) {
      // Mounted with the freezer: the cell's own cgroup has it.
      cellControllers.add(controller);
      continue;
    }
    v1ByController.set(controller, found.mountPoint);
    v1Locations.set(found.mountPoint, found);
  }
  // What a daemon killed with SIGKILL left in these hierarchies goes now, not at its first use.
  for (const found of v1Locations.values()) await removeStale(found.ownDirectory, namespace);
  const describeCell = `cells are in the ${flavour.name} hierarchy at ${location.mountPoint}, which has none`;
  return {
    sources: {
      cell: { version: flavour.version, controllers: cellControllers },
      cellLacks: (controller) => lacks.get(controller) ?? describeCell,
      v1: v1ByController,
    },
    v1Locations,
  };
}

function reachable(directory: string): Promise<boolean> {
  return access(join(directory, 'cgroup.procs')).then(
    () => true,
    () => false,
  );
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
