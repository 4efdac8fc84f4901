import { hasCredentialSyscalls, type Libc, libc } from './native/libc.ts';
import type { ResolvedUser } from './users.ts';

const CAP_SETGID = 6;
const CAPABILITY_VERSION_3 = 0x20080522;

/**
 * Runs a synchronous spawn so that its child keeps the user's supplementary groups.
 *
 * libuv, when given a uid or gid, clears the child's supplementary groups (setgroups(0)) and
 * has no way to set others, and node-pty leaves the child the daemon's own. Both fork from
 * the calling thread, and on Linux credentials belong to a thread: for the length of the
 * spawn, this thread alone (raw system calls, not glibc's wrappers, which change every
 * thread) takes the user's groups and gid and sets CAP_SETGID aside, so the child inherits
 * the groups, libuv's setgroups(0) fails harmlessly, and its setgid(gid) is the unprivileged
 * one to the gid the thread already has; setuid then drops everything else. The thread gets
 * its own credentials back before anything else runs on it.
 *
 * Without the C library calls, or when the daemon is not root, the spawn runs as it is
 * (and the child gets only the user's primary group).
 */
export function spawnWithGroups<T>(user: ResolvedUser | undefined, spawn: () => T): T {
  const c = libc().libc;
  if (!user || !c || !hasCredentialSyscalls() || process.getuid?.() !== 0) return spawn();
  const saved = ThreadCredentials.read(c);
  saved.become(c, user.gid, user.groups);
  try {
    return spawn();
  } finally {
    saved.restore(c);
  }
}

class ThreadCredentials {
  private constructor(
    private readonly gids: [number, number, number],
    private readonly groups: number[],
    private readonly header: Buffer,
    private readonly capabilities: Buffer,
  ) {}

  static read(c: Libc): ThreadCredentials {
    const header = Buffer.alloc(8);
    header.writeUInt32LE(CAPABILITY_VERSION_3, 0); // pid 0: this thread
    const capabilities = Buffer.alloc(24);
    check(c, 'capget', c.syscall('capget', header, capabilities));
    // The main thread's ids, as glibc reports them (they are every thread's outside a spawn).
    const gid = process.getgid?.() ?? 0;
    const egid = process.getegid?.() ?? 0;
    return new ThreadCredentials([gid, egid, egid], process.getgroups?.() ?? [], header, capabilities);
  }

  become(c: Libc, gid: number, groups: number[]): void {
    try {
      check(
        c,
        'setgroups',
        c.syscall('setgroups', groups.length, Buffer.from(new Uint32Array(groups).buffer)),
      );
      check(c, 'setresgid', c.syscall('setresgid', gid, gid, gid));
      const without = Buffer.from(this.capabilities);
      without.writeUInt32LE((without.readUInt32LE(0) & ~(1 << CAP_SETGID)) >>> 0, 0);
      check(c, 'capset', c.syscall('capset', this.header, without));
    } catch (error) {
      this.restore(c);
      throw error;
    }
  }

  restore(c: Libc): void {
    const [gid, egid, sgid] = this.gids;
    try {
      check(c, 'capset', c.syscall('capset', this.header, this.capabilities));
      check(c, 'setresgid', c.syscall('setresgid', gid, egid, sgid));
      check(
        c,
        'setgroups',
        c.syscall('setgroups', this.groups.length, Buffer.from(new Uint32Array(this.groups).buffer)),
      );
    } catch (error) {
      // The daemon's main thread would go on with another user's groups: stop instead.
      console.error('sandboxd: cannot restore the daemon thread credentials after a spawn:', error);
      process.exit(70);
    }
  }
}

function check(c: Libc, call: string, result: number): void {
  if (result !== 0) throw new Error(`${call} failed: errno ${c.errno()}`);
}
