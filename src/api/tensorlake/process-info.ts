import type { Usage } from '../../core/containment/index.ts';
import { healthCheckToWire } from '../../core/health/check.ts';
import type { SandboxProcess } from '../../core/process.ts';
import type { ProcessTable } from '../../core/process-table.ts';
import type { LastExit, ManagedState } from '../../core/supervisor.ts';
import type { ProcessInfo, ProcessUsage } from './responses.ts';

/** A process as this dialect shows it; times are integer milliseconds since the epoch. */
export function processInfo(table: ProcessTable, entry: SandboxProcess): ProcessInfo {
  const managed = table.managedState(entry);
  return {
    pid: entry.pid,
    status: entry.status,
    exit_code: entry.exitCode,
    signal: entry.signal,
    stdin_writable: entry.stdinWritable,
    command: entry.spec.command,
    args: entry.spec.args,
    started_at: entry.startedAt,
    ended_at: entry.endedAt,
    ...(entry.spec.name === undefined ? {} : { name: entry.spec.name }),
    ...(managed ? { managed: managedInfo(managed) } : {}),
    ...(entry.timedOut ? { timed_out: true as const } : {}),
    oom_killed: entry.oomKilled,
  };
}

/** A process with what it uses now, where its cgroups count it (GET of one process alone: it reads files). */
export async function processInfoWithUsage(table: ProcessTable, entry: SandboxProcess): Promise<ProcessInfo> {
  const usage = await entry.usage();
  return { ...processInfo(table, entry), ...(usage ? { usage: usageInfo(usage) } : {}) };
}

function usageInfo(usage: Usage): ProcessUsage {
  return {
    ...(usage.memoryBytes === undefined ? {} : { memory_bytes: usage.memoryBytes }),
    ...(usage.memoryPeakBytes === undefined ? {} : { memory_peak_bytes: usage.memoryPeakBytes }),
    ...(usage.cpuUsec === undefined ? {} : { cpu_usec: usage.cpuUsec }),
    ...(usage.pids === undefined ? {} : { pids: usage.pids }),
  };
}

type ManagedInfo = NonNullable<ProcessInfo['managed']>;

function managedInfo(state: ManagedState): ManagedInfo {
  const { policy } = state;
  return {
    id: state.id,
    ...(state.name === undefined ? {} : { name: state.name }),
    status: state.status,
    restart_count: state.restartCount,
    restart: {
      policy: policy.policy,
      ...(policy.maxRestarts === undefined ? {} : { max_restarts: policy.maxRestarts }),
      initial_backoff_ms: policy.initialBackoffMs,
      max_backoff_ms: policy.maxBackoffMs,
    },
    ...(state.healthCheck ? { health_check: healthCheckToWire(state.healthCheck) } : {}),
    health_status: state.healthStatus,
    consecutive_health_failures: state.consecutiveHealthFailures,
    ...(state.lastExit ? { last_exit: lastExitInfo(state.lastExit) } : {}),
    ...(state.lastError === undefined ? {} : { last_error: state.lastError }),
    ...(state.nextRestartAt === undefined ? {} : { next_restart_at: state.nextRestartAt }),
  };
}

function lastExitInfo(exit: LastExit): NonNullable<ManagedInfo['last_exit']> {
  return {
    ...(exit.exitCode === null ? {} : { exit_code: exit.exitCode }),
    ...(exit.signal === null ? {} : { signal: exit.signal }),
    oom_killed: exit.oomKilled,
    ended_at: exit.endedAt,
  };
}
