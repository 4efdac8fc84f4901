import { SandboxError } from '../../core/errors.ts';
import type { ProcessTable } from '../../core/process-table.ts';
import { readBody, readJson } from '../../http/body.ts';
import { sendJson } from '../../http/json.ts';
import type { RouteContext } from '../../http/router.ts';
import type { Limits } from './limits.ts';
import { processInfo, processInfoWithUsage } from './process-info.ts';
import { sendNoContent } from './respond.ts';
import { processWaitQuery, signalBody, startBody, toStartRequest } from './schemas.ts';
import { DEFAULT_WAIT_MS, whileClientWaits } from './waiting.ts';

/** Start, inspect, signal, kill and feed processes. */
export function processRoutes(table: ProcessTable, limits: Limits) {
  const lookup = ({ params }: RouteContext) => table.get(params.ref as string);

  return {
    async start({ req, res }: RouteContext) {
      const body = startBody.parse(await readJson(req, limits.jsonBytes));
      const target = await table.start(toStartRequest(body));
      sendJson(res, 201, processInfo(table, target));
    },

    list({ res }: RouteContext) {
      sendJson(res, 200, { processes: table.list().map((p) => processInfo(table, p)) });
    },

    async get(context: RouteContext) {
      sendJson(context.res, 200, await processInfoWithUsage(table, lookup(context)));
    },

    async kill(context: RouteContext) {
      await table.kill(lookup(context));
      sendNoContent(context.res);
    },

    async signal(context: RouteContext) {
      const target = lookup(context);
      const body = signalBody.parse(await readJson(context.req, limits.jsonBytes));
      target.sendSignal(body.signal as number, { group: body.group ?? true });
      sendJson(context.res, 200, { success: true });
    },

    async wait(context: RouteContext) {
      const entry = lookup(context);
      const query = processWaitQuery.parse(Object.fromEntries(context.url.searchParams));
      const timeoutMs = query.timeout_ms ?? DEFAULT_WAIT_MS;
      await whileClientWaits(context.res, async (clientGone) => {
        const signal = AbortSignal.any([clientGone, AbortSignal.timeout(timeoutMs)]);
        const reached = await table.waitUntil(entry, query.until, signal);
        sendJson(context.res, 200, processInfo(table, reached));
      });
    },

    async restart(context: RouteContext) {
      const next = await table.restart(lookup(context));
      sendJson(context.res, 200, processInfo(table, next));
    },

    async writeStdin(context: RouteContext) {
      const target = lookup(context);
      if (!target.stdinWritable) {
        context.req.resume();
        throw new SandboxError('stdin_not_writable', stdinProblem(target.hasStdinPipe, target.running));
      }
      await target.writeStdin(await readBody(context.req, limits.stdinBytes));
      sendNoContent(context.res);
    },

    async closeStdin(context: RouteContext) {
      await lookup(context).closeStdin();
      sendNoContent(context.res);
    },
  };
}

function stdinProblem(hasPipe: boolean, running: boolean): string {
  if (!hasPipe) return 'stdin is not a pipe for this process (start it with stdin_mode "pipe")';
  if (!running) return 'stdin is not writable: the process has ended';
  return 'stdin is not writable: it was closed';
}
