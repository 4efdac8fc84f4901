import { type ChildProcess, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { SandboxError } from './errors.ts';
import { OutputLog, type OutputLogOptions, type StreamName } from './output-log.ts';
import { signalNumber, validateSignal } from './signals.ts';
import { type StdinOptions, StdinWriter } from './stdin.ts';
import type { ResolvedUser } from './users.ts';

export type ProcessStatus = 'running' | 'exited' | 'signaled';

/** What to run, with every default already applied. */
export interface ProcessSpec {
  command: string;
  args: string[];
  /** The complete environment of the process. */
  env: Record<string, string>;
  cwd?: string;
  user?: ResolvedUser;
  stdin: 'closed' | 'pipe';
  stdout: 'capture' | 'discard';
  stderr: 'capture' | 'discard';
  /** Unique among live processes; lets callers address the process without its pid. */
  name?: string;
}

export interface ProcessOptions {
  log: OutputLogOptions;
  stdin: StdinOptions;
  /** How long output may still drain after the leader exits before the log is closed. */
  drainGraceMs: number;
}

export interface ExitStatus {
  status: Exclude<ProcessStatus, 'running'>;
  exitCode: number | null;
  signal: number | null;
}

/**
 * A process the daemon started: the leader of its own process group, its stdin, its output
 * log and its end. It knows nothing of HTTP.
 */
export class SandboxProcess {
  readonly pid: number;
  readonly startedAt = Date.now();
  readonly log: OutputLog;
  /** The reason the process was killed, when the daemon did it (deadline). */
  timedOut = false;
  private endedAtMs: number | null = null;
  private exit: ExitStatus | null = null;
  private readonly stdinWriter: StdinWriter | null;
  private deadline: NodeJS.Timeout | undefined;
  /** Resolves when the leader has been reaped. */
  readonly exited: Promise<ExitStatus>;
  /** Resolves when the output has drained and the log is closed. */
  readonly done: Promise<void>;

  private constructor(
    readonly spec: ProcessSpec,
    child: ChildProcess,
    options: ProcessOptions,
  ) {
    this.pid = child.pid as number;
    this.log = new OutputLog(options.log);
    this.stdinWriter = child.stdin ? new StdinWriter(child.stdin, options.stdin) : null;
    const outputs: [StreamName, Readable | null][] = [
      ['stdout', child.stdout],
      ['stderr', child.stderr],
    ];
    const drained: Promise<void>[] = [];
    for (const [stream, readable] of outputs) {
      if (!readable) continue;
      readable.on('data', (chunk: Buffer) => this.log.append(stream, chunk));
      drained.push(new Promise((resolve) => readable.once('close', resolve)));
      readable.on('error', () => {});
    }
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.endedAtMs = Date.now();
        clearTimeout(this.deadline);
        this.exit =
          signal === null
            ? { status: 'exited', exitCode: code ?? 0, signal: null }
            : { status: 'signaled', exitCode: null, signal: signalNumber(signal) };
        resolve(this.exit);
      });
    });
    // The end is the leader's exit: a grandchild that keeps the pipes open gets a short grace
    // to flush, and no more.
    this.done = this.exited.then(async () => {
      let grace: NodeJS.Timeout | undefined;
      const graceOver = new Promise<void>((resolve) => {
        grace = setTimeout(resolve, options.drainGraceMs);
      });
      await Promise.race([Promise.all(drained), graceOver]);
      clearTimeout(grace);
      for (const [, readable] of outputs) readable?.destroy();
      child.stdin?.destroy();
      this.log.close();
      this.log.settle();
    });
  }

  /** Spawns the command as the leader of a new session and process group. */
  static async spawn(spec: ProcessSpec, options: ProcessOptions): Promise<SandboxProcess> {
    const child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: spec.env,
      detached: true,
      stdio: [
        spec.stdin === 'pipe' ? 'pipe' : 'ignore',
        spec.stdout === 'capture' ? 'pipe' : 'ignore',
        spec.stderr === 'capture' ? 'pipe' : 'ignore',
      ],
      ...(spec.user ? { uid: spec.user.uid, gid: spec.user.gid } : {}),
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (error: NodeJS.ErrnoException) => reject(spawnError(spec, error)));
    });
    child.on('error', () => {});
    return new SandboxProcess(spec, child, options);
  }

  get status(): ProcessStatus {
    return this.exit?.status ?? 'running';
  }

  get running(): boolean {
    return this.exit === null;
  }

  get exitCode(): number | null {
    return this.exit?.exitCode ?? null;
  }

  get signal(): number | null {
    return this.exit?.signal ?? null;
  }

  get endedAt(): number | null {
    return this.endedAtMs;
  }

  get stdinWritable(): boolean {
    return this.running && (this.stdinWriter?.writable ?? false);
  }

  get hasStdinPipe(): boolean {
    return this.stdinWriter !== null;
  }

  async writeStdin(data: Buffer): Promise<void> {
    if (!this.stdinWriter)
      throw new SandboxError('stdin_not_writable', 'stdin is not a pipe for this process');
    if (!this.running)
      throw new SandboxError('stdin_not_writable', 'stdin is not writable: the process has ended');
    await this.stdinWriter.write(data);
  }

  async closeStdin(): Promise<void> {
    if (!this.stdinWriter)
      throw new SandboxError('stdin_not_writable', 'stdin is not a pipe for this process');
    await this.stdinWriter.close();
  }

  /** Sends a signal to the process group (or only the leader). */
  sendSignal(signal: number, { group = true } = {}): void {
    validateSignal(signal);
    if (!this.running) throw new SandboxError('not_running', `process ${this.pid} is not running`);
    try {
      process.kill(group ? -this.pid : this.pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ESRCH') {
        throw new SandboxError('not_running', `process ${this.pid} is not running`);
      }
      throw error;
    }
  }

  /**
   * SIGKILL to the whole group. Also after the leader has ended, for descendants it left
   * behind in its group; a group with no members left is no error.
   */
  kill(): void {
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }

  /** Kills the group at the deadline and marks the process as timed out. */
  setDeadline(ms: number): void {
    if (!this.running) return;
    clearTimeout(this.deadline);
    this.deadline = setTimeout(() => {
      this.timedOut = true;
      this.kill();
    }, ms);
  }
}

function spawnError(spec: ProcessSpec, error: NodeJS.ErrnoException): SandboxError {
  const reason =
    error.code === 'ENOENT'
      ? 'command not found'
      : error.code === 'EACCES'
        ? 'permission denied'
        : (error.message ?? String(error));
  return new SandboxError('spawn_failed', `cannot start '${spec.command}': ${reason}`);
}
