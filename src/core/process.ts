import { ChildProcess, spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { CommandPaths } from './command-path.ts';
import type { Cell, Usage } from './containment/index.ts';
import { spawnWithGroups } from './credentials.ts';
import { SandboxError } from './errors.ts';
import type { StreamName } from './log-record.ts';
import { type LongTimeout, setLongTimeout } from './long-timeout.ts';
import { canSpawnFast, type FastChild, spawnFast } from './native/spawn.ts';
import { resetChildOomScore } from './oom-score.ts';
import { OutputLog, type OutputLogOptions } from './output-log.ts';
import { type ChildExit, Terminal } from './pty.ts';
import { ownChildren, reaperRuns, reapFor } from './reaper.ts';
import { signalNumber, validateSignal } from './signals.ts';
import { clampTerminalSize, type ProcessSpec, type TerminalSize } from './start-request.ts';
import { type StdinOptions, StdinWriter } from './stdin.ts';

export type ProcessStatus = 'running' | 'exited' | 'signaled' | 'oom_killed';

export interface ProcessOptions {
  log: OutputLogOptions;
  stdin: StdinOptions;
  /** How long output may still drain after the leader exits before the log is closed. */
  drainGraceMs: number;
  /** Where the process and all its descendants will live. */
  cell: Cell;
}

export interface ExitStatus {
  /** `oom_killed` whenever oomKilled is; exitCode and signal still say how the leader ended. */
  status: Exclude<ProcessStatus, 'running'>;
  exitCode: number | null;
  signal: number | null;
  /**
   * The kernel's OOM killer ended a member of the process's cgroup (the leader, or a
   * descendant it then exited over), as the cgroup counted it; never guessed from a SIGKILL.
   * Only a process whose cell has a memory-counting cgroup can report it.
   */
  oomKilled: boolean;
}

/** How the daemon talks to a child: pipes, or a pseudo-terminal. */
interface ChildIo {
  readonly pid: number;
  readonly exited: Promise<ChildExit>;
  /** Resolves when every output pipe has been read to its end. */
  readonly drained: Promise<void>;
  readonly stdin: StdinWriter | null;
  readonly terminal: Terminal | null;
  /** Stops reading and writing: called once the output has drained or the grace is over. */
  detach(): void;
}

/**
 * A process the daemon started: the leader of its own process group, its input, its output
 * log and its end. It knows nothing of HTTP.
 */
export class SandboxProcess {
  readonly pid: number;
  readonly startedAt = Date.now();
  /** The reason the process was killed, when the daemon did it (deadline). */
  timedOut = false;
  private endedAtMs: number | null = null;
  private exit: ExitStatus | null = null;
  private deadline: LongTimeout | undefined;
  private terminalSize: TerminalSize | undefined;
  /** Resolves when the leader has been reaped. */
  readonly exited: Promise<ExitStatus>;
  /** Resolves when the output has drained and the log is closed. */
  readonly done: Promise<void>;

  private constructor(
    readonly spec: ProcessSpec,
    readonly log: OutputLog,
    private readonly io: ChildIo,
    private readonly cell: Cell,
    drainGraceMs: number,
  ) {
    this.pid = io.pid;
    this.terminalSize = spec.pty;
    this.exited = io.exited.then(async ({ code, signal }) => {
      const endedAt = Date.now();
      // Read before the cell is released: its count goes with its cgroup.
      const oomKills = await cell.oomKills().catch(() => undefined);
      cell.release();
      this.endedAtMs = endedAt;
      this.deadline?.clear();
      const oomKilled = oomKills !== undefined && oomKills > 0;
      const ended: Omit<ExitStatus, 'status' | 'oomKilled'> =
        signal === null ? { exitCode: code ?? 0, signal: null } : { exitCode: null, signal };
      this.exit = {
        status: oomKilled ? 'oom_killed' : signal === null ? 'exited' : 'signaled',
        ...ended,
        oomKilled,
      };
      return this.exit;
    });
    // The end is the leader's exit: a grandchild that keeps the pipes open gets a short grace
    // to flush, and no more.
    this.done = this.exited.then(async () => {
      const graceOver = new AbortController();
      await Promise.race([
        io.drained,
        sleep(drainGraceMs, undefined, { signal: graceOver.signal }).catch(() => {}),
      ]);
      graceOver.abort();
      io.detach();
      this.log.close();
      await this.log.settle();
    });
  }

  /**
   * Spawns the command as the leader of a new session and process group, inside its cell,
   * as its user.
   */
  static async spawn(spec: ProcessSpec, options: ProcessOptions): Promise<SandboxProcess> {
    const { cell } = options;
    const log = new OutputLog(options.log);
    let io: ChildIo;
    try {
      io = spec.pty
        ? await terminalIo(spec, spec.pty, log, cell)
        : await pipeIo(spec, log, options.stdin, cell);
    } catch (error) {
      cell.release();
      throw error;
    }
    return new SandboxProcess(spec, log, io, cell, options.drainGraceMs);
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

  get oomKilled(): boolean {
    return this.exit?.oomKilled ?? false;
  }

  /** What the process and its descendants use now, while it runs and its cgroups can count it. */
  async usage(): Promise<Usage | undefined> {
    if (!this.running) return undefined;
    return this.cell.usage().catch(() => undefined);
  }

  get stdinWritable(): boolean {
    return this.running && (this.io.stdin?.writable ?? false);
  }

  get hasStdinPipe(): boolean {
    return this.io.stdin !== null;
  }

  /** The terminal's current size, for a process in a pty. */
  get size(): TerminalSize | undefined {
    return this.terminalSize;
  }

  async writeStdin(data: Buffer): Promise<void> {
    const stdin = this.pipe();
    if (!this.running)
      throw new SandboxError('stdin_not_writable', 'stdin is not writable: the process has ended');
    await stdin.write(data);
  }

  async closeStdin(): Promise<void> {
    await this.pipe().close();
  }

  /** Raw bytes to the terminal, as if typed (Ctrl-C is 0x03). */
  writeTerminal(data: Buffer): void {
    const terminal = this.terminal();
    if (!this.running) throw new SandboxError('stdin_not_writable', 'the process has ended');
    terminal.write(data);
  }

  /** Resizes the terminal (clamped to what a terminal shows); the kernel sends SIGWINCH to its foreground group. */
  resize(size: TerminalSize): void {
    const clamped = clampTerminalSize(size);
    this.terminal().resize(clamped);
    this.terminalSize = clamped;
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
   * SIGKILL to the leader and every descendant, whatever session or group it made for
   * itself, also after the leader has ended. Resolves once sent; never throws.
   */
  kill(): Promise<void> {
    return this.cell.kill();
  }

  /** Kills the group at the deadline and marks the process as timed out. */
  setDeadline(ms: number): void {
    if (!this.running) return;
    this.deadline?.clear();
    this.deadline = setLongTimeout(() => this.expire(), ms);
  }

  /** The deadline has passed: kills the process and its descendants, and marks it as timed out. */
  expire(): void {
    if (!this.running) return;
    this.timedOut = true;
    void this.kill();
  }

  private pipe(): StdinWriter {
    if (this.io.terminal)
      throw new SandboxError('wrong_input_kind', 'the process runs in a terminal: send terminal input');
    if (!this.io.stdin) throw new SandboxError('stdin_not_writable', 'stdin is not a pipe for this process');
    return this.io.stdin;
  }

  private terminal(): Terminal {
    if (!this.io.terminal)
      throw new SandboxError('wrong_input_kind', 'the process has no terminal: send stdin');
    return this.io.terminal;
  }
}

const commandPaths = new CommandPaths();

/**
 * Pipes to a child started with posix_spawn where it can be (no user to switch to, a reaper
 * to reap it: see native/spawn.ts), else with Node's spawn, which also has the last word on
 * anything posix_spawn refuses (a file it cannot find or run, a script without #!), so that
 * errors read as they always did.
 */
async function pipeIo(
  spec: ProcessSpec,
  log: OutputLog,
  stdinOptions: StdinOptions,
  cell: Cell,
): Promise<ChildIo> {
  const fast = spec.user === undefined && canSpawnFast() && reaperRuns();
  const file = fast
    ? spec.command.includes('/')
      ? spec.command
      : await commandPaths.find(spec.command, spec.env.PATH)
    : undefined;
  const stdio = {
    stdin: spec.stdin === 'pipe' ? 'pipe' : 'ignore',
    stdout: spec.stdout === 'capture' ? 'pipe' : 'ignore',
    stderr: spec.stderr === 'capture' ? 'pipe' : 'ignore',
  } as const;
  let started: { child: FastChild; exited: Promise<ChildExit> } | ChildProcess;
  try {
    started = cell.enter(() => {
      if (file !== undefined) {
        try {
          const child = spawnFast({ file, args: spec.args, env: spec.env, cwd: spec.cwd, ...stdio });
          resetChildOomScore(child.pid);
          // In the same synchronous step as the spawn, before the reaper can look.
          const exited = new Promise<ChildExit>((resolve) => reapFor(child.pid, resolve));
          return { child, exited };
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code !== 'ENOENT' && code !== 'EACCES' && code !== 'ENOEXEC') throw error;
          commandPaths.forget(spec.command, spec.env.PATH);
        }
      }
      const child = spawnWithGroups(spec.user, () =>
        spawn(spec.command, spec.args, {
          cwd: spec.cwd,
          env: spec.env,
          detached: true,
          stdio: [stdio.stdin, stdio.stdout, stdio.stderr],
          ...(spec.user ? { uid: spec.user.uid, gid: spec.user.gid } : {}),
        }),
      );
      if (child.pid !== undefined) resetChildOomScore(child.pid);
      return child;
    });
  } catch (error) {
    if (error instanceof SandboxError) throw error;
    // Refused before any fork (bad arguments, no resources): no process exists.
    throw spawnError(spec, error as NodeJS.ErrnoException);
  }
  if (!(started instanceof ChildProcess)) {
    cell.adopt(started.child.pid);
    return childIo(started.child.pid, started.exited, started.child, log, stdinOptions);
  }
  const child = started;
  // In the same synchronous step as the fork, before the reaper can look.
  const pid = child.pid;
  if (pid !== undefined) {
    ownChildren.add(pid);
    cell.adopt(pid);
  }
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (error: NodeJS.ErrnoException) => reject(spawnError(spec, error)));
  });
  child.on('error', () => {});
  const exited = new Promise<ChildExit>((resolve) => {
    child.once('exit', (code, signal) => {
      ownChildren.delete(child.pid as number);
      resolve({ code, signal: signal === null ? null : signalNumber(signal) });
    });
  });
  return childIo(child.pid as number, exited, child, log, stdinOptions);
}

/** Reads a child's output pipes into the log, with backpressure from the log; its stdin, queued. */
function childIo(
  pid: number,
  exited: Promise<ChildExit>,
  pipes: { stdin: Writable | null; stdout: Readable | null; stderr: Readable | null },
  log: OutputLog,
  stdinOptions: StdinOptions,
): ChildIo {
  const outputs: [StreamName, Readable | null][] = [
    ['stdout', pipes.stdout],
    ['stderr', pipes.stderr],
  ];
  const closed: Promise<void>[] = [];
  for (const [stream, readable] of outputs) {
    if (!readable) continue;
    readable.on('data', (chunk: Buffer) => {
      log.append(stream, chunk);
      // The disk lags behind: stop reading until it catches up, so that the process waits.
      if (log.congested) {
        readable.pause();
        void log.whenCalm().then(() => readable.resume());
      }
    });
    readable.on('error', () => {});
    closed.push(new Promise((resolve) => readable.once('close', resolve)));
  }
  return {
    pid,
    exited,
    drained: Promise.all(closed).then(() => {}),
    stdin: pipes.stdin ? new StdinWriter(pipes.stdin, stdinOptions) : null,
    terminal: null,
    detach() {
      for (const [, readable] of outputs) readable?.destroy();
      pipes.stdin?.destroy();
    },
  };
}

async function terminalIo(
  spec: ProcessSpec,
  size: TerminalSize,
  log: OutputLog,
  cell: Cell,
): Promise<ChildIo> {
  const terminal = await Terminal.start(spec, size, log, (fork) =>
    cell.enter(() => {
      const pty = spawnWithGroups(spec.user, fork);
      resetChildOomScore(pty.pid);
      // In the same synchronous step as the fork, before the reaper can look.
      ownChildren.add(pty.pid);
      cell.adopt(pty.pid);
      return pty;
    }),
  );
  void terminal.exited.then(() => ownChildren.delete(terminal.pid));
  return {
    pid: terminal.pid,
    exited: terminal.exited,
    // The terminal reports its exit only once its output has been read to the end.
    drained: terminal.exited.then(() => {}),
    stdin: null,
    terminal,
    detach() {},
  };
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
