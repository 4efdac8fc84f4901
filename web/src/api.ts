// The wire type, as the daemon's schema declares it (a type only: nothing of the daemon is bundled).
import type { ProcessInfo } from '../../src/api/tensorlake/responses.ts';
import { SIGNAL_NUMBERS, signalName } from '../../src/core/signal-numbers.ts';

// The console is a client of the public REST routes, like any other; the browser's session
// cookie authorizes it, so no credential ever passes through this code.

export const API = '/api/v1';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** The session has ended (logout elsewhere, expiry, a daemon restart): back to the login form. */
export function toLogin(): never {
  window.location.assign('/ui/login');
  throw new ApiError(401, 'not logged in');
}

export async function failure(response: Response): Promise<ApiError> {
  if (response.status === 401) toLogin();
  const text = await response.text();
  try {
    const body = JSON.parse(text) as { error?: string; code?: string };
    return new ApiError(response.status, body.error ?? text, body.code);
  } catch {
    return new ApiError(response.status, text || response.statusText);
  }
}

/** One REST call; JSON in, JSON (or nothing) out. */
export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${API}${path}`, {
    method,
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

export type { ProcessInfo };

export { signalName };

/** The signals the process menu offers, by number (the API takes numbers). */
export const SIGNALS: Record<number, string> = Object.fromEntries(
  (
    ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGKILL', 'SIGUSR1', 'SIGUSR2', 'SIGTERM', 'SIGCONT', 'SIGSTOP'] as const
  ).map((name) => [SIGNAL_NUMBERS[name], name]),
);

/** How a process ended, in words; empty while it runs. */
export function endOf(info: ProcessInfo): string {
  if (info.status === 'oom_killed') return 'OOM';
  if (info.status === 'exited') return `exit ${info.exit_code}`;
  if (info.status === 'signaled' && info.signal !== null) return signalName(info.signal);
  return '';
}

/** A command line as a person would type it. */
export function commandLine(info: Pick<ProcessInfo, 'command' | 'args'>): string {
  const quote = (word: string) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`);
  return [info.command, ...info.args].map(quote).join(' ');
}
