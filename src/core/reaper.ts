import {
  ECHILD,
  EINTR,
  libc,
  P_ALL,
  PR_SET_CHILD_SUBREAPER,
  WEXITED,
  WNOHANG,
  WNOWAIT,
} from './native/libc.ts';

/**
 * The children the daemon started itself. Their exits belong to whoever spawned them (libuv
 * reaps each of its children by pid, node-pty has a thread waiting on each of its own), so
 * the reaper leaves them alone. Every spawn in the daemon registers its child here, in the
 * same synchronous step as the spawn, and forgets it once its exit has been reported.
 */
export const ownChildren = {
  pids: new Set<number>(),
  add(pid: number): void {
    this.pids.add(pid);
  },
  delete(pid: number): void {
    this.pids.delete(pid);
  },
};

/** How a child ended: an exit code, or the signal that ended it. */
export interface ReapedExit {
  code: number | null;
  signal: number | null;
}

/**
 * Children the daemon started with posix_spawn, which nobody else waits for: the reaper reaps
 * each as it exits and hands its status on.
 */
const adopted = new Map<number, (exit: ReapedExit) => void>();

/** Gives the reaper a child to reap; registered in the same synchronous step as its spawn. */
export function reapFor(pid: number, onExit: (exit: ReapedExit) => void): void {
  adopted.set(pid, onExit);
}

let running: Reaper | undefined;

/** Whether a reaper runs, so that children started with posix_spawn will be reaped. */
export function reaperRuns(): boolean {
  return running !== undefined;
}

// siginfo_t: three ints, padding to the union on 64-bit, then si_pid first in the union.
const SI_PID_OFFSET = process.arch === 'x64' || process.arch === 'arm64' ? 16 : 12;
// A child of ours that is waiting to be reaped hides the zombies behind it from waitid; its
// owner reaps it on the same SIGCHLD, so look again shortly.
const RETRY_MS = 10;
// Zombies reaped in one go before the event loop gets a turn.
const BATCH = 1000;

export interface ReaperStatus {
  /** How orphans come to the daemon: as PID 1 of a namespace, as a subreaper, or not at all. */
  role: 'pid 1' | 'subreaper' | 'none';
  /** Why there is no reaping, when there is none. */
  problem?: string;
}

/**
 * Makes the daemon the reaper of its descendants (a subreaper, unless it is PID 1 already and
 * so the reaper of its namespace) and reaps every exited child it did not start itself, so
 * orphans of the processes it runs never pile up as zombies, and every descendant stays a
 * descendant of the daemon, however it detaches.
 */
export class Reaper {
  private retry: NodeJS.Timeout | undefined;
  private readonly info = Buffer.alloc(128);
  private readonly waitStatus = Buffer.alloc(4);
  private readonly onChild = () => this.reap();

  private constructor(readonly status: ReaperStatus) {}

  static start(): Reaper {
    const { libc: c, problem } = libc();
    if (!c) return new Reaper({ role: 'none', problem: `no C library calls: ${problem}` });
    let role: ReaperStatus['role'] = 'pid 1';
    if (process.pid !== 1) {
      if (c.prctl(PR_SET_CHILD_SUBREAPER, 1) !== 0) {
        return new Reaper({
          role: 'none',
          problem: `prctl(PR_SET_CHILD_SUBREAPER) failed: errno ${c.errno()}`,
        });
      }
      role = 'subreaper';
    }
    const reaper = new Reaper({ role });
    process.on('SIGCHLD', reaper.onChild);
    running = reaper;
    reaper.reap();
    return reaper;
  }

  stop(): void {
    process.off('SIGCHLD', this.onChild);
    clearTimeout(this.retry);
    if (running === this) running = undefined;
  }

  /** Reaps exited children that are not the daemon's own, without blocking. */
  private reap(): void {
    const c = libc().libc;
    if (!c) return;
    for (let i = 0; i < BATCH; i++) {
      this.info.fill(0);
      // Look without reaping: whose is the next exited child?
      if (c.waitid(P_ALL, 0, this.info, WEXITED | WNOHANG | WNOWAIT) !== 0) {
        const errno = c.errno();
        if (errno === EINTR) continue;
        if (errno !== ECHILD) console.error(`sandboxd: waitid failed: errno ${errno}`);
        return;
      }
      const pid = this.info.readInt32LE(SI_PID_OFFSET);
      if (pid === 0) return; // Children, but none has exited.
      const onExit = adopted.get(pid);
      if (onExit) {
        adopted.delete(pid);
        c.waitpidStatus(pid, this.waitStatus, WNOHANG);
        onExit(decodeStatus(this.waitStatus.readInt32LE(0)));
        continue;
      }
      if (ownChildren.pids.has(pid)) {
        this.later();
        return;
      }
      c.waitpid(pid, WNOHANG);
    }
    setImmediate(() => this.reap());
  }

  private later(): void {
    if (this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.reap();
    }, RETRY_MS).unref();
  }
}

/** A wait status as an exit code or a signal (the W* macros of <sys/wait.h>). */
function decodeStatus(status: number): ReapedExit {
  const signal = status & 0x7f;
  return signal === 0 ? { code: (status >> 8) & 0xff, signal: null } : { code: null, signal };
}
