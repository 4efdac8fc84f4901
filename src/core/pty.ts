import { closeSync, constants, openSync } from 'node:fs';
import type { IPty } from '@lydell/node-pty';
import { isExecutable } from './command-path.ts';
import { SandboxError } from './errors.ts';
import { F_GETFD, F_SETFD, FD_CLOEXEC, libc } from './native/libc.ts';
import type { OutputLog } from './output-log.ts';
import type { ProcessSpec, TerminalSize } from './start-request.ts';

type ForkAround = (fork: () => IPty) => IPty;
type NodePty = typeof import('@lydell/node-pty');

let nodePty: Promise<NodePty> | undefined;
/** node-pty, loaded with the first terminal: a native addon that most sandboxes never need. */
const loadNodePty = (): Promise<NodePty> => {
  nodePty ??= import('@lydell/node-pty');
  return nodePty;
};

export interface ChildExit {
  code: number | null;
  signal: number | null;
}

/**
 * A process in a pseudo-terminal: the pty is its controlling terminal (it is a session and
 * group leader), and everything it prints goes to the log as one `pty` stream.
 */
export class Terminal {
  readonly pid: number;
  /** Resolves once the child has been reaped and the pty read to its end. */
  readonly exited: Promise<ChildExit>;
  private readonly pty: IPty;
  private closed = false;

  private constructor(
    pty: NodePty,
    spec: ProcessSpec,
    size: TerminalSize,
    log: OutputLog,
    around: ForkAround,
  ) {
    this.pty = around(() => forkTerminal(pty, spec, size));
    this.pid = this.pty.pid;
    closeMasterOnExec(this.pty);
    // When the last holder of the terminal's slave side closes it, Linux answers reads of the
    // master with EIO and discards what the child printed last but was not read yet. Holding
    // a slave descriptor of our own keeps the master readable to the end: the library then
    // reads on after the child's exit until its short close timeout, and only then reports
    // the exit, by which time everything has been read. It is opened at once (a device, not
    // a disk file), before the child can exit.
    const slave = openSlave(this.pty);
    this.pty.onData((data: string | Buffer) => {
      log.append('pty', typeof data === 'string' ? Buffer.from(data) : data);
      // The disk lags behind: stop reading until it catches up, so that the process waits.
      if (log.congested) {
        this.pty.pause();
        void log.whenCalm().then(() => this.pty.resume());
      }
    });
    this.exited = new Promise((resolve) => {
      this.pty.onExit(({ exitCode, signal }) => {
        this.closed = true;
        if (slave !== undefined) closeSync(slave);
        resolve(signal ? { code: null, signal } : { code: exitCode, signal: null });
      });
    });
  }

  /** `around` runs the (synchronous) fork: in the process's cell, as its user. */
  static async start(
    spec: ProcessSpec,
    size: TerminalSize,
    log: OutputLog,
    around: ForkAround = (fork) => fork(),
  ): Promise<Terminal> {
    if (!(await isExecutable(spec.command, spec.env.PATH))) {
      throw new SandboxError('spawn_failed', `cannot start '${spec.command}': command not found`);
    }
    return new Terminal(await loadNodePty(), spec, size, log, around);
  }

  write(data: Buffer): void {
    if (this.closed) throw new SandboxError('stdin_not_writable', 'the terminal is closed');
    this.pty.write(data as unknown as string); // node-pty writes Buffers as they are; its types say string.
  }

  resize(size: TerminalSize): void {
    if (this.closed) return;
    this.pty.resize(size.cols, size.rows);
  }
}

function forkTerminal({ spawn }: NodePty, spec: ProcessSpec, size: TerminalSize): IPty {
  try {
    return spawn(spec.command, spec.args, {
      name: spec.env.TERM ?? 'xterm-256color',
      cols: size.cols,
      rows: size.rows,
      cwd: spec.cwd,
      env: spec.env,
      // Raw bytes, not strings: output is a byte log.
      encoding: null,
      ...(spec.user ? { uid: spec.user.uid, gid: spec.user.gid } : {}),
    });
  } catch (error) {
    throw new SandboxError(
      'spawn_failed',
      `cannot start '${spec.command}' in a terminal: ${(error as Error).message}`,
    );
  }
}

/**
 * node-pty leaves the master open across exec, so every process started after this terminal
 * (by the daemon or by node-pty's fork of the next terminal) would hold it: it could read and
 * write this terminal, and keep its pty allocated after the session ends. Node has no fcntl;
 * the C library does. The fork above is synchronous, so no start comes in between.
 */
function closeMasterOnExec(pty: IPty): void {
  // The library's Unix terminal keeps the master's descriptor here; its types do not list it.
  const fd = (pty as IPty & { _fd?: number })._fd;
  const c = libc().libc;
  if (fd === undefined || !c) return;
  const flags = c.fcntl(fd, F_GETFD, 0);
  if (flags >= 0) c.fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

function openSlave(pty: IPty): number | undefined {
  // The library's Unix terminal names its slave device; its types do not list the property.
  const path = (pty as IPty & { ptsName?: string }).ptsName;
  if (!path) return undefined;
  try {
    return openSync(path, constants.O_RDWR | constants.O_NOCTTY);
  } catch {
    return undefined;
  }
}
