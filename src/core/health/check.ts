import { SandboxError } from '../errors.ts';

// A managed process's health check: the request's shape (the SDK's `health_check`, plus our
// `exec`), the core's normalised form with every default filled in, and the way between them.

export type HealthCheckType = 'http' | 'tcp' | 'exec';

/** What a process's health is reported as; `disabled` when it has no check. */
export type HealthStatus = 'disabled' | 'starting' | 'healthy' | 'unhealthy';

/** A health check with every default filled in and every field validated. */
export interface HealthCheck {
  type: HealthCheckType;
  /** http and tcp: the port on 127.0.0.1, 1..65535. */
  port?: number;
  /** http: the path and query asked for, starting with `/` (default `/`). */
  path?: string;
  /** exec: the program run as the check (exit 0 within the timeout is healthy). */
  command?: string;
  /** exec: its arguments (default none). */
  args?: string[];
  /** Before the first probe; 0 probes at once. */
  initialDelayMs: number;
  /** From the end of one probe to the start of the next. */
  intervalMs: number;
  /** A probe that has not succeeded by then fails. */
  timeoutMs: number;
  /** Consecutive failures that make the process unhealthy, 1..1000. */
  failureThreshold: number;
}

/** The request's shape (snake_case, as the SDK sends it); null means not given. */
export interface HealthCheckWire {
  type: HealthCheckType;
  port?: number | null;
  path?: string | null;
  command?: string | null;
  args?: string[] | null;
  initial_delay_ms?: number | null;
  interval_ms?: number | null;
  timeout_ms?: number | null;
  failure_threshold?: number | null;
}

/** What a check that leaves them out gets (the SDK's documented defaults). */
export const HEALTH_CHECK_DEFAULTS = {
  path: '/',
  initialDelayMs: 5000,
  intervalMs: 1000,
  timeoutMs: 500,
  failureThreshold: 3,
} as const;

/** The longest delay, interval or timeout accepted: a day. */
export const MAX_HEALTH_CHECK_MS = 24 * 60 * 60 * 1000;
export const MAX_FAILURE_THRESHOLD = 1000;
const MAX_PATH_LENGTH = 2048;
const MAX_COMMAND_LENGTH = 4096;
const MAX_ARGS = 256;
// What node:http puts on the request line unescaped: printable ASCII without the space.
const PATH_PATTERN = /^\/[\x21-\x7e]*$/;

/**
 * The check a request asks for (`health_check` in its wire shape, null fields as absent, other
 * fields ignored), defaults filled in. Throws SandboxError('invalid_argument',
 * 'health_check.<field>: ...') naming the first field that is wrong.
 */
export function normaliseHealthCheck(raw: unknown): HealthCheck {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw invalid('health_check', 'must be an object');
  }
  const given = raw as Record<string, unknown>;
  const type = given.type;
  if (type !== 'http' && type !== 'tcp' && type !== 'exec') {
    throw invalid('type', 'must be "http", "tcp" or "exec"');
  }
  const timing = {
    initialDelayMs: duration(given, 'initial_delay_ms', HEALTH_CHECK_DEFAULTS.initialDelayMs, 0),
    intervalMs: duration(given, 'interval_ms', HEALTH_CHECK_DEFAULTS.intervalMs, 1),
    timeoutMs: duration(given, 'timeout_ms', HEALTH_CHECK_DEFAULTS.timeoutMs, 1),
    failureThreshold: integer(
      given,
      'failure_threshold',
      HEALTH_CHECK_DEFAULTS.failureThreshold,
      1,
      MAX_FAILURE_THRESHOLD,
    ),
  };
  if (type === 'exec') {
    for (const field of ['port', 'path'] as const) notFor(given, field, 'exec');
    return { type, command: command(given.command), args: args(given.args), ...timing };
  }
  for (const field of ['command', 'args'] as const) notFor(given, field, type);
  const port = given.port;
  if (port === undefined || port === null) throw invalid('port', `required for ${type} checks`);
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw invalid('port', 'must be an integer from 1 to 65535');
  }
  if (type === 'tcp') {
    notFor(given, 'path', 'tcp');
    return { type, port, ...timing };
  }
  return { type, port, path: path(given.path), ...timing };
}

/** The check as a response echoes it: snake_case, every default shown, nothing null. */
export interface HealthCheckEcho {
  type: HealthCheckType;
  port?: number;
  path?: string;
  command?: string;
  args?: string[];
  initial_delay_ms: number;
  interval_ms: number;
  timeout_ms: number;
  failure_threshold: number;
}

export function healthCheckToWire(check: HealthCheck): HealthCheckEcho {
  return {
    type: check.type,
    ...(check.port === undefined ? {} : { port: check.port }),
    ...(check.path === undefined ? {} : { path: check.path }),
    ...(check.command === undefined ? {} : { command: check.command }),
    ...(check.args === undefined ? {} : { args: check.args }),
    initial_delay_ms: check.initialDelayMs,
    interval_ms: check.intervalMs,
    timeout_ms: check.timeoutMs,
    failure_threshold: check.failureThreshold,
  };
}

function invalid(field: string, message: string): SandboxError {
  const name = field === 'health_check' ? field : `health_check.${field}`;
  return new SandboxError('invalid_argument', `${name}: ${message}`);
}

function notFor(given: Record<string, unknown>, field: string, type: HealthCheckType): void {
  const value = given[field];
  if (value !== undefined && value !== null) throw invalid(field, `not allowed for ${type} checks`);
}

function integer(
  given: Record<string, unknown>,
  field: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const value = given[field];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(field, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

function duration(given: Record<string, unknown>, field: string, fallback: number, min: number): number {
  const value = given[field];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_HEALTH_CHECK_MS) {
    throw invalid(
      field,
      `must be an integer number of milliseconds from ${min} to ${MAX_HEALTH_CHECK_MS} (a day)`,
    );
  }
  return value;
}

function path(value: unknown): string {
  if (value === undefined || value === null) return HEALTH_CHECK_DEFAULTS.path;
  if (typeof value !== 'string') throw invalid('path', 'must be a string');
  if (!value.startsWith('/')) throw invalid('path', 'must start with "/"');
  if (value.length > MAX_PATH_LENGTH) throw invalid('path', `must be at most ${MAX_PATH_LENGTH} characters`);
  if (!PATH_PATTERN.test(value)) {
    throw invalid('path', 'must be printable ASCII without spaces (percent-encode the rest)');
  }
  return value;
}

function command(value: unknown): string {
  if (value === undefined || value === null) throw invalid('command', 'required for exec checks');
  if (typeof value !== 'string') throw invalid('command', 'must be a string');
  if (value === '') throw invalid('command', 'must not be empty');
  if (value.length > MAX_COMMAND_LENGTH) {
    throw invalid('command', `must be at most ${MAX_COMMAND_LENGTH} characters`);
  }
  if (value.includes('\0')) throw invalid('command', 'must not contain NUL');
  return value;
}

function args(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalid('args', 'must be an array of strings');
  if (value.length > MAX_ARGS) throw invalid('args', `must have at most ${MAX_ARGS} items`);
  for (const [index, arg] of value.entries()) {
    if (typeof arg !== 'string') throw invalid(`args[${index}]`, 'must be a string');
    if (arg.includes('\0')) throw invalid(`args[${index}]`, 'must not contain NUL');
  }
  return [...value];
}
