import { Agent, type IncomingMessage, request } from 'node:http';
import { connect } from 'node:net';
import { setLongTimeout } from '../long-timeout.ts';
import type { HealthCheck } from './check.ts';

// One probe of a health check: an HTTP GET, a TCP connection or a command, each bounded by the
// check's timeout and ended at once by an abort. All of it is asynchronous I/O: a thousand
// probes a second cost the event loop little.

export type ProbeResult = { ok: true } | { ok: false; reason: string };

/**
 * Runs an exec check's command (the daemon starts processes through its process table alone,
 * so the caller supplies this). Resolves true when the command exited 0, else false or a short
 * account such as `exited 1` or `killed by SIGKILL`. When the signal aborts (the timeout has
 * passed, or the monitor stopped) it must kill the command; `timeoutMs` is the same deadline,
 * for a runner that would rather hand it on.
 */
export type RunCheck = (
  command: string,
  args: string[],
  timeoutMs: number,
  signal: AbortSignal,
) => Promise<boolean | string>;

export interface ProbeDeps {
  /** Runs exec checks; without it an exec probe fails. */
  runCheck?: RunCheck;
  /** Ends the probe at once, which then settles as failed with reason `aborted`. */
  signal?: AbortSignal;
}

const HOST = '127.0.0.1';
const OK: ProbeResult = Object.freeze({ ok: true });
export const ABORTED: ProbeResult = Object.freeze({ ok: false, reason: 'aborted' });
const HEADERS = Object.freeze({ 'user-agent': 'sandboxd-health-check', accept: '*/*' });
// Shared by every http probe, without keep-alive: each probe is a connection of its own, and no
// socket stays open between probes (Node's global agent keeps them alive since Node 19).
const agent = new Agent({ keepAlive: false });
const ignore = (): void => {};

/**
 * Probes the check once. Never rejects: a failure (refused, a status outside 2xx and 3xx, a
 * nonzero exit, the timeout, an abort) is `{ ok: false, reason }`, the reason a short text such
 * as `http GET 127.0.0.1:8080/ answered 503` or `tcp 127.0.0.1:9 refused`.
 */
export function probe(check: HealthCheck, deps: ProbeDeps = {}): Promise<ProbeResult> {
  const { signal } = deps;
  if (signal?.aborted) return Promise.resolve(ABORTED);
  try {
    switch (check.type) {
      case 'http':
        return probeHttp(check.port ?? 0, check.path ?? '/', check.timeoutMs, signal);
      case 'tcp':
        return probeTcp(check.port ?? 0, check.timeoutMs, signal);
      case 'exec':
        return probeExec(check.command ?? '', check.args ?? [], check.timeoutMs, deps);
    }
  } catch (error) {
    return Promise.resolve(failed(`${check.type} probe failed: ${describe(error)}`));
  }
}

// A GET of the path, healthy on a 2xx or 3xx status (redirects are not followed). The outcome
// is known with the status line; the body is drained, and the connection closed by the end of
// the timeout at the latest.
function probeHttp(
  port: number,
  path: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const settle = firstOnly(resolve);
    const req = request({ agent, host: HOST, port, path, method: 'GET', headers: HEADERS });
    const end = (): void => {
      settle(ABORTED);
      req.destroy();
    };
    const deadline = setLongTimeout(() => {
      settle(failed(`${httpTarget(port, path)} ${timedOut(timeoutMs)}`));
      req.destroy();
    }, timeoutMs);
    signal?.addEventListener('abort', end, { once: true });
    req.once('response', (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      settle(status >= 200 && status < 400 ? OK : failed(`${httpTarget(port, path)} answered ${status}`));
      res.on('error', ignore);
      res.resume();
    });
    req.on('error', (error) => settle(failed(`${httpTarget(port, path)} ${connectionFailure(error)}`)));
    req.once('close', () => {
      deadline.clear();
      signal?.removeEventListener('abort', end);
    });
    req.end();
  });
}

// A connection to the port, closed as soon as it is made.
function probeTcp(port: number, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const settle = firstOnly(resolve);
    const socket = connect({ host: HOST, port });
    const end = (): void => {
      settle(ABORTED);
      socket.destroy();
    };
    const deadline = setLongTimeout(() => {
      settle(failed(`tcp ${HOST}:${port} ${timedOut(timeoutMs)}`));
      socket.destroy();
    }, timeoutMs);
    signal?.addEventListener('abort', end, { once: true });
    socket.once('connect', () => {
      settle(OK);
      socket.destroy();
    });
    socket.on('error', (error) => settle(failed(`tcp ${HOST}:${port} ${connectionFailure(error)}`)));
    socket.once('close', () => {
      deadline.clear();
      signal?.removeEventListener('abort', end);
    });
  });
}

// The command through the caller's runner; at the timeout (or an abort) the runner is told to
// kill it, and the probe settles then without waiting for the runner.
function probeExec(
  command: string,
  args: string[],
  timeoutMs: number,
  deps: ProbeDeps,
): Promise<ProbeResult> {
  const { runCheck, signal } = deps;
  if (!runCheck) return Promise.resolve(failed(`exec ${shown(command)}: no runner for exec checks`));
  return new Promise((resolve) => {
    const kill = new AbortController();
    let settled = false;
    const settle = (result: ProbeResult): void => {
      if (settled) return;
      settled = true;
      deadline.clear();
      signal?.removeEventListener('abort', end);
      resolve(result);
    };
    const end = (): void => {
      settle(ABORTED);
      kill.abort();
    };
    const deadline = setLongTimeout(() => {
      settle(failed(`exec ${shown(command)} ${timedOut(timeoutMs)}`));
      kill.abort();
    }, timeoutMs);
    signal?.addEventListener('abort', end, { once: true });
    let running: Promise<boolean | string>;
    try {
      running = runCheck(command, args, timeoutMs, kill.signal);
    } catch (error) {
      running = Promise.reject(error);
    }
    running.then(
      (outcome) =>
        settle(
          outcome === true
            ? OK
            : failed(`exec ${shown(command)} ${outcome === false ? 'failed' : outcome || 'failed'}`),
        ),
      (error: unknown) => settle(failed(`exec ${shown(command)} failed: ${describe(error)}`)),
    );
  });
}

function failed(reason: string): ProbeResult {
  return { ok: false, reason };
}

function httpTarget(port: number, path: string): string {
  return `http GET ${HOST}:${port}${path.length > 100 ? `${path.slice(0, 100)}…` : path}`;
}

function shown(command: string): string {
  return command.length > 100 ? `${command.slice(0, 100)}…` : command;
}

function timedOut(timeoutMs: number): string {
  return `timed out after ${timeoutMs} ms`;
}

function connectionFailure(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ECONNRESET') return 'reset';
  return `failed: ${describe(error)}`;
}

function describe(error: unknown): string {
  if (error instanceof Error) return (error as NodeJS.ErrnoException).code ?? error.message;
  return String(error);
}

/** Passes on the first result; later ones (an error after the timeout, say) are dropped. */
function firstOnly(resolve: (result: ProbeResult) => void): (result: ProbeResult) => void {
  let settled = false;
  return (result) => {
    if (settled) return;
    settled = true;
    resolve(result);
  };
}
