import type { IncomingMessage } from 'node:http';

/** The daemon answered with an error, in the REST dialect's `{error, code}` shape when it could. */
export class DaemonError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'DaemonError';
  }

  static async from(response: Response): Promise<DaemonError> {
    const text = await response.text().catch(() => '');
    try {
      const body = JSON.parse(text) as { error?: unknown; code?: unknown };
      if (typeof body.error === 'string' && typeof body.code === 'string') {
        return new DaemonError(response.status, body.code, body.error);
      }
    } catch {
      // Not the dialect's shape: a proxy in between, most likely. Its text says more than nothing.
    }
    const message = text.trim().slice(0, 200) || response.statusText || `HTTP ${response.status}`;
    return new DaemonError(response.status, `HTTP_${response.status}`, message);
  }

  /** A WebSocket handshake the daemon refused (its answer, as `ws` hands it over). */
  static async fromHandshake(response: IncomingMessage): Promise<DaemonError> {
    let text = '';
    for await (const chunk of response) text += chunk;
    const status = response.statusCode ?? 0;
    return DaemonError.from(new Response(text, { status: status < 200 || status > 599 ? 500 : status }));
  }
}

/** No answer at all: nothing listens there, the name does not resolve, the connection broke. */
export class UnreachableError extends Error {
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`cannot reach the daemon at ${url}: ${reason}`);
    this.name = 'UnreachableError';
  }
}

const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is the daemon running, and on this port?)',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  UND_ERR_SOCKET: 'connection closed by the other side',
};

/** Why a request failed before any answer, in words; fetch hides the system error in `cause`. */
export function networkReason(error: unknown): string {
  let cause: unknown = error;
  while (cause instanceof Error) {
    const { code, errors } = cause as NodeJS.ErrnoException & { errors?: unknown[] };
    if (code && code in REASONS) return REASONS[code] as string;
    if (code) return `${code}: ${cause.message}`;
    if (Array.isArray(errors) && errors.length > 0) {
      cause = errors[0];
      continue;
    }
    // fetch will not connect to ports that browsers block (6000, 6665-6669, 10080, …).
    if (cause.message === 'bad port') return 'fetch refuses to connect to this port; use another one';
    if (cause.cause === undefined) return cause.message;
    cause = cause.cause;
  }
  return String(cause);
}
