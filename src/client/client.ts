import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type WebSocket from 'ws';
import type * as z from 'zod';
import type { createBody as ptyCreateBody } from '../api/tensorlake/pty-routes.ts';
import type * as Wire from '../api/tensorlake/responses.ts';
import type { startBody } from '../api/tensorlake/schemas.ts';
import { DaemonError, networkReason, UnreachableError } from './errors.ts';
import { readSseBatches } from './sse.ts';
import type { TerminalConnection } from './terminal.ts';

export type StartRequest = z.input<typeof startBody>;
export type PtyCreateRequest = z.input<typeof ptyCreateBody>;
export type OutputView = 'stdout' | 'stderr' | 'output';

/** A line of a followed output view; `id` is its SSE id, to resume after. */
export interface FollowedLine extends Wire.OutputEvent {
  id: number;
}

export interface ClientOptions {
  /** Where the daemon listens, such as http://127.0.0.1:9501. */
  url: string;
  token?: string;
}

export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export interface FollowOptions {
  view?: OutputView;
  /** Start after this line id (lines up to it are not sent). */
  after?: number;
  signal?: AbortSignal;
  /**
   * Reconnect after a dropped connection, resuming after the last line received, so that no
   * line is lost or repeated (default true). Gives up after `retryForMs` without success.
   */
  resume?: boolean;
  retryForMs?: number;
  /** A stream that sends nothing (not even its heartbeat) for this long is taken as dropped. */
  idleMs?: number;
  /** Told of each failed attempt to reconnect (the connection could not be made again). */
  onRetry?: (error: unknown) => void;
  /** Told of output the daemon dropped (past its retention cap) before this reader got it. */
  onTruncated?: (loss: Wire.TruncatedEvent) => void;
}

export type FileStat = Wire.FileList['entries'][number];

const API = '/api/v1';
// A wait (for a port, for a process) is asked for in rounds no longer than this: its request is silent until it is
// answered, and a proxy in between may cut a request that is silent for a minute.
const WAIT_ROUND_MS = 30_000;
// The daemon sends a heartbeat every 15 s.
const DEFAULT_IDLE_MS = 45_000;

/** A typed client of the REST dialect (`/api/v1`), over fetch, for programs and tests alike. */
export class SandboxClient {
  readonly url: string;
  readonly token: string | undefined;

  constructor({ url, token }: ClientOptions) {
    this.url = url.replace(/\/+$/, '');
    this.token = token || undefined;
  }

  /** Headers that carry the token, if any. */
  get authHeaders(): Record<string, string> {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }

  /**
   * One request under /api/v1, answered with any status; throws UnreachableError when there is
   * no answer at all. A body that is not a string, bytes or a stream is sent as JSON.
   */
  async request(method: string, path: string, { body, headers = {}, signal }: RequestOptions = {}) {
    const url = `${this.url}${API}${path}`;
    const raw =
      body === undefined ||
      typeof body === 'string' ||
      body instanceof Uint8Array ||
      body instanceof ReadableStream;
    const init: RequestInit & { duplex?: 'half' } = {
      method,
      signal,
      headers: {
        ...this.authHeaders,
        ...(body !== undefined && !raw ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      body: raw ? (body as BodyInit | undefined) : JSON.stringify(body),
    };
    if (body instanceof ReadableStream) init.duplex = 'half';
    try {
      return await fetch(url, init);
    } catch (error) {
      if (signal?.aborted) throw error;
      throw new UnreachableError(this.url, networkReason(error));
    }
  }

  /** A request whose answer must be a success; its JSON body (undefined for 204). */
  async call<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.request(method, path, options);
    if (!response.ok) throw await DaemonError.from(response);
    const text = await response.text();
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  health(): Promise<{ healthy: true }> {
    return this.call('GET', '/health');
  }

  info(): Promise<Wire.DaemonInfo> {
    return this.call('GET', '/info');
  }

  async list(): Promise<Wire.ProcessInfo[]> {
    return (await this.call<{ processes: Wire.ProcessInfo[] }>('GET', '/processes')).processes;
  }

  start(request: StartRequest): Promise<Wire.ProcessInfo> {
    return this.call('POST', '/processes', { body: request });
  }

  get(ref: number | string): Promise<Wire.ProcessInfo> {
    return this.call('GET', `/processes/${encodeRef(ref)}`);
  }

  /** SIGKILL to the process group; no error when it has already ended. */
  async kill(ref: number | string): Promise<void> {
    await this.call('DELETE', `/processes/${encodeRef(ref)}`);
  }

  async signal(ref: number | string, signal: number, { group = true } = {}): Promise<void> {
    await this.call('POST', `/processes/${encodeRef(ref)}/signal`, { body: { signal, group } });
  }

  restart(ref: number | string): Promise<Wire.ProcessInfo> {
    return this.call('POST', `/processes/${encodeRef(ref)}/restart`);
  }

  /** Resolves once the daemon has accepted the bytes (written or queued in order). */
  async writeStdin(ref: number | string, bytes: Uint8Array | string): Promise<void> {
    await this.call('POST', `/processes/${encodeRef(ref)}/stdin`, {
      body: bytes,
      headers: { 'content-type': 'application/octet-stream' },
    });
  }

  /** EOF after everything accepted before. */
  async closeStdin(ref: number | string): Promise<void> {
    await this.call('POST', `/processes/${encodeRef(ref)}/stdin/close`);
  }

  /** Complete lines so far, a page at a time with `after` and `limit`. */
  output(
    ref: number | string,
    { view = 'output', after, limit }: { view?: OutputView; after?: number; limit?: number } = {},
  ): Promise<Wire.OutputPage> {
    const query = new URLSearchParams();
    if (after !== undefined) query.set('after', String(after));
    if (limit !== undefined) query.set('limit', String(limit));
    const search = query.size > 0 ? `?${query}` : '';
    return this.call('GET', `/processes/${encodeRef(ref)}/${view}${search}`);
  }

  /**
   * Follows a view over SSE, yielding the lines of each read as they come, until the process
   * has ended and its output is drained. Returns true at that end, false when the stream
   * ended before it with `resume: false`.
   */
  async *follow(
    ref: number | string,
    {
      view = 'output',
      after,
      signal,
      resume = true,
      retryForMs = 60_000,
      idleMs = DEFAULT_IDLE_MS,
      onRetry,
      onTruncated,
    }: FollowOptions = {},
  ): AsyncGenerator<FollowedLine[], boolean> {
    let last = after;
    let failingSince: number | undefined;
    let backoffMs = 50;
    for (;;) {
      let failure: unknown;
      try {
        const headers: Record<string, string> = last === undefined ? {} : { 'last-event-id': String(last) };
        const response = await this.request('GET', `/processes/${encodeRef(ref)}/${view}/follow`, {
          headers,
          signal,
        });
        if (!response.ok) throw await DaemonError.from(response);
        // Connected: a stream that then breaks off is a new failure, not more of an old one.
        failingSince = undefined;
        for await (const messages of readSseBatches(response, { idleMs })) {
          const batch: FollowedLine[] = [];
          let ended = false;
          for (const message of messages) {
            if (message.event === 'eof') ended = true;
            if (message.event === 'truncated') {
              // Its id is where the next whole line resumes: a reconnect goes on from there.
              if (batch.length > 0) yield batch.splice(0);
              last = Number(message.id);
              onTruncated?.(JSON.parse(message.data) as Wire.TruncatedEvent);
            }
            if (message.event !== 'output') continue;
            batch.push({ id: Number(message.id), ...(JSON.parse(message.data) as Wire.OutputEvent) });
          }
          if (batch.length > 0) {
            last = (batch.at(-1) as FollowedLine).id;
            backoffMs = 50;
            yield batch;
          }
          if (ended) return true;
        }
      } catch (error) {
        if (error instanceof DaemonError || signal?.aborted) throw error;
        failure = error;
        if (error instanceof UnreachableError) onRetry?.(error);
      }
      // The stream ended without its end event: the connection was dropped.
      if (!resume) return false;
      failingSince ??= Date.now();
      if (Date.now() - failingSince > retryForMs) {
        throw failure ?? new UnreachableError(this.url, 'the output stream keeps breaking off');
      }
      await sleep(backoffMs, undefined, { signal });
      backoffMs = Math.min(backoffMs * 2, 2000);
    }
  }

  createTerminal(request: PtyCreateRequest): Promise<Wire.PtyCreated> {
    return this.call('POST', '/pty', { body: request });
  }

  async terminals(): Promise<Wire.PtySessionInfo[]> {
    return (await this.call<{ sessions: Wire.PtySessionInfo[] }>('GET', '/pty')).sessions;
  }

  terminal(id: string): Promise<Wire.PtySessionInfo> {
    return this.call('GET', `/pty/${encodeURIComponent(id)}`);
  }

  async resizeTerminal(id: string, size: { rows: number; cols: number }): Promise<void> {
    await this.call('POST', `/pty/${encodeURIComponent(id)}/resize`, { body: size });
  }

  /** SIGHUP to the session's group (SIGKILL 5 s later); the session is forgotten at once. */
  async deleteTerminal(id: string): Promise<void> {
    await this.call('DELETE', `/pty/${encodeURIComponent(id)}`);
  }

  /**
   * Opens a terminal session's WebSocket, with the session's token when given, else with the
   * daemon's credentials.
   */
  async attachTerminal(id: string, sessionToken?: string): Promise<TerminalConnection> {
    const base = `${this.url.replace(/^http/, 'ws')}${API}/pty/${encodeURIComponent(id)}/ws`;
    const url = sessionToken === undefined ? base : `${base}?token=${encodeURIComponent(sessionToken)}`;
    // Loaded when first needed: the WebSocket library is most of a short command's start-up.
    const { TerminalConnection: Connection } = await import('./terminal.ts');
    return Connection.open(url, sessionToken === undefined ? this.authHeaders : {}, this.url);
  }

  /** The sandbox's listening TCP ports, by port, with the process holding each. */
  async listPorts(): Promise<Wire.ListeningPortInfo[]> {
    return (await this.call<{ ports: Wire.ListeningPortInfo[] }>('GET', '/ports')).ports;
  }

  /**
   * Resolves once the port accepts a TCP connection on the sandbox's loopback; throws
   * DaemonError 408 (REQUEST_TIMEOUT) once `timeoutMs` has passed. `waited_ms` is the whole wait.
   */
  async waitForPort(
    port: number,
    timeoutMs: number,
    { signal }: { signal?: AbortSignal } = {},
  ): Promise<Wire.PortReady> {
    const started = Date.now();
    const ready = await this.waitInRounds<Wire.PortReady>(
      (round) => `/ports/${port}/wait?timeout_ms=${round}`,
      timeoutMs,
      `port ${port} accepted no connection within ${timeoutMs} ms`,
      signal,
    );
    return { ...ready, waited_ms: Date.now() - started };
  }

  /**
   * Resolves with the process once it is running, healthy or has exited; throws DaemonError 408
   * (REQUEST_TIMEOUT) once `timeoutMs` has passed, 400 when the state can no longer come.
   */
  waitForProcess(
    ref: number | string,
    until: 'running' | 'healthy' | 'exited',
    timeoutMs: number,
    { signal }: { signal?: AbortSignal } = {},
  ): Promise<Wire.ProcessInfo> {
    return this.waitInRounds<Wire.ProcessInfo>(
      (round) =>
        `/processes/${encodeRef(ref)}/wait?${new URLSearchParams({ until, timeout_ms: String(round) })}`,
      timeoutMs,
      `process ${ref} was not ${until} within ${timeoutMs} ms`,
      signal,
    );
  }

  /** Asks a waiting route in rounds (each answered 408 when it ran out) until the whole wait has. */
  private async waitInRounds<T>(
    path: (roundMs: number) => string,
    timeoutMs: number,
    timedOut: string,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    const started = Date.now();
    for (;;) {
      const round = Math.max(0, Math.min(WAIT_ROUND_MS, timeoutMs - (Date.now() - started)));
      const response = await this.request('GET', path(round), { signal });
      if (response.ok) return (await response.json()) as T;
      const error = await DaemonError.from(response);
      if (error.status !== 408) throw error;
      if (Date.now() - started >= timeoutMs) throw new DaemonError(408, error.code, timedOut);
    }
  }

  /**
   * Opens a TCP tunnel to a port of the sandbox's loopback: a WebSocket whose binary frames are
   * the connection's bytes, paused until its reader calls resume(). Throws DaemonError when
   * the daemon refuses (502: nothing listens).
   */
  async openTunnel(port: number): Promise<WebSocket> {
    // Loaded when first needed, as for terminals.
    const { openTunnelSocket } = await import('./tunnel.ts');
    return openTunnelSocket(this.url, port, this.authHeaders);
  }

  /** A file's bytes as a stream (`range` such as `bytes=0-99`); throws DaemonError if absent. */
  async readFile(path: string, { range, signal }: { range?: string; signal?: AbortSignal } = {}) {
    const response = await this.request('GET', `/files?${new URLSearchParams({ path })}`, {
      headers: range ? { range } : {},
      signal,
    });
    if (!response.ok) throw await DaemonError.from(response);
    return response;
  }

  /** Replaces a file with the bytes of `source`, streamed; parents are created. */
  async writeFile(
    path: string,
    source: Uint8Array | string | Readable,
    { size, signal }: { size?: number; signal?: AbortSignal } = {},
  ): Promise<void> {
    const body =
      typeof source === 'string' || source instanceof Uint8Array
        ? source
        : (Readable.toWeb(source) as ReadableStream<Uint8Array>);
    await this.call('PUT', `/files?${new URLSearchParams({ path })}`, {
      body,
      headers: {
        'content-type': 'application/octet-stream',
        ...(size === undefined ? {} : { 'content-length': String(size) }),
      },
      signal,
    });
  }

  async deleteFile(path: string): Promise<void> {
    await this.call('DELETE', `/files?${new URLSearchParams({ path })}`);
  }

  listFiles(path: string): Promise<Wire.FileList> {
    return this.call('GET', `/files/list?${new URLSearchParams({ path })}`);
  }

  /** A one-time link that opens the HTTP preview of a port of the sandbox in a browser. */
  previewLink(port: number): Promise<Wire.PreviewLink> {
    return this.call('POST', `/ports/${port}/preview`);
  }
}

/** A pid as digits, a name percent-encoded (a name never holds `/`, but may hold anything else). */
function encodeRef(ref: number | string): string {
  return typeof ref === 'number' ? String(ref) : encodeURIComponent(ref);
}
