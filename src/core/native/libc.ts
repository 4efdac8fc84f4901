import koffi, { type LibraryHandle } from 'koffi';

/**
 * The few C library calls Node does not offer, through koffi (prebuilt binaries in npm
 * packages, no compiler at install). Loaded once; absent when koffi cannot load on this
 * platform, and every caller then does without.
 */
export interface Libc {
  /** prctl(2) with one argument. */
  prctl(option: number, argument: number): number;
  /** waitid(2) with a siginfo_t buffer. */
  waitid(idType: number, id: number, info: Buffer, options: number): number;
  /** waitpid(2), discarding the status. */
  waitpid(pid: number, options: number): number;
  /** waitpid(2) into a 4-byte buffer for the status. */
  waitpidStatus(pid: number, status: Buffer, options: number): number;
  /** A raw system call on the calling thread only (glibc's wrappers of some apply to every thread). */
  syscall(name: SyscallName, ...args: (number | Buffer)[]): number;
  /** fcntl(2) with an integer argument. */
  fcntl(fd: number, command: number, argument: number): number;
  /** errno after the last call that failed. */
  errno(): number;
}

export type SyscallName = 'setgroups' | 'setresgid' | 'capget' | 'capset';

// The generic table (arm64) and x86-64's own.
const SYSCALLS: Partial<Record<NodeJS.Architecture, Record<SyscallName, number>>> = {
  x64: { setgroups: 116, setresgid: 119, capget: 125, capset: 126 },
  arm64: { setgroups: 159, setresgid: 149, capget: 90, capset: 91 },
};

export const PR_SET_CHILD_SUBREAPER = 36;
export const P_ALL = 0;
export const WNOHANG = 1;
export const WEXITED = 4;
export const WNOWAIT = 0x01000000;
export const F_GETFD = 1;
export const F_SETFD = 2;
export const FD_CLOEXEC = 1;
export const ECHILD = 10;
export const EINTR = 4;

/** Native functions, or the reason they could not be declared, which the daemon reports. */
export type Loaded<T> = { value: T; problem?: undefined } | { value: undefined; problem: string };

let runningProgram: LibraryHandle | undefined;

/**
 * The one loader of native code: declares functions of the running program's own symbols,
 * which include the C library's (glibc or musl alike). Each caller keeps what it gets.
 */
export function loadNative<T>(declare: (self: LibraryHandle) => T): Loaded<T> {
  if (process.platform !== 'linux') return { value: undefined, problem: 'not Linux' };
  try {
    runningProgram ??= koffi.load(null);
    return { value: declare(runningProgram) };
  } catch (error) {
    return { value: undefined, problem: (error as Error).message };
  }
}

let loaded: Loaded<Libc> | undefined;

/** The C library, or undefined with the reason it could not be loaded. */
export function libc(): { libc: Libc | undefined; problem?: string } {
  loaded ??= loadNative(declareLibc);
  return { libc: loaded.value, problem: loaded.problem };
}

function declareLibc(self: LibraryHandle): Libc {
  const numbers = SYSCALLS[process.arch];
  const prctl = self.func(
    'int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)',
  );
  const waitid = self.func('int waitid(int idtype, uint32_t id, void *infop, int options)');
  const waitpid = self.func('int waitpid(int pid, void *status, int options)');
  const syscall = self.func('long syscall(long number, ...)');
  const fcntl = self.func('int fcntl(int fd, int cmd, ...)');
  return {
    prctl: (option, argument) => prctl(option, argument, 0, 0, 0),
    waitid: (idType, id, info, options) => waitid(idType, id, info, options),
    waitpid: (pid, options) => waitpid(pid, null, options),
    waitpidStatus: (pid, status, options) => waitpid(pid, status, options),
    syscall(name, ...args) {
      if (!numbers) throw new Error(`no system call numbers for ${process.arch}`);
      const typed = args.flatMap((arg): (string | number | Buffer)[] =>
        typeof arg === 'number' ? ['long', arg] : ['void *', arg],
      );
      return Number(syscall(numbers[name], ...typed));
    },
    fcntl: (fd, command, argument) => fcntl(fd, command, 'int', argument),
    errno: () => koffi.errno(),
  };
}

/** Whether raw credential system calls are known for this processor. */
export function hasCredentialSyscalls(): boolean {
  return SYSCALLS[process.arch] !== undefined;
}
