import { SandboxError } from './errors.ts';
import { type HealthCheck, type HealthCheckWire, normaliseHealthCheck } from './health/check.ts';
import { resolvePath } from './paths.ts';
import { assertProcessName } from './process-name.ts';
import type { ResolvedUser, UserSpec } from './users.ts';

export interface TerminalSize {
  cols: number;
  rows: number;
}

/**
 * What one process and all its descendants may use together, in the kernel's units. Only the
 * limits asked for are present; a process without any has no `limits` at all.
 */
export interface Limits {
  memoryBytes?: number;
  /** CPU time per wall-clock time: 0.5 is half of one CPU, 2 is two whole CPUs. */
  cpus?: number;
  /** Processes and threads at once. */
  pids?: number;
}

/** Limits as a request gives them: memory in MiB. */
export interface LimitsRequest {
  memoryMb?: number;
  cpus?: number;
  pids?: number;
}

export type RestartPolicyName = 'never' | 'on_failure' | 'always';

/** How a managed process is restarted, every field filled in. */
export interface RestartPolicy {
  policy: RestartPolicyName;
  maxRestarts?: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
}

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
  /** Run in a pseudo-terminal of this size instead of with pipes. */
  pty?: TerminalSize;
  /** The variables the caller set, over the daemon's environment. */
  requestedEnv: Record<string, string>;
  /** Enforced by the process's cgroups; absent when none were asked for. */
  limits?: Limits;
}

/**
 * A request to start a process, as every dialect hands it over: each maps its own fields onto
 * this, and the rules for what is left out or out of range live here alone.
 */
export interface StartRequest {
  command: string;
  args?: string[];
  /** Merged over the daemon's environment. */
  env?: Record<string, string>;
  /** Absolute, or `~` and relative paths from the user's home; empty means not given. */
  cwd?: string;
  user?: UserSpec;
  stdin?: 'closed' | 'pipe';
  stdout?: 'capture' | 'discard';
  stderr?: 'capture' | 'discard';
  name?: string;
  /**
   * `name` (the default): the process name rule (see processNameProblem). `tag`: envd's, any
   * text, which its dialect looks up by name only.
   */
  nameKind?: 'name' | 'tag';
  /** Run in a pseudo-terminal; a side missing or 0 takes the default, and sides are clamped. */
  pty?: TerminalRequest;
  /** Given (or a name given): the process is managed and restarted by this policy. */
  restart?: RestartRequest;
  /** Probes a managed process (and makes a process managed); in the shape the SDK sends. */
  healthCheck?: HealthCheckWire;
  /** The process group is SIGKILLed when this has passed. */
  deadlineMs?: number;
  /** Memory, CPU and process count of the process and its descendants together. */
  limits?: LimitsRequest;
}

export interface TerminalRequest {
  cols?: number | null;
  rows?: number | null;
}

export interface RestartRequest {
  /** `on_failure` when a restart is asked for without one. */
  policy?: RestartPolicyName;
  maxRestarts?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

export const DEFAULT_TERMINAL_SIZE: TerminalSize = { cols: 80, rows: 24 };
const MAX_TERMINAL_SIZE: TerminalSize = { cols: 1000, rows: 500 };
/** What a restart that leaves them out gets (a name alone gets policy `never`). */
export const RESTART_DEFAULTS = {
  policy: 'on_failure',
  initialBackoffMs: 500,
  maxBackoffMs: 30_000,
} as const satisfies Required<Omit<RestartRequest, 'maxRestarts'>>;

/** A terminal size within what any terminal shows: 1..1000 columns, 1..500 rows. */
export function clampTerminalSize({ cols, rows }: TerminalSize): TerminalSize {
  const clamp = (value: number, max: number) => Math.min(max, Math.max(1, Math.trunc(value)));
  return { cols: clamp(cols, MAX_TERMINAL_SIZE.cols), rows: clamp(rows, MAX_TERMINAL_SIZE.rows) };
}

/** The size asked for, a side missing or 0 taking the default (80×24), clamped. */
export function terminalSize(given: TerminalRequest = {}): TerminalSize {
  return clampTerminalSize({
    cols: given.cols || DEFAULT_TERMINAL_SIZE.cols,
    rows: given.rows || DEFAULT_TERMINAL_SIZE.rows,
  });
}

/**
 * The policy a process is supervised by: a restart asked for without a policy restarts on
 * failure; a name alone makes a managed process that restarts only when asked (`never`).
 */
export function restartPolicy(given: RestartRequest | undefined, named: boolean): RestartPolicy | undefined {
  if (given === undefined && !named) return undefined;
  return {
    policy: given ? (given.policy ?? RESTART_DEFAULTS.policy) : 'never',
    maxRestarts: given?.maxRestarts,
    initialBackoffMs: given?.initialBackoffMs ?? RESTART_DEFAULTS.initialBackoffMs,
    maxBackoffMs: given?.maxBackoffMs ?? RESTART_DEFAULTS.maxBackoffMs,
  };
}

/**
 * What is wrong with a request before anything is looked up (its user, its directory): what
 * exec(2) cannot carry, and a name that breaks the name rule (an envd tag keeps envd's).
 */
export function assertStartable(request: StartRequest): void {
  assertExecArguments(request);
  if (request.name !== undefined && request.nameKind !== 'tag') assertProcessName(request.name);
}

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

/** How a managed process is kept going; undefined for a process that is not managed. */
export interface ManagedConfig {
  policy: RestartPolicy;
  healthCheck?: HealthCheck;
}

/** A name, a restart policy or a health check makes a process managed (`never` unless a policy is given). */
export function managedConfig(request: StartRequest): ManagedConfig | undefined {
  const healthCheck = request.healthCheck && normaliseHealthCheck(request.healthCheck);
  const policy = restartPolicy(request.restart, request.name !== undefined || healthCheck !== undefined);
  if (!policy) return undefined;
  return healthCheck ? { policy, healthCheck } : { policy };
}

export interface StartContext {
  /** The environment every process starts from. */
  baseEnv: Record<string, string>;
  /** The user the request names, resolved; undefined runs it as the daemon's user. */
  user: ResolvedUser | undefined;
  /** The daemon's user's home: where `~` and relative paths start when no user is named. */
  home: string;
}

/**
 * The process to start, every default filled in (pure: the table checks that the working
 * directory exists, and falls back to `/` for a user whose home does not).
 */
export function normaliseStart(request: StartRequest, { baseEnv, user, home }: StartContext): ProcessSpec {
  const userEnv: Record<string, string> = user?.name
    ? { HOME: user.home ?? '/', USER: user.name, LOGNAME: user.name }
    : {};
  const cwd =
    request.cwd === undefined || request.cwd === ''
      ? undefined
      : resolvePath(request.cwd, user ? (user.home ?? '/') : home, 'cwd');
  return {
    command: request.command,
    args: request.args ?? [],
    env: { ...baseEnv, ...userEnv, ...request.env },
    cwd,
    user,
    stdin: request.stdin ?? 'closed',
    stdout: request.stdout ?? 'capture',
    stderr: request.stderr ?? 'capture',
    name: request.name,
    pty: request.pty ? terminalSize(request.pty) : undefined,
    requestedEnv: request.env ?? {},
    limits: normaliseLimits(request.limits),
  };
}

const MiB = 1024 * 1024;
// Beyond these a number is a mistake, not a limit (the kernel's own maxima are higher).
const MAX_CPUS = 4096;
const MAX_PIDS = 4_194_304;

/**
 * The limits in the kernel's units, undefined when none is given. Messages name the fields as
 * the REST dialect spells them, the only one that carries limits.
 */
export function normaliseLimits(given: LimitsRequest | undefined): Limits | undefined {
  if (given === undefined) return undefined;
  const fail = (field: string, problem: string): never => {
    throw new SandboxError('invalid_argument', `limits.${field}: ${problem}`);
  };
  const limits: Limits = {};
  const { memoryMb, cpus, pids } = given;
  if (memoryMb !== undefined) {
    if (!Number.isFinite(memoryMb) || memoryMb <= 0) fail('memory_mb', 'must be a positive number of MiB');
    limits.memoryBytes = Math.ceil(memoryMb * MiB);
  }
  if (cpus !== undefined) {
    if (!Number.isFinite(cpus) || cpus <= 0 || cpus > MAX_CPUS)
      fail('cpus', `must be a number above 0 and at most ${MAX_CPUS} (0.5 is half a CPU)`);
    limits.cpus = cpus;
  }
  if (pids !== undefined) {
    if (!Number.isInteger(pids) || pids < 1 || pids > MAX_PIDS)
      fail('pids', `must be an integer from 1 to ${MAX_PIDS}`);
    limits.pids = pids;
  }
  return Object.keys(limits).length === 0 ? undefined : limits;
}
