import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import koffi, { type LibraryHandle } from 'koffi';
import { type Loaded, loadNative } from './libc.ts';

/**
 * Starting a process with posix_spawn(3), which glibc and musl do with vfork: the daemon's
 * thread waits only while the child execs, however big the daemon's memory is. Node's spawn
 * forks, copying the page tables of the whole daemon, which costs about a millisecond at the
 * daemon's usual size and grows with it, all of it on the event loop.
 *
 * The child leads a new session (POSIX_SPAWN_SETSID), starts with every signal at its default
 * and none blocked (as libuv does for its children), and its output goes to pipes the daemon
 * reads as sockets. Its exit is not libuv's to see: whoever spawns reaps it (see Reaper).
 */

export interface FastSpawnOptions {
  /** An absolute path: posix_spawn looks nothing up in PATH here. */
  file: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  stdin: 'pipe' | 'ignore';
  stdout: 'pipe' | 'ignore';
  stderr: 'pipe' | 'ignore';
}

export interface FastChild {
  pid: number;
  stdin: Socket | null;
  stdout: Socket | null;
  stderr: Socket | null;
}

const O_RDONLY = 0;
const O_WRONLY = 1;
const O_CLOEXEC = 0o2000000;
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80;
const SIGKILL = 9;
const SIGSTOP = 19;
// Larger than glibc's and musl's opaque structures, which the init functions fill in.
const OPAQUE_BYTES = 1024;
const SIGSET_BYTES = 128;

interface Calls {
  posixSpawn(
    pid: Buffer,
    file: string,
    actions: Buffer,
    attributes: Buffer,
    argv: (string | null)[],
    envp: (string | null)[],
  ): number;
  actionsInit(actions: Buffer): number;
  actionsDestroy(actions: Buffer): number;
  addDup2(actions: Buffer, fd: number, to: number): number;
  addOpen(actions: Buffer, fd: number, path: string, flags: number, mode: number): number;
  addChdir(actions: Buffer, path: string): number;
  attrInit(attributes: Buffer): number;
  attrDestroy(attributes: Buffer): number;
  setFlags(attributes: Buffer, flags: number): number;
  setSigDefault(attributes: Buffer, set: Buffer): number;
  setSigMask(attributes: Buffer, set: Buffer): number;
  sigFillSet(set: Buffer): number;
  sigEmptySet(set: Buffer): number;
  sigDelSet(set: Buffer, signal: number): number;
  pipe2(fds: Buffer, flags: number): number;
  errno(): number;
}

let calls: Loaded<Calls> | undefined;

function declareCalls(c: LibraryHandle): Calls {
  return {
    posixSpawn: c.func(
      'int posix_spawn(void *pid, const char *path, void *actions, void *attrp, const char **argv, const char **envp)',
    ),
    actionsInit: c.func('int posix_spawn_file_actions_init(void *actions)'),
    actionsDestroy: c.func('int posix_spawn_file_actions_destroy(void *actions)'),
    addDup2: c.func('int posix_spawn_file_actions_adddup2(void *actions, int fd, int newfd)'),
    addOpen: c.func(
      'int posix_spawn_file_actions_addopen(void *actions, int fd, const char *path, int oflag, uint32_t mode)',
    ),
    // Missing from an old C library: Node's spawn then does it all.
    addChdir: c.func('int posix_spawn_file_actions_addchdir_np(void *actions, const char *path)'),
    attrInit: c.func('int posix_spawnattr_init(void *attr)'),
    attrDestroy: c.func('int posix_spawnattr_destroy(void *attr)'),
    setFlags: c.func('int posix_spawnattr_setflags(void *attr, short flags)'),
    setSigDefault: c.func('int posix_spawnattr_setsigdefault(void *attr, void *set)'),
    setSigMask: c.func('int posix_spawnattr_setsigmask(void *attr, void *set)'),
    sigFillSet: c.func('int sigfillset(void *set)'),
    sigEmptySet: c.func('int sigemptyset(void *set)'),
    sigDelSet: c.func('int sigdelset(void *set, int signum)'),
    pipe2: c.func('int pipe2(void *fds, int flags)'),
    errno: () => koffi.errno(),
  };
}

function loaded(): Loaded<Calls> {
  calls ??= loadNative(declareCalls);
  return calls;
}

/** Whether posix_spawn can be used here. */
export function canSpawnFast(): boolean {
  return loaded().value !== undefined;
}

/** A failure of the C library, shaped as Node's errors are (code, errno, syscall). */
function systemError(call: string, errno: number): NodeJS.ErrnoException {
  const names: Record<number, string> = {
    2: 'ENOENT',
    8: 'ENOEXEC',
    13: 'EACCES',
    20: 'ENOTDIR',
    24: 'EMFILE',
    12: 'ENOMEM',
  };
  const code = names[errno] ?? `E${errno}`;
  const error: NodeJS.ErrnoException = new Error(`${call} failed: ${code}`);
  error.code = code;
  error.errno = -errno;
  error.syscall = call;
  return error;
}

/**
 * Starts a process; throws an errno error (ENOENT, EACCES, …) when it cannot be started, in
 * which case nothing is left behind. The caller must reap the pid.
 */
export function spawnFast(options: FastSpawnOptions): FastChild {
  const { value: c, problem } = loaded();
  if (!c) throw new Error(`posix_spawn is not available: ${problem}`);
  // posix_spawn and its helpers return the error number; the signal-set calls set errno.
  const check = (call: string, result: number) => {
    if (result !== 0) throw systemError(call, result);
  };
  const checkErrno = (call: string, result: number) => {
    if (result !== 0) throw systemError(call, c.errno());
  };
  const pipes: [number, number][] = [];
  const makePipe = (): [number, number] => {
    const fds = Buffer.alloc(8);
    if (c.pipe2(fds, O_CLOEXEC) !== 0) throw systemError('pipe2', c.errno());
    const pair: [number, number] = [fds.readInt32LE(0), fds.readInt32LE(4)];
    pipes.push(pair);
    return pair;
  };
  const actions = Buffer.alloc(OPAQUE_BYTES);
  const attributes = Buffer.alloc(OPAQUE_BYTES);
  check('posix_spawn_file_actions_init', c.actionsInit(actions));
  const attributesReady = c.attrInit(attributes);
  try {
    check('posix_spawnattr_init', attributesReady);
    // [read end, write end] of each pipe; the child's end goes to its descriptor.
    const stdin = options.stdin === 'pipe' ? makePipe() : null;
    const stdout = options.stdout === 'pipe' ? makePipe() : null;
    const stderr = options.stderr === 'pipe' ? makePipe() : null;
    const wire = (pipe: number | undefined, fd: number, nullFlags: number) =>
      check(
        'posix_spawn_file_actions',
        pipe === undefined ? c.addOpen(actions, fd, '/dev/null', nullFlags, 0) : c.addDup2(actions, pipe, fd),
      );
    wire(stdin?.[0], 0, O_RDONLY);
    wire(stdout?.[1], 1, O_WRONLY);
    wire(stderr?.[1], 2, O_WRONLY);
    if (options.cwd !== undefined) {
      check('posix_spawn_file_actions_addchdir_np', c.addChdir(actions, options.cwd));
    }
    const all = Buffer.alloc(SIGSET_BYTES);
    checkErrno('sigfillset', c.sigFillSet(all));
    checkErrno('sigdelset', c.sigDelSet(all, SIGKILL));
    checkErrno('sigdelset', c.sigDelSet(all, SIGSTOP));
    const none = Buffer.alloc(SIGSET_BYTES);
    checkErrno('sigemptyset', c.sigEmptySet(none));
    check('posix_spawnattr_setsigdefault', c.setSigDefault(attributes, all));
    check('posix_spawnattr_setsigmask', c.setSigMask(attributes, none));
    // Without these the child would share the daemon's session and group, and kill(-pid) would
    // miss it: a failure here must stop the start, not pass unseen.
    check(
      'posix_spawnattr_setflags',
      c.setFlags(attributes, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK),
    );
    const pidBuffer = Buffer.alloc(4);
    const argv = [options.file, ...options.args, null];
    const envp = [...Object.entries(options.env).map(([key, value]) => `${key}=${value}`), null];
    const result = c.posixSpawn(pidBuffer, options.file, actions, attributes, argv, envp);
    if (result !== 0) throw systemError('posix_spawn', result);
    // The child has its ends; the daemon keeps the others.
    for (const pipe of [stdin?.[0], stdout?.[1], stderr?.[1]]) if (pipe !== undefined) closeSync(pipe);
    pipes.length = 0;
    return {
      pid: pidBuffer.readInt32LE(0),
      stdin: stdin ? new Socket({ fd: stdin[1], readable: false, writable: true }) : null,
      stdout: stdout ? new Socket({ fd: stdout[0], readable: true, writable: false }) : null,
      stderr: stderr ? new Socket({ fd: stderr[0], readable: true, writable: false }) : null,
    };
  } finally {
    c.actionsDestroy(actions);
    if (attributesReady === 0) c.attrDestroy(attributes);
    // Left only when the spawn failed.
    for (const [read, write] of pipes) {
      closeSync(read);
      closeSync(write);
    }
  }
}
