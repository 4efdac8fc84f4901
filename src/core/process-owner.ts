import { type ProcStat, readProcStat } from './proc-stat.ts';

/** What the rule needs of the process table: a process by pid, and whether it runs. */
export interface ProcessLookup {
  find(pid: number): { running: boolean } | undefined;
}

// A parent chain longer than this is a loop read across pid reuse, not a real one.
const MAX_ANCESTORS = 256;

/**
 * The pid of the daemon's process that an OS process belongs to, or undefined when it belongs
 * to none. Every process the daemon starts leads a session of its own (setsid), and sessions
 * are inherited and cannot be joined: so a process belongs to a table process when it, or an
 * ancestor by parent links, either is one that runs or is in the session one leads. The
 * session still names the family after its leader has ended (its orphans are then the
 * daemon's children). The walk stops at the daemon itself, or at init.
 *
 * Limits: a descendant that starts a session of its own is found through its parents only
 * while they live; and a leader's pid reused by a new session leader would match that one
 * too. Cheap: a stat per ancestor, and processes are rarely deep.
 */
export async function owningProcess(
  table: ProcessLookup,
  pid: number,
  readStat: (pid: number) => Promise<ProcStat | undefined> = readProcStat,
): Promise<number | undefined> {
  let current = pid;
  for (let step = 0; step < MAX_ANCESTORS; step++) {
    if (current <= 1 || current === process.pid) return undefined;
    if (table.find(current)?.running) return current;
    const stat = await readStat(current);
    if (stat === undefined) return undefined; // Gone meanwhile: its parent is not known any more.
    if (stat.session !== current && table.find(stat.session) !== undefined) return stat.session;
    current = stat.ppid;
  }
  return undefined;
}
