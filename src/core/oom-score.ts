import { closeSync, openSync, writeSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';

/**
 * The daemon's oom_score_adj. -1000 makes it the one process the kernel's OOM killer never
 * picks: the daemon is the sandbox's only way in, and for the length of a spawn it sits inside
 * the child's cgroup, where a memory limit's OOM killer chooses among the members (by resident
 * size, which the daemon would win).
 */
export const DAEMON_OOM_SCORE_ADJ = -1000;

/** What children start with: the kernel's default. */
const CHILD_OOM_SCORE_ADJ = '0';

// Whether children inherit a score other than the default from the daemon (its own lowered, or
// whatever it was started with), and so must be given the default back.
let childrenNeedReset = false;

/**
 * Lowers the daemon's own oom_score_adj, before it starts anything, and says how it went (for
 * the start-up line). Lowering it takes CAP_SYS_RESOURCE, which container runtimes do not grant
 * by default: without it the daemon goes on at the score it had, and says so.
 */
export async function protectDaemonFromOom(): Promise<string> {
  let refused: string | undefined;
  try {
    await writeFile('/proc/self/oom_score_adj', String(DAEMON_OOM_SCORE_ADJ));
  } catch (error) {
    refused = (error as NodeJS.ErrnoException).code ?? String(error);
  }
  const own = (await readFile('/proc/self/oom_score_adj', 'utf8').catch(() => CHILD_OOM_SCORE_ADJ)).trim();
  childrenNeedReset = own !== CHILD_OOM_SCORE_ADJ;
  return refused === undefined
    ? `the OOM killer spares the daemon (oom_score_adj ${own})`
    : `oom_score_adj left at ${own} (lowering it takes CAP_SYS_RESOURCE: ${refused})`;
}

/**
 * Gives a child just spawned the default score back. Called in the spawn's synchronous step,
 * as soon as its pid is known: the child is exec'ing meanwhile, and what it forks before this
 * write (within microseconds of its exec, which no real program manages) keeps the daemon's
 * score. Nothing to do when the daemon's own score is the default.
 */
export function resetChildOomScore(pid: number): void {
  if (!childrenNeedReset) return;
  let fd: number | undefined;
  try {
    fd = openSync(`/proc/${pid}/oom_score_adj`, 'w');
    writeSync(fd, CHILD_OOM_SCORE_ADJ);
  } catch (error) {
    const { code } = error as NodeJS.ErrnoException;
    // Gone already: a command that ended at once.
    if (code === 'ENOENT' || code === 'ESRCH') return;
    // Below the floor the daemon was started with (its supervisor's choice): said once.
    console.error(`sandboxd: cannot reset the oom_score_adj of children (${code}); they keep the daemon's`);
    childrenNeedReset = false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
