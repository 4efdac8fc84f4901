import { mkdtempSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Containment } from './containment/index.ts';
import { SandboxError } from './errors.ts';
import type { OutputLogOptions } from './output-log.ts';
import { type ProcessOptions, SandboxProcess } from './process.ts';
import { beyondRetention, type Retained, spillTrimPlan } from './retention.ts';
import { SIGTERM } from './signals.ts';
import { normaliseStart, type ProcessSpec, restartPolicy, type StartRequest } from './start-request.ts';
import { type ManagedState, Supervisor } from './supervisor.ts';
import { type Accounts, type ResolvedUser, resolveUser } from './users.ts';

export type { StartRequest } from './start-request.ts';

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
  /** The newest this many finished processes are kept, whatever their age; older ones go. */
  maxFinished: number;
  /** A managed process keeps this many of its finished incarnations. */
  managedHistory: number;
  /** Spill files of all processes together; past it the oldest output goes first. */
  maxSpillBytes: number;
}

/** Every process the daemon started, running and finished, by pid and by name. */
export class ProcessTable {
  private readonly processes = new Map<number, SandboxProcess>();
  private readonly names = new Map<string, SandboxProcess>();
  private readonly startingNames = new Set<string>();
  // Keyed by the spec that every incarnation of a managed process shares.
  private readonly supervisors = new Map<ProcessSpec, Supervisor>();
  private readonly dataDir: string;
  /** Where `~` and relative working directories start when no user is named. */
  private readonly home = homedir();
  private readonly ownsDataDir: boolean;
  private spawnCount = 0;
  private spillBytes = 0;
  private trimScheduled = false;
  private shuttingDown = false;

  constructor(private readonly options: TableOptions) {
    this.ownsDataDir = options.dataDir === undefined;
    this.dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'sandboxd-'));
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
    if (request.deadlineMs !== undefined) process.setDeadline(request.deadlineMs);
    const policy = restartPolicy(request.restart, name !== undefined);
    if (policy) {
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
    for (const supervisor of this.supervisors.values()) supervisor.stop();
    const all = this.list();
    const { containment } = this.options;
    await containment.signalAll(SIGTERM);
    const running = all.filter((p) => p.running);
    const graceOver = new AbortController();
    await Promise.race([
      Promise.all(running.map((p) => p.exited)),
      sleep(graceMs, undefined, { signal: graceOver.signal }).catch(() => {}),
    ]);
    graceOver.abort();
    await containment.killAll();
    await Promise.all(all.map((p) => p.done));
    await Promise.all(all.map((p) => p.log.release()));
    this.processes.clear();
    if (this.ownsDataDir) await rm(this.dataDir, { recursive: true, force: true });
  }

  /** Holds the name for a start that is under way, so that a second start cannot take it too. */
  private reserveName(name: string): void {
    if (!VALID_NAME.test(name) || /^\d+$/.test(name)) {
      const shown = name.length > 40 ? `${JSON.stringify(name.slice(0, 40))}…` : JSON.stringify(name);
      throw new SandboxError(
        'invalid_argument',
        `name ${shown}: 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit, not all digits`,
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
    const spec = normaliseStart(request, { baseEnv: this.options.baseEnv, user, home: this.home });
    if (spec.cwd !== undefined) await assertDirectory(spec.cwd);
    else if (user) spec.cwd = await homeOrRoot(user);
    return spec;
  }

  private async spawn(spec: ProcessSpec): Promise<SandboxProcess> {
    const { log, stdin, drainGraceMs, containment } = this.options;
    const spillDir = join(this.dataDir, `process-${++this.spawnCount}`);
    const cell = await containment.cell(spec.limits);
    const diskUse = (delta: number) => this.countSpill(delta);
    const process = await SandboxProcess.spawn(spec, {
      log: { ...log, spillDir, diskUse },
      stdin,
      drainGraceMs,
      cell,
    });
    // A pid the kernel handed out again replaces the finished process that had it.
    void this.processes.get(process.pid)?.log.release();
    this.processes.delete(process.pid);
    this.processes.set(process.pid, process);
    if (spec.name !== undefined) this.names.set(spec.name, process);
    void process.done.then(() => this.evict());
    return process;
  }

  /** Forgets finished processes beyond the bounds (see beyondRetention). */
  private evict(): void {
    for (const { process } of beyondRetention(this.retained(), this.options)) this.forget(process);
  }

  /** Every process as the retention rules see it, in start order. */
  private retained(): (Retained & { process: SandboxProcess })[] {
    return [...this.processes.values()].map((process) => {
      const supervisor = this.supervisors.get(process.spec);
      return {
        process,
        running: process.running,
        settled: process.log.closed,
        family: supervisor ? process.spec : undefined,
        current: supervisor?.current === process,
        diskBytes: process.log.diskBytes,
      };
    });
  }

  private forget(process: SandboxProcess): void {
    void process.log.release();
    this.processes.delete(process.pid);
    const supervisor = this.supervisors.get(process.spec);
    if (supervisor?.current === process && supervisor.isStopped) this.supervisors.delete(process.spec);
    if (process.spec.name && this.names.get(process.spec.name) === process) {
      this.names.delete(process.spec.name);
    }
  }

  private countSpill(delta: number): void {
    this.spillBytes += delta;
    if (this.spillBytes <= this.options.maxSpillBytes || this.trimScheduled) return;
    this.trimScheduled = true;
    queueMicrotask(() => {
      this.trimScheduled = false;
      this.trimSpill();
    });
  }

  /**
   * Brings the spill files of all processes under their cap (see spillTrimPlan): finished
   * processes go first; then running ones drop their oldest output, which their readers are
   * told of as any other drop.
   */
  private trimSpill(): void {
    const excess = this.spillBytes - this.options.maxSpillBytes;
    const { forget, shedFrom } = spillTrimPlan(this.retained(), excess);
    let left = excess;
    for (const { process, diskBytes } of forget) {
      left -= diskBytes;
      this.forget(process);
    }
    for (const { process } of shedFrom) {
      if (left <= 0) return;
      left -= process.log.shed(left);
    }
  }
}

/** A name that can stand in a URL path as it is. */
const VALID_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** What exec(2) cannot carry: an empty command, NUL bytes, '=' in a variable's name. */
function assertExecArguments({ command, args = [], env = {} }: StartRequest): void {
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
