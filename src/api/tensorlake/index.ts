import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ProcessTable } from '../../core/process-table.ts';
import type { FileSystem } from '../../files/file-system.ts';
import type { Dialect } from '../../http/dialect.ts';
import { sendJson } from '../../http/json.ts';
import { Router, safeDecode } from '../../http/router.ts';
import { refuseUpgrade } from '../../http/upgrade.ts';
import { ApiError, sendError } from './errors.ts';
import { fileRoutes } from './files.ts';
import type { Limits } from './limits.ts';
import { openapiDocument } from './openapi.ts';
import { outputRoutes } from './output.ts';
import { processRoutes } from './processes.ts';
import { type PtyOptions, ptyRoutes } from './pty-routes.ts';
import { runRoute } from './run.ts';
import { type TunnelOptions, tunnelRoute } from './tunnel.ts';

export interface TensorlakeOptions {
  table: ProcessTable;
  files: FileSystem;
  limits: Limits;
  pty: PtyOptions;
  tunnel: TunnelOptions;
  version: string;
  startedAt: number;
}

const PREFIX = '/api/v1';
const CODE_BY_STATUS: Record<number, string> = {
  400: 'INVALID_REQUEST',
  403: 'FORBIDDEN',
  408: 'REQUEST_TIMEOUT',
  413: 'PAYLOAD_TOO_LARGE',
  431: 'HEADERS_TOO_LARGE',
  503: 'UNAVAILABLE',
};
const WEBSOCKET_PATH = /^\/api\/v1\/pty\/(?<id>[^/]+)\/ws\/?$/;
const TUNNEL_PATH = /^\/api\/v1\/tunnels\/tcp\/?$/;

/** The REST + SSE dialect under /api/v1. */
export function tensorlakeDialect({
  table,
  files,
  limits,
  pty,
  tunnel,
  version,
  startedAt,
}: TensorlakeOptions): Dialect {
  const processes = processRoutes(table, limits);
  const output = outputRoutes(table);
  const terminals = ptyRoutes(table, limits, pty);
  const fileAccess = fileRoutes(files);
  const tunnels = tunnelRoute(tunnel);
  const upgradeRequired = () => {
    throw new ApiError(426, 'UPGRADE_REQUIRED', 'this route speaks WebSocket');
  };
  const router = new Router()
    .add('GET', `${PREFIX}/health`, ({ res }) => sendJson(res, 200, { healthy: true }))
    .add('GET', `${PREFIX}/info`, ({ res }) => {
      const { running, total } = table.counts();
      sendJson(res, 200, {
        version,
        uptime_secs: Math.floor((Date.now() - startedAt) / 1000),
        running_processes: running,
        total_processes: total,
      });
    })
    .add('GET', `${PREFIX}/openapi.json`, ({ res }) => sendJson(res, 200, openapiDocument()))
    .add('POST', `${PREFIX}/processes/run`, runRoute(table, limits))
    .add('POST', `${PREFIX}/processes`, processes.start)
    .add('GET', `${PREFIX}/processes`, processes.list)
    .add('GET', `${PREFIX}/processes/:ref`, processes.get)
    .add('DELETE', `${PREFIX}/processes/:ref`, processes.kill)
    .add('POST', `${PREFIX}/processes/:ref/stdin`, processes.writeStdin)
    .add('POST', `${PREFIX}/processes/:ref/stdin/close`, processes.closeStdin)
    .add('POST', `${PREFIX}/processes/:ref/signal`, processes.signal)
    .add('POST', `${PREFIX}/processes/:ref/restart`, processes.restart)
    .add('POST', `${PREFIX}/pty`, terminals.create)
    .add('GET', `${PREFIX}/pty`, terminals.list)
    .add('GET', `${PREFIX}/pty/:id`, terminals.get)
    .add('DELETE', `${PREFIX}/pty/:id`, terminals.delete)
    .add('POST', `${PREFIX}/pty/:id/resize`, terminals.resize)
    .add('GET', `${PREFIX}/files`, fileAccess.read)
    .add('PUT', `${PREFIX}/files`, fileAccess.write)
    .add('DELETE', `${PREFIX}/files`, fileAccess.remove)
    .add('GET', `${PREFIX}/files/list`, fileAccess.list)
    .add('GET', `${PREFIX}/pty/:id/ws`, upgradeRequired)
    .add('GET', `${PREFIX}/tunnels/tcp`, upgradeRequired);
  for (const view of ['stdout', 'stderr', 'output'] as const) {
    router.add('GET', `${PREFIX}/processes/:ref/${view}`, output.read(view));
    router.add('GET', `${PREFIX}/processes/:ref/${view}/follow`, output.follow(view));
  }

  return {
    owns: (url) => url.pathname === PREFIX || url.pathname.startsWith(`${PREFIX}/`),
    isPublic: (req, url) => req.method === 'GET' && url.pathname === `${PREFIX}/health`,
    upgrade(req, socket, head, url) {
      const id = WEBSOCKET_PATH.exec(url.pathname)?.groups?.id;
      if (id) terminals.upgrade(req, socket, head, url, safeDecode(id));
      else if (TUNNEL_PATH.test(url.pathname)) tunnels.upgrade(req, socket, head, url);
      else refuseUpgrade(socket, 404, 'Not Found');
    },
    unauthorized: (res) => sendJson(res, 401, { error: 'unauthorized', code: 'UNAUTHORIZED' }),
    errorBody: (_url, status, message) => ({
      error: message,
      code: CODE_BY_STATUS[status] ?? 'INVALID_REQUEST',
    }),
    async handle(req: IncomingMessage, res: ServerResponse, url: URL) {
      try {
        const match = router.match(req.method ?? 'GET', url.pathname);
        if (match.kind === 'none') throw new ApiError(404, 'NOT_FOUND', `no route for ${url.pathname}`);
        if (match.kind === 'wrong_method') {
          res.setHeader('allow', match.allowed.join(', '));
          throw new ApiError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed here`);
        }
        await match.handler({ req, res, url, params: match.params });
      } catch (error) {
        sendError(res, error);
      }
    },
  };
}
