import { type LongTimeout, setLongTimeout } from '../long-timeout.ts';
import type { HealthCheck, HealthStatus } from './check.ts';
import { type ProbeDeps, type ProbeResult, probe, type RunCheck } from './probe.ts';

/** A monitor's view of one incarnation's health. */
export interface HealthState {
  status: Exclude<HealthStatus, 'disabled'>;
  consecutiveFailures: number;
  /** The reason of the latest failed probe, kept after a recovery. */
  lastFailure?: string;
  /** Probes completed so far. */
  probes: number;
}

/** What a process without a health check reports. */
export const HEALTH_DISABLED = Object.freeze({ status: 'disabled', consecutiveFailures: 0 } as const);

export interface HealthMonitorOptions {
  /** Runs exec checks; required for one. */
  runCheck?: RunCheck;
  /**
   * Called when the failures in a row reach the threshold, with the last one's reason: once
   * per crossing (again only after a success in between). Must not throw.
   */
  onUnhealthy?: (reason: string) => void;
  /** Called after every probe, the monitor's state already updated. Must not throw. */
  onProbe?: (result: ProbeResult, monitor: HealthMonitor) => void;
}

/**
 * Probes one incarnation of a managed process by its health check: first `initialDelayMs`
 * after start(), then `intervalMs` after the previous probe finished, so probes never overlap.
 *
 * The status is `starting` until the first success, `healthy` after a success, and
 * `unhealthy` once `failureThreshold` probes in a row have failed (failures while starting
 * count too). A success resets the count. Once unhealthy it keeps probing, and a success makes
 * it healthy again: what to do about an unhealthy process (restart it, say) is onUnhealthy's
 * business, which stops this monitor when it replaces the incarnation.
 *
 * stop() is final: it clears the timer and aborts a probe under way, whose result is dropped;
 * the state stays as it was, for reporting.
 */
export class HealthMonitor {
  private current: HealthState['status'] = 'starting';
  private failures = 0;
  private failure: string | undefined;
  private completed = 0;
  private timer: LongTimeout | undefined;
  private probing = false;
  private started = false;
  private stopped = false;
  private readonly abort = new AbortController();
  private readonly deps: ProbeDeps;
  // Bound once, so that a probe's round allocates no closures of the monitor's own.
  private readonly run = (): void => this.probeNow();
  private readonly settle = (result: ProbeResult): void => this.record(result);

  constructor(
    readonly check: HealthCheck,
    private readonly options: HealthMonitorOptions = {},
  ) {
    if (check.type === 'exec' && !options.runCheck) throw new Error('an exec health check needs a runCheck');
    this.deps = { runCheck: options.runCheck, signal: this.abort.signal };
  }

  get status(): HealthState['status'] {
    return this.current;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  get lastFailure(): string | undefined {
    return this.failure;
  }

  /** Probes completed so far (an aborted one does not count). */
  get probes(): number {
    return this.completed;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  state(): HealthState {
    return {
      status: this.current,
      consecutiveFailures: this.failures,
      ...(this.failure === undefined ? {} : { lastFailure: this.failure }),
      probes: this.completed,
    };
  }

  /** Begins probing (after the initial delay). Idempotent; does nothing once stopped. */
  start(): this {
    if (this.started || this.stopped) return this;
    this.started = true;
    this.timer = setLongTimeout(this.run, this.check.initialDelayMs);
    return this;
  }

  /** Probes no more: clears the timer and aborts a probe under way. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.timer?.clear();
    this.timer = undefined;
    this.abort.abort();
  }

  private probeNow(): void {
    this.timer = undefined;
    if (this.stopped || this.probing) return;
    this.probing = true;
    void probe(this.check, this.deps).then(this.settle);
  }

  private record(result: ProbeResult): void {
    this.probing = false;
    if (this.stopped) return;
    this.completed++;
    let crossed = false;
    if (result.ok) {
      this.current = 'healthy';
      this.failures = 0;
    } else {
      this.failures++;
      this.failure = result.reason;
      if (this.failures >= this.check.failureThreshold && this.current !== 'unhealthy') {
        this.current = 'unhealthy';
        crossed = true;
      }
    }
    // The next probe is due first, so that a callback that stops the monitor cancels it.
    this.timer = setLongTimeout(this.run, this.check.intervalMs);
    this.options.onProbe?.(result, this);
    if (crossed && !this.stopped && !result.ok) this.options.onUnhealthy?.(result.reason);
  }
}
