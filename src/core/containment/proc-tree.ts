import { readdir } from 'node:fs/promises';
import { readProcStat } from '../proc-stat.ts';
import type { Limits } from '../start-request.ts';
import { refuseLimits } from './limit-plan.ts';
import type { Cell, Containment, Usage } from './types.ts';

interface ProcEntry {
  pid: number;
  ppid: number;
  pgrp: number;
  session: number;
}

// Rounds of stop-and-look before a kill gives up looking for more (each finds what forked
// while the last was stopping its parents).
const MAX_ROUNDS = 50;

/**
 * No cgroups: the descendants are found by walking /proc. A process's family is what its
 * leader's parent links reach while the leader runs, and every member of its session and of
 * its process group (the leader's pid names both): that covers shell jobs in groups of their
 * own. A descendant that starts a session of its own is found through its parent as long as
 * that parent lives; orphaned, it becomes a child of the daemon (its subreaper), which ends it
 * at shutdown. A kill stops the family first, looks again until nothing new appears, then
 * kills, so forks during the walk do not escape.
 */
export class ProcTreeContainment implements Containment {
  readonly mode = 'proc';
  readonly description = 'a walk of /proc (no cgroup available)';

  async cell(limits?: Limits): Promise<Cell> {
    // Without cgroups nothing can hold a limit: refused, never ignored.
    if (limits) refuseLimits(limits, 'containment is proc (a walk of /proc), which has no cgroups');
    return new ProcCell();
  }

  async signalAll(signal: number): Promise<void> {
    const table = await processTable();
    for (const pid of family(table, (p) => p.pid === process.pid)) {
      if (pid !== process.pid) send(pid, signal);
    }
  }

  async killAll(): Promise<void> {
    await stopAndKill((table) => {
      const members = family(table, (p) => p.pid === process.pid);
      members.delete(process.pid);
      return members;
    });
  }

  async close(): Promise<void> {}
}

class ProcCell implements Cell {
  private leader: number | undefined;
  private leaderRuns = false;

  enter<T>(spawn: () => T): T {
    return spawn();
  }

  adopt(pid: number): void {
    this.leader = pid;
    this.leaderRuns = true;
  }

  release(): void {
    this.leaderRuns = false;
  }

  async kill(): Promise<void> {
    await stopAndKill((table) => this.members(table));
  }

  async usage(): Promise<Usage | undefined> {
    return undefined;
  }

  async oomKills(): Promise<number | undefined> {
    return undefined;
  }

  private members(table: ProcEntry[]): Set<number> {
    const leader = this.leader;
    if (leader === undefined) return new Set();
    // Once the leader is reaped its pid may be another process's: only its session and group
    // still name the family then (a pid reused by a session leader of its own would match too).
    const members = family(
      table,
      (p) => (this.leaderRuns && p.pid === leader) || p.session === leader || p.pgrp === leader,
    );
    members.delete(process.pid);
    return members;
  }
}

/** The processes that match, and all their descendants by parent links. */
function family(table: ProcEntry[], root: (entry: ProcEntry) => boolean): Set<number> {
  const children = new Map<number, number[]>();
  for (const entry of table) children.set(entry.ppid, [...(children.get(entry.ppid) ?? []), entry.pid]);
  const members = new Set<number>();
  const queue = table.filter(root).map((entry) => entry.pid);
  while (queue.length > 0) {
    const pid = queue.pop() as number;
    if (members.has(pid)) continue;
    members.add(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return members;
}

/** SIGSTOP to the family until a look finds no one new, then SIGKILL to all (and SIGCONT, so none stays stopped). */
async function stopAndKill(membersOf: (table: ProcEntry[]) => Set<number>): Promise<void> {
  const stopped = new Set<number>();
  try {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      let fresh = 0;
      for (const pid of membersOf(await processTable())) {
        if (stopped.has(pid)) continue;
        send(pid, 19);
        stopped.add(pid);
        fresh++;
      }
      if (fresh === 0) break;
    }
  } finally {
    for (const pid of stopped) send(pid, 9);
    for (const pid of stopped) send(pid, 18);
  }
}

/** Every live process: its parent, group and session, read without blocking the event loop. */
async function processTable(): Promise<ProcEntry[]> {
  const names = await readdir('/proc').catch(() => [] as string[]);
  const entries = await Promise.all(
    names
      .filter((name) => /^\d+$/.test(name))
      .map(async (name): Promise<ProcEntry | undefined> => {
        const stat = await readProcStat(Number(name));
        if (stat === undefined || stat.state === 'Z' || stat.state === 'X') return undefined; // Gone, or a zombie.
        return { pid: stat.pid, ppid: stat.ppid, pgrp: stat.pgrp, session: stat.session };
      }),
  );
  return entries.filter((entry) => entry !== undefined);
}

function send(pid: number, signal: number): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Gone meanwhile.
  }
}
