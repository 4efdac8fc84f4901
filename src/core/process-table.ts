import { mkdtempSync, rmSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Containment } from './containment/index.ts';
import { SandboxError } from './errors.ts';
import type { OutputLogOptions } from './output-log.ts';
import { type ProcessOptions, type ProcessSpec, SandboxProcess } from './process.ts';
import type { TerminalSize } from './pty.ts';
import { type ManagedState, type RestartPolicy, Supervisor } from './supervisor.ts';
import { type Accounts, type ResolvedUser, resolveUser, type UserSpec } from './users.ts';

/** A request to start a process, as the adapters hand it over. */
export interface StartRequest {
  command: string;
  args?: string[];
  /** Merged over the daemon's environment. */
  env?: Record<string, string>;
  cwd?: string;
  user?: UserSpec;
  stdin?: 'closed' | 'pipe';
  stdout?: 'capture' | 'discard';
  stderr?: 'capture' | 'discard';
  name?: string;
  /** Run in a pseudo-terminal of this size; stdin and output modes do not apply. */
  pty?: TerminalSize;
  /** Given (or a name given): the process is managed and restarted by this policy. */
  restart?: RestartPolicy;
}

export interface TableOptions {
  /** Spill files live here; a fresh temporary folder when absent. */
  dataDir?: string;
  /** The environment every process starts from. */
  baseEnv: Record<string, string>;
  accounts: Accounts;
  /** Where each process and its descendants live, so that a kill reaches all of them. */
  containment: Containment;
  log: Omit<OutputLogOptions, 'spillDir'>;
  stdin: ProcessOptions['stdin'];
  drainGraceMs: number;
  /** Finished processes are kept while fewer than this many, or younger than retainFinishedMs. */
  retainFinished: number;
  retainFinishedMs: number;
}

/** Every process the daemon started, running and finished, by pid and by name. */
export class ProcessTable {
  private readonly processes = new Map<number, SandboxProcess>();
  private readonly names = new Map<string, SandboxProcess>();
  private readonly startingNames = new Set<string>();
  // Keyed by the spec that every incarnation of a managed process shares.
  private readonly supervisors = new Map<ProcessSpec, Supervisor>();
  private readonly dataDir: string;
  private readonly ownsDataDir: boolean;
  private readonly evictionTimer: NodeJS.Timeout;
  private spawnCount = 0;
  private shuttingDown = false;

  constructor(private readonly options: TableOptions) {
    this.ownsDataDir = options.dataDir === undefined;
    this.dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'sandboxd-'));
    this.evictionTimer = setInterval(() => this.evict(), 60_000).unref();
  }

  async start(request: StartRequest): Promise<SandboxProcess> {
    if (this.shuttingDown) throw new SandboxError('not_running', 'the daemon is shutting down');
    const { name } = request;
    const spec = await this.resolveSpec(request);
    if (name !== undefined) this.reserveName(name);
    let process: SandboxProcess;
    try {
      process = await this.spawn(spec);
    } finally {
      if (name !== undefined) this.startingNames.delete(name);
    }
    if (this.shuttingDown) {
      // Started while the daemon began to stop: shutdown did not see it.
      void process.kill();
      throw new SandboxError('not_running', 'the daemon is shutting down');
    }
    if (name !== undefined || request.restart) {
      const policy = request.restart ?? { policy: 'never', initialBackoffMs: 500, maxBackoffMs: 30_000 };
      const id = name ?? String(process.pid);
      this.supervisors.set(spec, new Supervisor(id, spec, policy, process, (next) => this.spawn(next)));
    }
    return process;
  }

  /** By pid (a number or digits) or by name; throws not_found. */
  get(ref: number | string): SandboxProcess {
    const process = this.find(ref);
    if (!process) {
      const what = typeof ref === 'number' || /^\d+$/.test(ref) ? `pid ${ref}` : `name '${ref}'`;
      throw new SandboxError('not_found', `process with ${what} not found`);
    }
    return process;
  }

  find(ref: number | string): SandboxProcess | undefined {
    if (typeof ref === 'number') return this.processes.get(ref);
    if (/^\d+$/.test(ref)) return this.processes.get(Number(ref));
    return this.names.get(ref);
  }

  list(): SandboxProcess[] {
    return [...this.processes.values()];
  }

  managedState(process: SandboxProcess): ManagedState | undefined {
    return this.supervisors.get(process.spec)?.state();
  }

  counts(): { running: number; total: number } {
    let running = 0;
    for (const process of this.processes.values()) if (process.running) running++;
    return { running, total: this.processes.size };
  }

  /** SIGKILL to the process and every descendant. A managed process is not restarted after a kill. */
  async kill(process: SandboxProcess): Promise<void> {
    const supervisor = this.supervisors.get(process.spec);
    if (supervisor?.current === process) supervisor.stop();
    await process.kill();
  }

  /** Starts a managed process's next incarnation now, killing the current one first. */
  async restart(process: SandboxProcess): Promise<SandboxProcess> {
    const supervisor = this.supervisors.get(process.spec);
    if (!supervisor) throw new SandboxError('not_managed', `process ${process.pid} is not managed`);
    if (this.shuttingDown) throw new SandboxError('not_running', 'the daemon is shutting down');
    return supervisor.restartNow();
  }

  /**
   * TERM every descendant of every process (leaders that ended may have left some), KILL them
   * all once the running leaders have exited or the grace is over, then delete the spill files.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.shuttingDown = true;
    clearInterval(this.evictionTimer);
    for (const supervisor of this.supervisors.values()) supervisor.stop();
    const all = this.list();
    const { containment } = this.options;
    await containment.signalAll(15);
    const running = all.filter((p) => p.running);
    const graceOver = new AbortController();
    await Promise.race([
      Promise.all(running.map((p) => p.exited)),
      sleep(graceMs, undefined, { signal: graceOver.signal }).catch(() => {}),
    ]);
    graceOver.abort();
    await containment.killAll();
    await Promise.all(all.map((p) => p.done));
    for (const process of all) process.log.release();
    this.processes.clear();
    if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** Holds the name for a start that is under way, so that a second start cannot take it too. */
  private reserveName(name: string): void {
    if (/^\d+$/.test(name) || name.includes('/') || name === '') {
      throw new SandboxError(
        'invalid_argument',
        `name '${name}' must not be empty, all digits or contain '/'`,
      );
    }
    const holder = this.names.get(name);
    const supervisor = holder && this.supervisors.get(holder.spec);
    if (this.startingNames.has(name)) throw new SandboxError('name_taken', `name '${name}' is being taken`);
    if (holder?.running || (supervisor && !supervisor.isStopped)) {
      throw new SandboxError('name_taken', `name '${name}' is taken by process ${holder.pid}`);
    }
    if (holder) this.supervisors.delete(holder.spec);
    this.startingNames.add(name);
  }

  private async resolveSpec(request: StartRequest): Promise<ProcessSpec> {
    assertExecArguments(request);
    const user: ResolvedUser | undefined =
      request.user === undefined ? undefined : await resolveUser(this.options.accounts, request.user);
    const userEnv: Record<string, string> = user?.name
      ? { HOME: user.home ?? '/', USER: user.name, LOGNAME: user.name }
      : {};
    if (request.cwd !== undefined) await assertDirectory(request.cwd);
    return {
      command: request.command,
      args: request.args ?? [],
      env: { ...this.options.baseEnv, ...userEnv, ...request.env },
      cwd: request.cwd ?? (user ? await homeOrRoot(user) : undefined),
      user,
      stdin: request.stdin ?? 'closed',
      stdout: request.stdout ?? 'capture',
      stderr: request.stderr ?? 'capture',
      name: request.name,
      pty: request.pty,
      requestedEnv: request.env ?? {},
    };
  }

  private async spawn(spec: ProcessSpec): Promise<SandboxProcess> {
    const { log, stdin, drainGraceMs, containment } = this.options;
    const spillDir = join(this.dataDir, `process-${++this.spawnCount}`);
    const cell = await containment.cell();
    const process = await SandboxProcess.spawn(spec, {
      log: { ...log, spillDir },
      stdin,
      drainGraceMs,
      cell,
    });
    // A pid the kernel handed out again replaces the finished process that had it.
    this.processes.get(process.pid)?.log.release();
    this.processes.delete(process.pid);
    this.processes.set(process.pid, process);
    if (spec.name !== undefined) this.names.set(spec.name, process);
    void process.done.then(() => this.evict());
    return process;
  }

  private evict(): void {
    const { retainFinished, retainFinishedMs } = this.options;
    let finished = 0;
    for (const process of this.processes.values()) if (!process.running) finished++;
    const cutoff = Date.now() - retainFinishedMs;
    for (const [pid, process] of this.processes) {
      if (finished <= retainFinished) break;
      if (process.running || (process.endedAt ?? 0) > cutoff || !process.log.closed) continue;
      process.log.release();
      this.processes.delete(pid);
      const supervisor = this.supervisors.get(process.spec);
      if (supervisor?.current === process && supervisor.isStopped) this.supervisors.delete(process.spec);
      if (process.spec.name && this.names.get(process.spec.name) === process) {
        this.names.delete(process.spec.name);
      }
      finished--;
    }
  }
}

/** What exec(2) cannot carry: an empty command, NUL bytes, '=' in a variable's name. */
function assertExecArguments({ command, args = [], env = {}, cwd }: StartRequest): void {
  const fail = (field: string, problem: string) => {
    throw new SandboxError('invalid_argument', `${field}: ${problem}`);
  };
  if (command === '') fail('command', 'must not be empty');
  if (command.includes('\0')) fail('command', 'must not contain a NUL byte');
  args.forEach((arg, i) => {
    if (arg.includes('\0')) fail(`args.${i}`, 'must not contain a NUL byte');
  });
  for (const [name, value] of Object.entries(env)) {
    if (name === '' || name.includes('=') || name.includes('\0'))
      fail(`env.${name}`, "a name must be non-empty, without '=' or NUL");
    if (value.includes('\0')) fail(`env.${name}`, 'must not contain a NUL byte');
  }
  if (cwd?.includes('\0')) fail('cwd', 'must not contain a NUL byte');
}

async function assertDirectory(path: string): Promise<void> {
  if (!(await isDirectory(path))) throw new SandboxError('bad_cwd', `cwd '${path}' does not exist`);
}

function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false, // Missing or unreadable.
  );
}

/** A named user starts in their home, as a login would; in / when it does not exist (nobody's). */
async function homeOrRoot(user: ResolvedUser): Promise<string> {
  return user.home !== undefined && (await isDirectory(user.home)) ? user.home : '/';
}
