import { constants, writeSync } from 'node:fs';
import { type FileHandle, open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Limits } from '../start-request.ts';
import type { Controller } from './limit-plan.ts';
import type { Usage } from './types.ts';

// The files of one cgroup that hold limits and counts, cgroup v2's and v1's. Everything takes the
// cgroup's directory, so that it can be tried on a tree of plain files laid out as the kernel's.

// Never O_CREAT: a file the kernel does not offer must fail (ENOENT), not appear.
const WRITE_EXISTING = constants.O_WRONLY | constants.O_TRUNC;

/** cgroup v2's cpu.max and v1's cfs period: the quota is CPU time per 100 ms. */
export const CPU_PERIOD_US = 100_000;
// The kernel refuses a quota below 1 ms.
const MIN_CPU_QUOTA_US = 1000;

/** One value for one file of a cgroup. */
export interface CgroupWrite {
  file: string;
  value: string;
  /** Written only where the kernel offers the file (swap accounting may be off). */
  ifPresent?: boolean;
}

/**
 * How a controller's limits are written into a cgroup. Memory goes in before the spawn. The CPU
 * quota and the process count go in after it, once the daemon has moved back out: the daemon
 * is inside for the length of the fork, and there its threads would count against pids.max
 * (a limit below their number would refuse the fork) and its CPU time against the quota (a
 * small one would stall the daemon's event loop until the next period). The child gets a few
 * microseconds of exec before they hold, too few to fork its way past them.
 */
export interface LimitWrites {
  beforeSpawn: CgroupWrite[];
  afterSpawn: CgroupWrite[];
}

export function limitWrites(version: 1 | 2, controller: Controller, limits: Limits): LimitWrites {
  const writes: LimitWrites = { beforeSpawn: [], afterSpawn: [] };
  if (controller === 'memory' && limits.memoryBytes !== undefined) {
    const bytes = String(limits.memoryBytes);
    // Without swap limited too, a process past its limit would be swapped out, not OOM-killed.
    writes.beforeSpawn.push(
      ...(version === 2
        ? [
            { file: 'memory.max', value: bytes },
            { file: 'memory.swap.max', value: '0', ifPresent: true },
          ]
        : [
            // memsw (memory + swap) may not be below the memory limit: memory first.
            { file: 'memory.limit_in_bytes', value: bytes },
            { file: 'memory.memsw.limit_in_bytes', value: bytes, ifPresent: true },
          ]),
    );
  }
  if (controller === 'cpu' && limits.cpus !== undefined) {
    const quota = String(Math.max(MIN_CPU_QUOTA_US, Math.round(limits.cpus * CPU_PERIOD_US)));
    if (version === 2) {
      writes.afterSpawn.push({ file: 'cpu.max', value: `${quota} ${CPU_PERIOD_US}` });
    } else {
      writes.beforeSpawn.push({ file: 'cpu.cfs_period_us', value: String(CPU_PERIOD_US) });
      writes.afterSpawn.push({ file: 'cpu.cfs_quota_us', value: quota });
    }
  }
  if (controller === 'pids' && limits.pids !== undefined) {
    writes.afterSpawn.push({ file: 'pids.max', value: String(limits.pids) });
  }
  return writes;
}

/** Writes each value in order; a missing optional file is skipped. */
export async function writeCgroupFiles(directory: string, writes: CgroupWrite[]): Promise<void> {
  for (const { file, value, ifPresent } of writes) {
    try {
      await writeFile(join(directory, file), value, { flag: WRITE_EXISTING });
    } catch (error) {
      if (!(ifPresent && (error as NodeJS.ErrnoException).code === 'ENOENT')) throw error;
    }
  }
}

/** A file opened ahead, to be written during the synchronous spawn step. */
export interface OpenedWrite {
  path: string;
  value: string;
  handle: FileHandle;
}

/** Opens the files now (asynchronously), for writeOpened to write later without waiting. */
export async function openCgroupFiles(directory: string, writes: CgroupWrite[]): Promise<OpenedWrite[]> {
  const opened: OpenedWrite[] = [];
  try {
    for (const { file, value, ifPresent } of writes) {
      const path = join(directory, file);
      try {
        opened.push({ path, value, handle: await open(path, constants.O_WRONLY) });
      } catch (error) {
        if (!(ifPresent && (error as NodeJS.ErrnoException).code === 'ENOENT')) throw error;
      }
    }
    return opened;
  } catch (error) {
    await Promise.all(opened.map(({ handle }) => handle.close().catch(() => {})));
    throw error;
  }
}

/** Writes the opened files, in order, at once; throws the first failure. */
export function writeOpened(opened: OpenedWrite[]): void {
  for (const { handle, value } of opened) writeSync(handle.fd, value);
}

/** cgroup v2: the controllers a cgroup has (`cgroup.controllers`) or passes on (`cgroup.subtree_control`). */
export async function readControllers(
  directory: string,
  file: 'cgroup.controllers' | 'cgroup.subtree_control' = 'cgroup.controllers',
): Promise<Set<string>> {
  const text = await readFile(join(directory, file), 'utf8').catch(() => '');
  return new Set(text.split(/\s+/).filter((name) => name !== ''));
}

/**
 * cgroup v2: enables each controller for the cgroups below `directory`, one write each so that
 * one refused does not hold back the rest. Returns why each refused one was (an errno code).
 */
export async function enableControllers(
  directory: string,
  controllers: string[],
): Promise<Map<string, string>> {
  const refused = new Map<string, string>();
  for (const controller of controllers) {
    try {
      await writeFile(join(directory, 'cgroup.subtree_control'), `+${controller}`, { flag: WRITE_EXISTING });
    } catch (error) {
      refused.set(controller, (error as NodeJS.ErrnoException).code ?? String(error));
    }
  }
  return refused;
}

/** cgroup v2: what the cgroup counts, each figure only where its file is (its controller enabled). */
export async function readV2Usage(directory: string): Promise<Usage> {
  const [memory, peak, cpuStat, pids] = await Promise.all(
    ['memory.current', 'memory.peak', 'cpu.stat', 'pids.current'].map((file) => readText(directory, file)),
  );
  return usage({
    memoryBytes: number(memory),
    memoryPeakBytes: number(peak),
    // cpu.stat is every cgroup's, with or without the cpu controller.
    cpuUsec: keyedNumber(cpuStat, 'usage_usec'),
    pids: number(pids),
  });
}

/** cgroup v1: what the cgroups of each controller count; a controller without one is left out. */
export async function readV1Usage(directories: Partial<Record<Controller, string>>): Promise<Usage> {
  const read = (controller: Controller, file: string) => {
    const directory = directories[controller];
    return directory === undefined ? Promise.resolve(undefined) : readText(directory, file);
  };
  const [memory, peak, cpuNs, pids] = await Promise.all([
    read('memory', 'memory.usage_in_bytes'),
    read('memory', 'memory.max_usage_in_bytes'),
    read('cpuacct', 'cpuacct.usage'),
    read('pids', 'pids.current'),
  ]);
  const nanoseconds = number(cpuNs);
  return usage({
    memoryBytes: number(memory),
    memoryPeakBytes: number(peak),
    cpuUsec: nanoseconds === undefined ? undefined : Math.floor(nanoseconds / 1000),
    pids: number(pids),
  });
}

/** cgroup v2: OOM kills among the cgroup's members (memory.events); undefined without the memory controller. */
export async function readV2OomKills(directory: string): Promise<number | undefined> {
  return keyedNumber(await readText(directory, 'memory.events'), 'oom_kill');
}

/** cgroup v1: OOM kills in a memory cgroup (memory.oom_control, Linux 4.13 and later). */
export async function readV1OomKills(directory: string): Promise<number | undefined> {
  return keyedNumber(await readText(directory, 'memory.oom_control'), 'oom_kill');
}

function readText(directory: string, file: string): Promise<string | undefined> {
  return readFile(join(directory, file), 'utf8').catch(() => undefined);
}

function number(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text.trim());
  return text.trim() !== '' && Number.isFinite(value) ? value : undefined;
}

/** The number after `key ` on a line of a flat keyed file (`oom_kill 3`). */
function keyedNumber(text: string | undefined, key: string): number | undefined {
  const line = text?.split('\n').find((entry) => entry.startsWith(`${key} `));
  return number(line?.slice(key.length + 1));
}

/** Only the figures that were read. */
function usage(figures: Usage): Usage {
  return Object.fromEntries(Object.entries(figures).filter(([, value]) => value !== undefined));
}
