import type { IncomingMessage } from 'node:http';
import { followLines, type OutputLine, readLines } from '../../core/lines.ts';
import type { StreamName } from '../../core/output-log.ts';
import type { ProcessTable } from '../../core/process-table.ts';
import type { RouteContext } from '../../http/router.ts';
import { ApiError } from './errors.ts';
import { sendJson } from './respond.ts';
import { EventStream } from './sse.ts';

export type OutputView = 'stdout' | 'stderr' | 'output';

const streamOf = (view: OutputView): StreamName | undefined => (view === 'output' ? undefined : view);

/** Read captured output as lines, all at once or followed live over SSE. */
export function outputRoutes(table: ProcessTable) {
  return {
    read: (view: OutputView) => async (context: RouteContext) => {
      const process = table.get(context.params.ref as string);
      const { url } = context;
      const after = cursor(url.searchParams.get('after'), 'after');
      const limit = cursor(url.searchParams.get('limit'), 'limit');
      const page = await readLines(process.log, { stream: streamOf(view), after }, limit ?? Infinity);
      const last = page.lines.at(-1);
      sendJson(context.res, 200, {
        pid: process.pid,
        lines: page.lines.map((line) => line.text),
        line_count: page.lines.length,
        next_after: last?.id ?? after ?? 0,
        truncated_bytes: process.log.truncatedBytes(streamOf(view)),
      });
    },

    follow: (view: OutputView) => async (context: RouteContext) => {
      const process = table.get(context.params.ref as string);
      const after = resumePoint(context.req, context.url);
      const events = new EventStream(context.res);
      const toEvent = (line: OutputLine) => ({
        id: line.id,
        event: 'output',
        data:
          view === 'output'
            ? { line: line.text, timestamp: line.timestamp, stream: line.stream }
            : { line: line.text, timestamp: line.timestamp },
      });
      for await (const lines of followLines(process.log, { stream: streamOf(view), after }, events.signal)) {
        await events.send(lines.map(toEvent));
      }
      if (!events.signal.aborted) await events.send([{ event: 'eof', data: {} }]);
      events.end();
    },
  };
}

function resumePoint(req: IncomingMessage, url: URL): number | undefined {
  const header = req.headers['last-event-id'];
  return cursor(
    typeof header === 'string' && header !== '' ? header : url.searchParams.get('after'),
    'after',
  );
}

function cursor(text: string | null, name: string): number | undefined {
  if (text === null) return undefined;
  if (!/^\d+$/.test(text))
    throw new ApiError(400, 'INVALID_REQUEST', `${name}: expected a non-negative integer`);
  return Number(text);
}
