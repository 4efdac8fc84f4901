import { mkdtempSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Containment } from './containment/index.ts';
import { SandboxError } from './errors.ts';
import type { SandboxProcess } from './process.ts';
import { ProcessRegistry } from './process-registry.ts';
import { beyondRetention, type Retained, spillTrimPlan } from './retention.ts';
import { SIGTERM } from './signals.ts';
import { SpillQuota } from './spill-quota.ts';
import {
  assertStartable,
  managedConfig,
  normaliseStart,
  type ProcessSpec,
  type StartRequest,
} from './start-request.ts';
import { type ManagedState, type Supervised, Supervisor } from './supervisor.ts';
import { type Accounts, type ResolvedUser, resolveUser } from './users.ts';
import { Waiters } from './waiters.ts';

export type { StartRequest } from './start-request.ts';

/** What the table needs of a process it keeps. */
export interface TableProcess extends Supervised {
  readonly pid: number;
  readonly spec: ProcessSpec;
  /** Resolves when the output has drained and the log is closed. */
  readonly done: Promise<void>;
  readonly log: {
    /** True once the log holds everything it will. */
    readonly closed: boolean;
    readonly diskBytes: number;
    release(): Promise<void>;
    /** Drops up to this many of the oldest bytes on disk; returns how many it dropped. */
    shed(bytes: number): number;
  };
  setDeadline(ms: number): void;
}

/** Where a new process keeps the output that does not fit in memory, and how it reports its disk use. */
export interface SpillPlace {
  spillDir: string;
  diskUse(deltaBytes: number): void;
}

/** Starts one process (a managed one's every incarnation too). */
export type Spawner<P> = (spec: ProcessSpec, spill: SpillPlace) => Promise<P>;

export interface TableOptions<P> {
  /** Spill files live here; a fresh temporary folder when absent. */
  dataDir?: string;
  /** The environment every process starts from. */
  baseEnv: Record<string, string>;
  accounts: Accounts;
  spawn: Spawner<P>;
  /** Reaches every descendant of every process, for the daemon's shutdown. */
  containment: Pick<Containment, 'signalAll' | 'killAll'>;
  /** The newest this many finished processes are kept, whatever their age; older ones go. */
  maxFinished: number;
  /** A managed process keeps this many of its finished incarnations. */
  managedHistory: number;
  /** Spill files of all processes together; past it the oldest output goes first. */
  maxSpillBytes: number;
}

/** Every process the daemon started, running and finished, by pid and by name. */
export class ProcessTable<P extends TableProcess = SandboxProcess> {
  private readonly registry = new ProcessRegistry<P>();
  // Keyed by the spec that every incarnation of a managed process shares.
  private readonly supervisors = new Map<ProcessSpec, Supervisor<P>>();
  private readonly spill: SpillQuota;
  private readonly dataDir: string;
  /** Where `~` and relative working directories start when no user is named. */
  private readonly home = homedir();
  private readonly ownsDataDir: boolean;
  private spawnCount = 0;
  private shuttingDown = false;

  constructor(private readonly options: TableOptions<P>) {
    this.ownsDataDir = options.dataDir === undefined;
    this.dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'sandboxd-'));
    this.spill = new SpillQuota(options.maxSpillBytes, (excess) => this.trimSpill(excess));
  }

  async start(request: StartRequest): Promise<P> {
    if (this.shuttingDown) throw new SandboxError('not_running', 'the daemon is shutting down');
    const spec = await this.resolveSpec(request);
    const managed = managedConfig(request);
    const { name } = spec;
    if (name !== undefined) this.reserveName(name);
    let started: P;
    try {
      started = await this.spawn(spec);
    } finally {
      if (name !== undefined) this.registry.unreserve(name);
    }
    if (this.shuttingDown) {
      // Started while the daemon began to stop: shutdown did not see it.
      void started.kill();
      throw new SandboxError('not_running', 'the daemon is shutting down');
    }
    if (request.deadlineMs !== undefined) started.setDeadline(request.deadlineMs);
    if (managed) {
      const supervisor = new Supervisor(started, {
        id: name ?? String(started.pid),
        spec,
        ...managed,
        runCheck: (command, args, timeoutMs, signal) => this.runCheck(spec, command, args, timeoutMs, signal),
        stopGraceMs: UNHEALTHY_STOP_GRACE_MS,
        spawn: (next) => this.spawn(next),
      });
      this.supervisors.set(spec, supervisor);
    }
    return started;
  }

  /** By pid (a number or digits) or by name; throws not_found. */
  get(ref: number | string): P {
    return this.registry.get(ref);
  }

  find(ref: number | string): P | undefined {
    return this.registry.find(ref);
  }

  /** By name only: for a dialect whose names may be all digits. */
  named(name: string): P | undefined {
    return this.registry.named(name);
  }

  list(): P[] {
    return this.registry.list();
  }

  managedState(entry: P): ManagedState | undefined {
    return this.supervisors.get(entry.spec)?.state();
  }

  counts(): { running: number; total: number } {
    let running = 0;
    for (const entry of this.registry.list()) if (entry.running) running++;
    return { running, total: this.registry.size };
  }

  /** SIGKILL to the process and every descendant. A managed process is not restarted after a kill. */
  async kill(entry: P): Promise<void> {
    const supervisor = this.supervisors.get(entry.spec);
    if (supervisor?.current === entry) supervisor.stop();
    await entry.kill();
  }

  /** Starts a managed process's next incarnation now, killing the current one first. */
  async restart(entry: P): Promise<P> {
    const supervisor = this.supervisors.get(entry.spec);
    if (!supervisor) throw new SandboxError('not_managed', `process ${entry.pid} is not managed`);
    if (this.shuttingDown) throw new SandboxError('not_running', 'the daemon is shutting down');
    return supervisor.restartNow();
  }

  /**
   * Resolves when the process reaches the state: `running` (a managed process backing off
   * counts once its next incarnation runs), `healthy` (its health check passed), `exited` (this
   * incarnation ended). Rejects with not_running when the state can no longer come (it ended
   * and nothing will restart it), invalid_argument for `healthy` without a health check, and
   * timed_out when the signal aborts first.
   */
  async waitUntil(entry: P, until: WaitTarget, signal: AbortSignal): Promise<P> {
    const supervisor = this.supervisors.get(entry.spec);
    if (until === 'healthy' && (supervisor?.healthStatus ?? 'disabled') === 'disabled') {
      throw new SandboxError('invalid_argument', `process ${entry.pid} has no health check to be healthy by`);
    }
    const changes = supervisor?.changed ?? exitWaiters(entry);
    for (;;) {
      const current = supervisor?.current ?? entry;
      const reached =
        until === 'exited'
          ? !entry.running
          : current.running && (until === 'running' || supervisor?.healthStatus === 'healthy');
      if (reached) return until === 'exited' ? entry : current;
      const comesLater = until !== 'exited' && supervisor !== undefined && !supervisor.isStopped;
      if (!current.running && !comesLater) {
        throw new SandboxError('not_running', `process ${current.pid} ended before it was ${until}`);
      }
      if (signal.aborted)
        throw new SandboxError('timed_out', `process ${entry.pid} was not ${until} in time`);
      await changes.wait(signal);
    }
  }

  /** An exec health check: the command as the managed process runs (user, cwd, env), output discarded. */
  private async runCheck(
    spec: ProcessSpec,
    command: string,
    args: string[],
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<boolean | string> {
    const check: ProcessSpec = {
      ...spec,
      command,
      args,
      name: undefined,
      pty: undefined,
      stdin: 'closed',
      stdout: 'discard',
      stderr: 'discard',
    };
    const spillDir = join(this.dataDir, `check-${++this.spawnCount}`);
    const probe = await this.options.spawn(check, { spillDir, diskUse: () => {} });
    const stop = () => void probe.kill();
    signal.addEventListener('abort', stop, { once: true });
    const timer = setTimeout(stop, timeoutMs);
    try {
      const exit = await probe.exited;
      if (exit.status === 'exited') return exit.exitCode === 0 || `exited ${exit.exitCode}`;
      return `killed by signal ${exit.signal}`;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', stop);
      await probe.done;
      await probe.log.release();
    }
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
    this.registry.clear();
    if (this.ownsDataDir) await rm(this.dataDir, { recursive: true, force: true });
  }

  /** Holds the name for a start that is under way, so that a second start cannot take it too. */
  private reserveName(name: string): void {
    this.registry.reserve(name, (current) => {
      const supervisor = this.supervisors.get(current.spec);
      return current.running || (supervisor !== undefined && !supervisor.isStopped);
    });
    // The name passes on: the old holder's supervision (stopped) goes with it.
    const formerHolder = this.registry.named(name);
    if (formerHolder) this.supervisors.delete(formerHolder.spec);
  }

  private async resolveSpec(request: StartRequest): Promise<ProcessSpec> {
    assertStartable(request);
    const user: ResolvedUser | undefined =
      request.user === undefined ? undefined : await resolveUser(this.options.accounts, request.user);
    const spec = normaliseStart(request, { baseEnv: this.options.baseEnv, user, home: this.home });
    if (spec.cwd !== undefined) await assertDirectory(spec.cwd);
    else if (user) spec.cwd = await homeOrRoot(user);
    return spec;
  }

  private async spawn(spec: ProcessSpec): Promise<P> {
    const spillDir = join(this.dataDir, `process-${++this.spawnCount}`);
    const started = await this.options.spawn(spec, { spillDir, diskUse: (delta) => this.spill.count(delta) });
    void this.registry.add(started)?.log.release();
    void started.done.then(() => this.evict());
    return started;
  }

  /** Forgets finished processes beyond the bounds (see beyondRetention). */
  private evict(): void {
    for (const { entry } of beyondRetention(this.retained(), this.options)) this.forget(entry);
  }

  /** Every process as the retention rules see it, in start order. */
  private retained(): (Retained & { entry: P })[] {
    return this.registry.list().map((entry) => {
      const supervisor = this.supervisors.get(entry.spec);
      return {
        entry,
        running: entry.running,
        settled: entry.log.closed,
        family: supervisor ? entry.spec : undefined,
        current: supervisor?.current === entry,
        diskBytes: entry.log.diskBytes,
      };
    });
  }

  private forget(entry: P): void {
    void entry.log.release();
    this.registry.remove(entry);
    const supervisor = this.supervisors.get(entry.spec);
    if (supervisor?.current === entry && supervisor.isStopped) this.supervisors.delete(entry.spec);
  }

  /**
   * Brings the spill files of all processes under their cap (see spillTrimPlan): finished
   * processes go first; then running ones drop their oldest output, which their readers are
   * told of as any other drop.
   */
  private trimSpill(excess: number): void {
    const { forget, shedFrom } = spillTrimPlan(this.retained(), excess);
    let left = excess;
    for (const { entry, diskBytes } of forget) {
      left -= diskBytes;
      this.forget(entry);
    }
    for (const { entry } of shedFrom) {
      if (left <= 0) return;
      left -= entry.log.shed(left);
    }
  }
}

export type WaitTarget = 'running' | 'healthy' | 'exited';

// An unhealthy process gets this long after SIGTERM to end before SIGKILL.
const UNHEALTHY_STOP_GRACE_MS = 5000;

/** Woken when an unmanaged process exits, its one change of state. */
function exitWaiters(entry: TableProcess): Waiters {
  const waiters = new Waiters();
  void entry.exited.then(() => waiters.wake());
  return waiters;
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
