import './zod-setup.ts';
import * as z from 'zod';
import { HEALTH_CHECK_DEFAULTS } from '../../core/health/check.ts';
import type { StartRequest } from '../../core/process-table.ts';
import { RESTART_DEFAULTS } from '../../core/start-request.ts';
import { waitTimeout } from './waiting.ts';

// The SDK may send null for an absent optional field; both mean "not given".
const stringMap = z.record(z.string(), z.string()).nullish();
const uid = z.number().int().nonnegative();

export const user = z
  .union([
    z.string().min(1),
    z.object({ name: z.string().min(1).optional(), uid: uid.optional(), gid: uid.optional() }),
  ])
  .nullish();

// The core fills in what is left out; the document shows its defaults.
const restart = z
  .object({
    policy: z.enum(['never', 'on_failure', 'always']).nullish().meta({ default: RESTART_DEFAULTS.policy }),
    max_restarts: z.number().int().nonnegative().nullish(),
    initial_backoff_ms: z
      .number()
      .int()
      .positive()
      .nullish()
      .meta({ default: RESTART_DEFAULTS.initialBackoffMs }),
    max_backoff_ms: z.number().int().positive().nullish().meta({ default: RESTART_DEFAULTS.maxBackoffMs }),
  })
  .nullish();

// Ranges are the core's to check (see normaliseHealthCheck); the document shows its defaults.
const healthCheck = z
  .object({
    type: z.enum(['http', 'tcp', 'exec']).describe('exec is a sandboxd extension: exit 0 is healthy'),
    port: z.number().int().nullish().describe('http and tcp: the port on 127.0.0.1'),
    path: z
      .string()
      .nullish()
      .meta({ default: HEALTH_CHECK_DEFAULTS.path, description: 'http: the path asked for' }),
    command: z.string().nullish().describe('exec: the program, run as the process is (user, cwd, env)'),
    args: z.array(z.string()).nullish(),
    initial_delay_ms: z.number().int().nullish().meta({ default: HEALTH_CHECK_DEFAULTS.initialDelayMs }),
    interval_ms: z.number().int().nullish().meta({ default: HEALTH_CHECK_DEFAULTS.intervalMs }),
    timeout_ms: z.number().int().nullish().meta({ default: HEALTH_CHECK_DEFAULTS.timeoutMs }),
    failure_threshold: z.number().int().nullish().meta({ default: HEALTH_CHECK_DEFAULTS.failureThreshold }),
  })
  .nullish();

// A sandboxd extension; the core checks the ranges and refuses what this machine cannot hold.
const limits = z
  .object({
    memory_mb: z
      .number()
      .nullish()
      .describe('MiB of memory (swap included) for the process and its descendants'),
    cpus: z.number().nullish().describe('CPU time per wall time: 0.5 is half a CPU'),
    pids: z.number().nullish().describe('processes and threads at once, an integer from 1'),
  })
  .nullish()
  .describe(
    "resource limits, held by the process's cgroups (sandboxd extension); 400 INVALID_REQUEST naming the missing controller when this machine cannot hold one",
  );

export const commandFields = {
  command: z.string({ error: 'required, a string' }).min(1, 'must not be empty'),
  args: z.array(z.string()).nullish(),
  env: stringMap,
  working_dir: z.string().nullish(),
  user,
};

/** Seconds (may be fractional); the process group is SIGKILLed when they have passed. */
export const timeout = z.number().positive().nullish();

export const startBody = z
  .object({
    ...commandFields,
    stdin_mode: z.enum(['closed', 'pipe']).nullish(),
    stdout_mode: z.enum(['capture', 'discard']).nullish(),
    stderr_mode: z.enum(['capture', 'discard']).nullish(),
    name: z.string().nullish(),
    restart,
    health_check: healthCheck,
    timeout,
    limits,
  })
  .meta({ id: 'StartRequest' });

export const runBody = z.object({ ...commandFields, timeout, limits }).meta({ id: 'RunRequest' });

export const signalBody = z
  .object({
    signal: z.unknown().describe('a signal number: 1..31 or 34..64'),
    group: z.boolean().nullish().describe('false: the leader alone (default: the whole group)'),
  })
  .meta({ id: 'SignalRequest' });

type CommandBody = z.infer<typeof runBody>;
type TerminalFields = { rows?: number | null; cols?: number | null };

/** The core's start request from any of this dialect's bodies: a field mapping, no defaults. */
export function toStartRequest(
  body: CommandBody & Partial<z.infer<typeof startBody>>,
  terminal?: TerminalFields,
): StartRequest {
  const { restart: requestedRestart, health_check: check } = body;
  return {
    command: body.command,
    args: body.args ?? undefined,
    env: body.env ?? undefined,
    cwd: body.working_dir ?? undefined,
    user: body.user ?? undefined,
    stdin: body.stdin_mode ?? undefined,
    stdout: body.stdout_mode ?? undefined,
    stderr: body.stderr_mode ?? undefined,
    name: body.name ?? undefined,
    pty: terminal,
    restart: requestedRestart
      ? {
          policy: requestedRestart.policy ?? undefined,
          maxRestarts: requestedRestart.max_restarts ?? undefined,
          initialBackoffMs: requestedRestart.initial_backoff_ms ?? undefined,
          maxBackoffMs: requestedRestart.max_backoff_ms ?? undefined,
        }
      : undefined,
    healthCheck: check ?? undefined,
    deadlineMs: body.timeout ? body.timeout * 1000 : undefined,
    limits: body.limits
      ? {
          memoryMb: body.limits.memory_mb ?? undefined,
          cpus: body.limits.cpus ?? undefined,
          pids: body.limits.pids ?? undefined,
        }
      : undefined,
  };
}

export const filesQuery = z.object({
  path: z
    .string({ error: 'required' })
    .min(1, 'required')
    .describe("an absolute path, or one relative to the daemon user's home"),
});

export const processWaitQuery = z.object({
  until: z
    .enum(['running', 'healthy', 'exited'])
    .default('exited')
    .describe('running; healthy (its health check passed); exited (this incarnation ended)'),
  timeout_ms: waitTimeout,
});
