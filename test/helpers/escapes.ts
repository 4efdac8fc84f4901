import { readFileSync } from 'node:fs';

/**
 * Shell lines that leave descendants outside the leader's process group or session, each
 * printing the pid of what it left (one line each).
 */
export const ESCAPES = {
  /** A child that starts a session of its own, and the leader waits for it. */
  sessionWhileRunning: `setsid sleep 1000 & echo $!; bash -c 'set -m; sleep 1000 & echo $!'; wait`,
  /** The same, and the leader exits at once: the first is an orphan in its own session, the second a job of an ended shell. */
  sessionAfterExit: `setsid sleep 1000 & echo $!; bash -c 'set -m; sleep 1000 & echo $!'`,
};

/** The pids printed one a line. */
export function pidsIn(lines: string[]): number[] {
  return lines.map((line) => Number(line.trim())).filter((pid) => Number.isInteger(pid) && pid > 0);
}

/**
 * SIGKILL to the `sleep` processes a test left, whatever became of them: cleanup. A pid that
 * is no longer a sleep (ended, and given to another process since) is left alone.
 */
export function killQuietly(pids: number[]): void {
  for (const pid of pids) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep') process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
}
