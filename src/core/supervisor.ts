import { SandboxError } from './errors.ts';
import { type LongTimeout, setLongTimeout } from './long-timeout.ts';
import type { ExitStatus } from './process.ts';
import type { ProcessSpec, RestartPolicy } from './start-request.ts';

// A process that exits at once is restarted at most 50 times a second, whatever its policy
// asks: each start blocks the daemon's event loop for the fork, about a millisecond.
const MIN_BACKOFF_MS = 20;

/** What is known of a managed process, whichever incarnation is asked about. */
export interface ManagedState {
  id: string;
  name?: string;
  status: 'running' | 'backing_off' | 'stopped';
  restartCount: number;
  policy: RestartPolicy;
  /** Milliseconds since the epoch, while backing off. */
  nextRestartAt?: number;
}

/** What supervision needs of a process. */
export interface Supervised {
  readonly running: boolean;
  /** Resolves when the leader has been reaped. */
  readonly exited: Promise<ExitStatus>;
  kill(): Promise<void>;
}

/**
 * Keeps a managed process going: on its exit, starts the next incarnation by the restart
 * policy, with exponential backoff. Once stopped (a kill, the daemon's shutdown) it starts
 * nothing more, and kills an incarnation that was being started meanwhile.
 */
export class Supervisor<P extends Supervised> {
  private incarnation: P;
  private restarts = 0;
  private timer: LongTimeout | undefined;
  private nextRestartAt: number | undefined;
  private stopped = false;
  private restarting: Promise<P> | undefined;

  constructor(
    /** Names the managed process across incarnations: its name, else its first pid. */
    readonly id: string,
    readonly spec: ProcessSpec,
    readonly policy: RestartPolicy,
    first: P,
    private readonly spawn: (spec: ProcessSpec) => Promise<P>,
  ) {
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

  state(): ManagedState {
    const backingOff = this.timer !== undefined;
    return {
      id: this.id,
      name: this.spec.name,
      status: this.incarnation.running ? 'running' : backingOff ? 'backing_off' : 'stopped',
      restartCount: this.restarts,
      policy: this.policy,
      nextRestartAt: backingOff ? this.nextRestartAt : undefined,
    };
  }

  /** Starts nothing more. The current incarnation is left as it is. */
  stop(): void {
    this.stopped = true;
    this.timer?.clear();
    this.timer = undefined;
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
      next = await this.spawn(this.spec);
    } catch (error) {
      // Nothing runs and nothing will: the name is free again.
      this.stop();
      throw error;
    }
    if (this.stopped) {
      void next.kill();
      throw stoppedMeanwhile();
    }
    this.incarnation = next;
    this.watch(next);
    return next;
  }

  private watch(process: P): void {
    void process.exited.then((exit) => {
      if (this.stopped || this.restarting || this.incarnation !== process) return;
      const { policy, maxRestarts, initialBackoffMs, maxBackoffMs } = this.policy;
      const failed = exit.status !== 'exited' || exit.exitCode !== 0;
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
        this.spawn(this.spec).then(
          (next) => {
            if (this.stopped || this.restarting) {
              void next.kill();
              return;
            }
            this.incarnation = next;
            this.watch(next);
          },
          () => this.stop(),
        );
      }, backoff);
    });
  }
}

function stoppedMeanwhile(): SandboxError {
  return new SandboxError('not_running', 'the managed process was killed while it was being restarted');
}
