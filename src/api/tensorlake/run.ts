import { SandboxError } from '../../core/errors.ts';
import { followLines } from '../../core/lines.ts';
import type { SandboxProcess } from '../../core/process.ts';
import type { ProcessTable } from '../../core/process-table.ts';
import { SIGKILL } from '../../core/signals.ts';
import { readJson } from '../../http/body.ts';
import type { RouteContext } from '../../http/router.ts';
import type { Limits } from './limits.ts';
import { lineFrames } from './line-frames.ts';
import type { RunFrame } from './responses.ts';
import { runBody, toStartRequest } from './schemas.ts';
import { EventStream } from './sse.ts';

/**
 * Run-and-wait: one SSE response from start to a terminal frame, always. The process keeps
 * running if the client goes away (the deadline, if any, still applies).
 */
export function runRoute(table: ProcessTable, limits: Limits) {
  return async ({ req, res }: RouteContext) => {
    const body = runBody.parse(await readJson(req, limits.jsonBytes));
    let started: SandboxProcess;
    try {
      started = await table.start(toStartRequest(body));
    } catch (error) {
      if (!(error instanceof SandboxError) || !['spawn_failed', 'bad_cwd'].includes(error.kind)) throw error;
      const events = new EventStream(res);
      // The error also goes out as a stderr line, since clients that only read lines would lose it.
      await events.send([
        { data: { line: error.message, timestamp: Date.now(), stream: 'stderr' } },
        { data: { error: error.message, exit_code: 127 } },
      ]);
      events.end();
      return;
    }
    const events = new EventStream(res);
    await events.send([{ data: { pid: started.pid, started_at: started.startedAt } }]);
    const shape = { named: false, withStream: true };
    for await (const items of followLines(started.log, {}, events.signal)) {
      await events.sendFrames(lineFrames(items, shape));
    }
    if (events.signal.aborted) return;
    const exit = await started.exited;
    const last: RunFrame = started.timedOut
      ? { signal: SIGKILL, timed_out: true }
      : exit.signal === null
        ? { exit_code: exit.exitCode ?? 0 }
        : { signal: exit.signal };
    await events.send([{ data: exit.oomKilled ? { ...last, oom_killed: true } : last }]);
    events.end();
  };
}
