import { type FollowedLine, type ProcessInfo, SandboxClient } from '../../src/client/index.ts';
import type { TestDaemon } from './daemon.ts';

export type { FollowedLine, ProcessInfo };

/** The client the CLI uses, pointed at a test daemon. */
export function sandboxClient(daemon: TestDaemon): SandboxClient {
  return new SandboxClient({ url: daemon.url, token: daemon.token });
}

/** The REST dialect for tests: the typed client, plus raw calls that return any status. */
export function restClient(daemon: TestDaemon) {
  const client = sandboxClient(daemon);
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const response = await client.request(method, path, {
      body,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    });
    const text = await response.text();
    return { status: response.status, body: text === '' ? undefined : (JSON.parse(text) as unknown), text };
  };

  return {
    call,
    client,
    start: (body: Record<string, unknown>): Promise<ProcessInfo> => client.start(body as never),
    /** The answer's body whatever its status, as before the typed client existed. */
    async get(pid: number | string): Promise<ProcessInfo> {
      return (await call('GET', `/processes/${pid}`)).body as ProcessInfo;
    },
    /** DELETE, whatever the answer: tests clean up with it. */
    async kill(pid: number | string): Promise<void> {
      await call('DELETE', `/processes/${pid}`);
    },
    async lines(pid: number | string, view: 'stdout' | 'stderr' | 'output' = 'output'): Promise<string[]> {
      return (await client.output(pid, { view })).lines;
    },
    /** Follows a view until eof (or until `stopAfter` lines, then disconnects); no resuming. */
    async follow(
      pid: number | string,
      {
        view = 'output',
        lastEventId,
        stopAfter = Infinity,
      }: { view?: 'stdout' | 'stderr' | 'output'; lastEventId?: number; stopAfter?: number } = {},
    ): Promise<{ lines: FollowedLine[]; eof: boolean }> {
      const lines: FollowedLine[] = [];
      const stream = client.follow(pid, { view, after: lastEventId, resume: false });
      for (;;) {
        if (lines.length >= stopAfter) {
          await stream.return(false);
          return { lines: lines.slice(0, stopAfter), eof: false };
        }
        const next = await stream.next();
        if (next.done) return { lines, eof: next.value };
        lines.push(...next.value);
      }
    },
    /** Waits until the process has ended and its output is complete (the end of a follow stream). */
    async waitForEnd(pid: number | string): Promise<ProcessInfo> {
      // stderr: the cheapest view to follow to its end when a process prints to stdout.
      await this.follow(pid, { view: 'stderr' });
      return this.get(pid);
    },
  };
}
