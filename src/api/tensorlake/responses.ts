import './zod-setup.ts';
import * as z from 'zod';

// What this dialect answers, as zod schemas: the OpenAPI document is generated from them, the
// route handlers are typed by them, and the client's types are inferred from them.

const epochMs = z.number().int().nonnegative().describe('milliseconds since the epoch');
const count = z.number().int().nonnegative();

export const errorResponse = z
  .object({
    error: z.string().describe('what went wrong, for a person'),
    code: z.string().describe('a machine-readable code such as NOT_FOUND or SPAWN_FAILED'),
  })
  .meta({ id: 'Error' });

const healthCheckInfo = z
  .object({
    type: z.enum(['http', 'tcp', 'exec']),
    port: z.number().int().optional(),
    path: z.string().optional(),
    command: z.string().optional(),
    args: z.array(z.string()).optional(),
    initial_delay_ms: count,
    interval_ms: count,
    timeout_ms: count,
    failure_threshold: count,
  })
  .meta({ id: 'HealthCheck' });

const lastExit = z
  .object({
    exit_code: z.number().int().optional(),
    signal: z.number().int().optional(),
    oom_killed: z.boolean(),
    ended_at: epochMs,
  })
  .meta({ id: 'LastExit' });

const managedInfo = z
  .object({
    id: z.string(),
    name: z.string().optional(),
    status: z
      .enum(['starting', 'running', 'backing_off', 'stopped'])
      .describe('starting: running, its health check not passed yet'),
    restart_count: count,
    restart: z.object({
      policy: z.enum(['never', 'on_failure', 'always']),
      max_restarts: count.optional(),
      initial_backoff_ms: count,
      max_backoff_ms: count,
    }),
    health_check: healthCheckInfo.optional(),
    health_status: z.enum(['disabled', 'starting', 'healthy', 'unhealthy']),
    consecutive_health_failures: count,
    last_exit: lastExit.optional().describe('how the last incarnation ended'),
    last_error: z.string().optional().describe('why the last incarnation was stopped or failed'),
    next_restart_at: epochMs.optional(),
  })
  .meta({ id: 'ManagedInfo' });

const usageInfo = z
  .object({
    memory_bytes: count.optional().describe('memory in use now'),
    memory_peak_bytes: count.optional().describe('the most memory in use at once so far'),
    cpu_usec: count.optional().describe('CPU time used, user and system, in microseconds'),
    pids: count.optional().describe('processes and threads now'),
  })
  .meta({
    id: 'ProcessUsage',
    description:
      'what the process and its descendants use together, as its cgroups count it (sandboxd extension); ' +
      'a figure its cgroups cannot count is left out',
  });

export const processInfoResponse = z
  .object({
    pid: z.number().int().positive(),
    status: z
      .enum(['running', 'exited', 'signaled', 'oom_killed'])
      .describe(
        '`oom_killed` when the kernel ended it (or a descendant) for memory; `exit_code` or `signal` still say how it ended',
      ),
    exit_code: z.number().int().nullable().describe('set once the process has exited'),
    signal: z.number().int().nullable().describe('the signal that ended it, once it has been signaled'),
    stdin_writable: z.boolean(),
    command: z.string(),
    args: z.array(z.string()),
    started_at: epochMs,
    ended_at: epochMs.nullable(),
    name: z.string().optional(),
    managed: managedInfo.optional(),
    timed_out: z.literal(true).optional().describe('present when its `timeout` ended it'),
    oom_killed: z
      .boolean()
      .describe(
        "the kernel's OOM killer ended it or a descendant, as its memory cgroup counted (only with a memory cgroup: see `limits`)",
      ),
    usage: usageInfo
      .optional()
      .describe('on GET of one process, while it runs and its cgroups can count it (sandboxd extension)'),
  })
  .meta({ id: 'ProcessInfo' });

export const processListResponse = z
  .object({ processes: z.array(processInfoResponse) })
  .meta({ id: 'ProcessList' });

export const outputPageResponse = z
  .object({
    pid: z.number().int().positive(),
    lines: z.array(z.string()),
    line_count: count,
    next_after: count.describe('the id of the last line returned: pass it as `after` for the next page'),
    truncated_bytes: count.describe('bytes of output dropped from the oldest end'),
  })
  .meta({ id: 'OutputPage' });

export const outputEventData = z
  .object({
    line: z.string(),
    timestamp: epochMs,
    stream: z.enum(['stdout', 'stderr', 'pty']).optional().describe('only on /output/follow'),
  })
  .meta({ id: 'OutputEvent', description: 'the data of an `output` event; its SSE `id:` is the line id' });

export const truncatedEventData = z
  .object({
    truncated_bytes: count.describe('bytes dropped past the retention cap before this reader got them'),
    stream: z.enum(['stdout', 'stderr', 'pty']),
  })
  .meta({
    id: 'TruncatedEvent',
    description: 'the data of a `truncated` event; its `id:` is where the next whole line resumes',
  });

export const eofEventData = z.object({}).meta({
  id: 'EofEvent',
  description: 'the data of the `eof` event: the process has ended, its output is drained',
});

export const runFrameData = z
  .union([
    z.object({ pid: z.number().int().positive(), started_at: epochMs }),
    z.object({ line: z.string(), timestamp: epochMs, stream: z.enum(['stdout', 'stderr']) }),
    z.object({ exit_code: z.number().int(), oom_killed: z.literal(true).optional() }),
    z.object({
      signal: z.number().int(),
      timed_out: z.literal(true).optional(),
      oom_killed: z.literal(true).optional().describe("the kernel's OOM killer ended it (or a descendant)"),
    }),
    z.object({ error: z.string(), exit_code: z.literal(127) }),
  ])
  .meta({
    id: 'RunFrame',
    description: 'one `data:` frame of a run: the start, a line, then exactly one final frame',
  });

export const successResponse = z.object({ success: z.literal(true) }).meta({ id: 'Success' });

export const healthResponse = z.object({ healthy: z.literal(true) }).meta({ id: 'Health' });

export const infoResponse = z
  .object({
    version: z.string(),
    uptime_secs: count,
    running_processes: count,
    total_processes: count,
  })
  .meta({ id: 'DaemonInfo' });

export const ptyCreatedResponse = z
  .object({
    session_id: z.string(),
    token: z.string().describe('opens the session WebSocket (`?token=` or `X-PTY-Token`)'),
  })
  .meta({ id: 'PtyCreated' });

export const ptySessionResponse = z
  .object({
    session_id: z.string(),
    pid: z.number().int().positive(),
    command: z.string(),
    args: z.array(z.string()),
    rows: z.number().int().positive(),
    cols: z.number().int().positive(),
    created_at: epochMs,
    ended_at: epochMs.nullable(),
    exit_code: z.number().int().nullable().describe('the exit status, or 128 + N after signal N'),
    is_alive: z.boolean(),
  })
  .meta({ id: 'PtySession' });

export const ptyListResponse = z
  .object({ sessions: z.array(ptySessionResponse) })
  .meta({ id: 'PtySessionList' });

export const fileListResponse = z
  .object({
    path: z.string().describe('the directory, resolved'),
    entries: z.array(
      z.object({
        name: z.string(),
        is_dir: z.boolean(),
        size: count.nullable().describe('null for a directory'),
        modified_at: epochMs,
      }),
    ),
  })
  .meta({ id: 'FileList', description: 'directories first, then files, each by name' });

const portNumber = z.number().int().min(1).max(65535);

export const listeningPortResponse = z
  .object({
    port: portNumber,
    address: z.string().describe('the address it listens on: `127.0.0.1`, `0.0.0.0`, `::`, `::1`, …'),
    pid: z
      .number()
      .int()
      .positive()
      .nullable()
      .describe(
        "the OS process holding the socket; null when the daemon cannot see it (another user's " +
          'process while the daemon is not root, or one in another PID namespace)',
      ),
    process_pid: z
      .number()
      .int()
      .positive()
      .optional()
      .describe("the daemon's process the holder is, or descends from; absent when none"),
    command: z.string().nullable().describe("the holder's command line; null with `pid`"),
    public: z.boolean().describe("opened to anyone, without the daemon's credentials"),
  })
  .meta({ id: 'ListeningPort' });

export const portListResponse = z
  .object({ ports: z.array(listeningPortResponse).describe('by port, IPv4 before IPv6') })
  .meta({ id: 'PortList' });

export const portReadyResponse = z
  .object({
    port: portNumber,
    address: z.enum(['127.0.0.1', '::1']).describe('where the connection was accepted'),
    waited_ms: count.describe('how long the wait took'),
  })
  .meta({ id: 'PortReady' });
export const previewLinkResponse = z
  .object({
    url: z.string().describe('opens the preview once: its code is swapped for a cookie of that port alone'),
    port: z.number().int().min(1).max(65535),
    expires_at: epochMs.describe('the link must be opened before this'),
  })
  .meta({ id: 'PreviewLink' });

export type ProcessInfo = z.output<typeof processInfoResponse>;
export type ProcessUsage = z.output<typeof usageInfo>;
export type OutputPage = z.output<typeof outputPageResponse>;
export type OutputEvent = z.output<typeof outputEventData>;
export type RunFrame = z.output<typeof runFrameData>;
export type TruncatedEvent = z.output<typeof truncatedEventData>;
export type DaemonInfo = z.output<typeof infoResponse>;
export type PtyCreated = z.output<typeof ptyCreatedResponse>;
export type PtySessionInfo = z.output<typeof ptySessionResponse>;
export type ErrorBody = z.output<typeof errorResponse>;
export type FileList = z.output<typeof fileListResponse>;
export type ListeningPortInfo = z.output<typeof listeningPortResponse>;
export type PortReady = z.output<typeof portReadyResponse>;
export type PreviewLink = z.output<typeof previewLinkResponse>;
