import type { IncomingMessage } from 'node:http';
import './zod-setup.ts';
import * as z from 'zod';
import { followLines, linesSoFar, type OutputLine, spreadRuns } from '../../core/lines.ts';
import type { StreamName } from '../../core/log-record.ts';
import type { ProcessTable } from '../../core/process-table.ts';
import type { RouteContext } from '../../http/router.ts';
import { lineFrames } from './line-frames.ts';
import { writeOrWait } from './respond.ts';
import { EventStream } from './sse.ts';

export type OutputView = 'stdout' | 'stderr' | 'output';

const lineCursor = z.string().regex(/^\d+$/, 'expected a non-negative integer').transform(Number);

export const followQuery = z.object({
  after: lineCursor.optional().describe('resume after this line id (as `Last-Event-ID` does)'),
});

export const outputQuery = followQuery.extend({
  limit: lineCursor.optional().describe('at most this many lines'),
});

const streamOf = (view: OutputView): StreamName | undefined => (view === 'output' ? undefined : view);

/** Read captured output as lines, all at once or followed live over SSE. */
export function outputRoutes(table: ProcessTable) {
  return {
    /**
     * The lines so far as one JSON object, written as they are read from the log, so that a
     * process with millions of lines costs the daemon a batch of memory, not all of them.
     */
    read: (view: OutputView) => async (context: RouteContext) => {
      const source = table.get(context.params.ref as string);
      const { url, res } = context;
      const query = outputQuery.parse(Object.fromEntries(url.searchParams));
      const after = query.after;
      const limit = query.limit ?? Infinity;
      const stream = streamOf(view);
      res.writeHead(200, { 'content-type': 'application/json' });
      let count = 0;
      let nextAfter = after ?? 0;
      let connected = await writeOrWait(res, `{"pid":${source.pid},"lines":[`);
      for await (const items of linesSoFar(source.log, { stream, after })) {
        if (!connected || count >= limit) break;
        // Losses are counted in truncated_bytes; this view lists lines.
        const lines = spreadRuns(items).filter((item): item is OutputLine => item.kind === 'line');
        if (lines.length === 0) continue;
        const page = lines.slice(0, limit - count);
        const texts = page.map((line) => JSON.stringify(line.text)).join(',');
        connected = await writeOrWait(res, count === 0 ? texts : `,${texts}`);
        count += page.length;
        nextAfter = (page.at(-1) as OutputLine).id;
      }
      const truncated = source.log.truncatedBytes(stream);
      res.end(`],"line_count":${count},"next_after":${nextAfter},"truncated_bytes":${truncated}}`);
    },

    follow: (view: OutputView) => async (context: RouteContext) => {
      const source = table.get(context.params.ref as string);
      const after = resumePoint(context.req, context.url);
      const events = new EventStream(context.res);
      const shape = { named: true, withStream: view === 'output' };
      for await (const items of followLines(source.log, { stream: streamOf(view), after }, events.signal)) {
        await events.sendFrames(lineFrames(items, shape));
      }
      if (!events.signal.aborted) await events.send([{ event: 'eof', data: {} }]);
      events.end();
    },
  };
}

function resumePoint(req: IncomingMessage, url: URL): number | undefined {
  const header = req.headers['last-event-id'];
  const after = typeof header === 'string' && header !== '' ? header : url.searchParams.get('after');
  return followQuery.parse({ after: after ?? undefined }).after;
}
