import { SandboxError } from './errors.ts';
import type { HealthCheck, HealthStatus } from './health/check.ts';
import { HealthMonitor } from './health/monitor.ts';
import type { RunCheck } from './health/probe.ts';
import { type LongTimeout, setLongTimeout } from './long-timeout.ts';
import type { ExitStatus } from './process.ts';
import { SIGTERM } from './signals.ts';
import type { ProcessSpec, RestartPolicy } from './start-request.ts';
import { Waiters } from './waiters.ts';

// A process that exits at once is restarted at most 50 times a second, whatever its policy
// asks: each start blocks the daemon's event loop for the fork, about a millisecond.
const MIN_BACKOFF_MS = 20;

/** How an incarnation ended. */
export interface LastExit {
  exitCode: number | null;
  signal: number | null;
  oomKilled: boolean;
  endedAt: number;
}

/** What is known of a managed process, whichever incarnation is asked about. */
export interface ManagedState {
  id: string;
  name?: string;
  /** `starting` while a health check has not passed yet for the running incarnation. */
  status: 'starting' | 'running' | 'backing_off' | 'stopped';
  restartCount: number;
  policy: RestartPolicy;
  healthCheck?: HealthCheck;
  healthStatus: HealthStatus;
  consecutiveHealthFailures: number;
  lastExit?: LastExit;
  /** Why the last incarnation was stopped or failed, for a person. */
  lastError?: string;
  /** Milliseconds since the epoch, while backing off. */
  nextRestartAt?: number;
}

/** What supervision needs of a process. */
export interface Supervised {
  readonly running: boolean;
  /** Resolves when the leader has been reaped. */
  readonly exited: Promise<ExitStatus>;
  /** A signal to the process group. */
  sendSignal(signal: number): void;
  kill(): Promise<void>;
}

export interface SupervisorOptions<P> {
  /** Names the managed process across incarnations: its name, else its first pid. */
  id: string;
  spec: ProcessSpec;
  policy: RestartPolicy;
  healthCheck?: HealthCheck;
  /** Runs an exec health check for this process. */
  runCheck?: RunCheck;
  /** How long an unhealthy incarnation has after SIGTERM before SIGKILL. */
  stopGraceMs: number;
  spawn: (spec: ProcessSpec) => Promise<P>;
}

/**
 * Keeps a managed process going: on its exit, starts the next incarnation by the restart
 * policy, with exponential backoff; with a health check, probes each incarnation and stops one
 * that turns unhealthy (TERM, then KILL after a grace) so that its policy restarts it — under
 * `never` it keeps running, marked unhealthy. Once stopped (a kill, the daemon's shutdown) it
 * starts nothing more, and kills an incarnation that was being started meanwhile.
 */
export class Supervisor<P extends Supervised> {
  /** Woken at every change of state: a new incarnation, an exit, a probe, the stop. */
  readonly changed = new Waiters();
  readonly id: string;
  readonly spec: ProcessSpec;
  readonly policy: RestartPolicy;
  private incarnation: P;
  private monitor: HealthMonitor | undefined;
  private restarts = 0;
  private timer: LongTimeout | undefined;
  private nextRestartAt: number | undefined;
  private lastExit: LastExit | undefined;
  private lastError: string | undefined;
  /** The incarnation that was stopped for failing its health check. */
  private stoppedUnhealthy: P | undefined;
  private stopped = false;
  private restarting: Promise<P> | undefined;

  constructor(
    first: P,
    private readonly options: SupervisorOptions<P>,
  ) {
    this.id = options.id;
    this.spec = options.spec;
    this.policy = options.policy;
    this.incarnation = first;
    this.watch(first);
  }

  get current(): P {
    return this.incarnation;
  }

  /** True once it will start nothing more. */
  get isStopped(): boolean {
    return this.stopped;
  }

  get healthStatus(): HealthStatus {
    return this.monitor?.status ?? 'disabled';
  }

  state(): ManagedState {
    const backingOff = this.timer !== undefined;
    const { healthCheck } = this.options;
    const running = this.incarnation.running;
    return {
      id: this.id,
      name: this.spec.name,
      status: running
        ? this.healthStatus === 'starting'
          ? 'starting'
          : 'running'
        : backingOff
          ? 'backing_off'
          : 'stopped',
      restartCount: this.restarts,
      policy: this.policy,
      healthCheck,
      healthStatus: this.healthStatus,
      consecutiveHealthFailures: this.monitor?.consecutiveFailures ?? 0,
      lastExit: this.lastExit,
      lastError: this.lastError,
      nextRestartAt: backingOff ? this.nextRestartAt : undefined,
    };
  }

  /** Starts nothing more. The current incarnation is left as it is; its probes end. */
  stop(): void {
    this.stopped = true;
    this.timer?.clear();
    this.timer = undefined;
    this.monitor?.stop();
    this.changed.wake();
  }

  /**
   * Kills the current incarnation and starts the next one now; supervision resumes. Calls
   * that overlap share one restart.
   */
  restartNow(): Promise<P> {
    this.restarting ??= this.replace().finally(() => {
      this.restarting = undefined;
    });
    return this.restarting;
  }

  private async replace(): Promise<P> {
    this.timer?.clear();
    this.timer = undefined;
    this.stopped = false;
    const old = this.incarnation;
    void old.kill();
    await old.exited;
    if (this.stopped) throw stoppedMeanwhile();
    let next: P;
    try {
      next = await this.options.spawn(this.spec);
    } catch (error) {
      // Nothing runs and nothing will: the name is free again.
      this.lastError = `restart failed: ${(error as Error).message}`;
      this.stop();
      throw error;
    }
    if (this.stopped) {
      void next.kill();
      throw stoppedMeanwhile();
    }
    this.adopt(next);
    return next;
  }

  private adopt(next: P): void {
    this.incarnation = next;
    this.watch(next);
    this.changed.wake();
  }

  private watch(incarnation: P): void {
    this.monitor?.stop();
    this.monitor = this.startMonitor(incarnation);
    void incarnation.exited.then((exit) => this.ended(incarnation, exit));
  }

  private startMonitor(incarnation: P): HealthMonitor | undefined {
    const { healthCheck, runCheck } = this.options;
    if (!healthCheck) return undefined;
    return new HealthMonitor(healthCheck, {
      runCheck,
      onProbe: () => this.changed.wake(),
      onUnhealthy: (reason) => this.unhealthy(incarnation, reason),
    }).start();
  }

  /** Stops an incarnation that failed its check, unless its policy would never restart it. */
  private unhealthy(incarnation: P, reason: string): void {
    const threshold = this.options.healthCheck?.failureThreshold ?? 1;
    this.lastError = `health check failed ${threshold} time${threshold === 1 ? '' : 's'} in a row: ${reason}`;
    if (this.policy.policy === 'never' || this.stopped || incarnation !== this.incarnation) return;
    this.stoppedUnhealthy = incarnation;
    try {
      incarnation.sendSignal(SIGTERM);
    } catch {
      return; // It ended meanwhile: its exit is handled as any other.
    }
    const grace = setLongTimeout(() => {
      if (incarnation.running) void incarnation.kill();
    }, this.options.stopGraceMs);
    void incarnation.exited.then(() => grace.clear());
  }

  private ended(incarnation: P, exit: ExitStatus): void {
    if (incarnation !== this.incarnation) return;
    this.monitor?.stop();
    const { oomKilled } = exit;
    this.lastExit = { exitCode: exit.exitCode, signal: exit.signal, oomKilled, endedAt: Date.now() };
    const unhealthy = this.stoppedUnhealthy === incarnation;
    const failed = unhealthy || exit.status !== 'exited' || exit.exitCode !== 0;
    // A restart asked for kills the incarnation on purpose: that is no error of the process's.
    if (failed && !unhealthy && !this.restarting) this.lastError = describeExit(exit);
    this.changed.wake();
    if (this.stopped || this.restarting) return;
    const { policy, maxRestarts, initialBackoffMs, maxBackoffMs } = this.policy;
    const wanted = policy === 'always' || (policy === 'on_failure' && failed);
    if (!wanted || (maxRestarts !== undefined && this.restarts >= maxRestarts)) {
      this.stop();
      return;
    }
    const backoff = Math.max(MIN_BACKOFF_MS, Math.min(maxBackoffMs, initialBackoffMs * 2 ** this.restarts));
    this.nextRestartAt = Date.now() + backoff;
    this.timer = setLongTimeout(() => {
      this.timer = undefined;
      this.restarts++;
      this.options.spawn(this.spec).then(
        (next) => {
          if (this.stopped || this.restarting) {
            void next.kill();
            return;
          }
          this.adopt(next);
        },
        (error: Error) => {
          this.lastError = `restart failed: ${error.message}`;
          this.stop();
        },
      );
    }, backoff);
  }
}

function describeExit(exit: ExitStatus): string {
  if (exit.status === 'oom_killed') return 'killed by the kernel for memory (OOM)';
  if (exit.status === 'signaled') return `killed by signal ${exit.signal}`;
  return `exited with code ${exit.exitCode}`;
}

function stoppedMeanwhile(): SandboxError {
  return new SandboxError('not_running', 'the managed process was killed while it was being restarted');
}
