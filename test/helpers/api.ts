import type { ProcessInfo } from '../../web/src/process-info.ts';
import type { TestDaemon } from './daemon.ts';
import { readSse } from './sse.ts';

export type { ProcessInfo } from '../../web/src/process-info.ts';

export interface FollowedLine {
  id: number;
  line: string;
  stream?: string;
  timestamp: number;
}

/** A small client for the REST dialect, for tests. */
export function restClient(daemon: TestDaemon) {
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const response = await fetch(`${daemon.api}${path}`, {
      method,
      headers: {
        ...daemon.headers,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text === '' ? undefined : (JSON.parse(text) as unknown), text };
  };

  return {
    call,
    async start(body: Record<string, unknown>): Promise<ProcessInfo> {
      const { status, body: info } = await call('POST', '/processes', body);
      if (status !== 201) throw new Error(`start failed: ${status} ${JSON.stringify(info)}`);
      return info as ProcessInfo;
    },
    async get(pid: number | string): Promise<ProcessInfo> {
      return (await call('GET', `/processes/${pid}`)).body as ProcessInfo;
    },
    async kill(pid: number | string): Promise<void> {
      await call('DELETE', `/processes/${pid}`);
    },
    async lines(pid: number | string, view = 'output'): Promise<string[]> {
      return ((await call('GET', `/processes/${pid}/${view}`)).body as { lines: string[] }).lines;
    },
    /** Follows a view until eof (or until `stopAfter` lines, then disconnects). */
    async follow(
      pid: number | string,
      {
        view = 'output',
        lastEventId,
        stopAfter = Infinity,
      }: { view?: string; lastEventId?: number; stopAfter?: number } = {},
    ): Promise<{ lines: FollowedLine[]; eof: boolean }> {
      const headers: Record<string, string> = { ...daemon.headers };
      if (lastEventId !== undefined) headers['last-event-id'] = String(lastEventId);
      const response = await fetch(`${daemon.api}/processes/${pid}/${view}/follow`, { headers });
      if (response.status !== 200) throw new Error(`follow failed: ${response.status}`);
      const lines: FollowedLine[] = [];
      for await (const message of readSse(response)) {
        if (message.event === 'eof') return { lines, eof: true };
        if (message.event !== 'output') continue;
        lines.push({ id: Number(message.id), ...(JSON.parse(message.data) as Omit<FollowedLine, 'id'>) });
        if (lines.length >= stopAfter) break;
      }
      return { lines, eof: false };
    },
    /** Waits until the process has ended and its output is complete (the end of a follow stream). */
    async waitForEnd(pid: number | string): Promise<ProcessInfo> {
      // stderr: the cheapest view to follow to its end when a process prints to stdout.
      await this.follow(pid, { view: 'stderr' });
      return this.get(pid);
    },
  };
}
