import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ProcessTable } from '../../core/process-table.ts';
import type { FileSystem } from '../../files/file-system.ts';
import type { Dialect } from '../../http/dialect.ts';
import { sendJson } from '../../http/json.ts';
import { type RouteHandler, Router, safeDecode } from '../../http/router.ts';
import { refuseUpgrade } from '../../http/upgrade.ts';
import type { ListeningPorts } from '../../ports/listening.ts';
import { ApiError, sendError } from './errors.ts';
import { fileRoutes } from './files.ts';
import type { Limits } from './limits.ts';
import { outputRoutes } from './output.ts';
import { portRoutes } from './ports.ts';
import { type PreviewLinkOptions, previewLinkRoute } from './preview-links.ts';
import { processRoutes } from './processes.ts';
import { type PtyOptions, ptyRoutes } from './pty-routes.ts';
import { type RouteId, routeTable } from './routes.ts';
import { runRoute } from './run.ts';
import { type TunnelOptions, tunnelRoute } from './tunnel.ts';

export interface TensorlakeOptions {
  table: ProcessTable;
  files: FileSystem;
  /** The sandbox's listening ports. */
  ports: ListeningPorts;
  limits: Limits;
  pty: PtyOptions;
  tunnel: TunnelOptions;
  version: string;
  startedAt: number;
  previews: PreviewLinkOptions;
}

const PREFIX = '/api/v1';
const CODE_BY_STATUS: Record<number, string> = {
  400: 'INVALID_REQUEST',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
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
  ports,
  limits,
  pty,
  tunnel,
  version,
  startedAt,
  previews,
}: TensorlakeOptions): Dialect {
  const processes = processRoutes(table, limits);
  const output = outputRoutes(table);
  const terminals = ptyRoutes(table, limits, pty);
  const fileAccess = fileRoutes(files);
  const listening = portRoutes(ports);
  const tunnels = tunnelRoute(tunnel);
  const upgradeRequired = () => {
    throw new ApiError(426, 'UPGRADE_REQUIRED', 'this route speaks WebSocket');
  };
  const handlers: Record<RouteId, RouteHandler> = {
    health: ({ res }) => sendJson(res, 200, { healthy: true }),
    info: ({ res }) => {
      const { running, total } = table.counts();
      sendJson(res, 200, {
        version,
        uptime_secs: Math.floor((Date.now() - startedAt) / 1000),
        running_processes: running,
        total_processes: total,
      });
    },
    // Generated on the first request for it (then kept): few clients ever ask.
    openapi: async ({ res }) => sendJson(res, 200, (await import('./openapi.ts')).openapiDocument()),
    runProcess: runRoute(table, limits),
    startProcess: processes.start,
    listProcesses: processes.list,
    getProcess: processes.get,
    killProcess: processes.kill,
    writeStdin: processes.writeStdin,
    closeStdin: processes.closeStdin,
    signalProcess: processes.signal,
    restartProcess: processes.restart,
    waitForProcess: processes.wait,
    createTerminal: terminals.create,
    listTerminals: terminals.list,
    getTerminal: terminals.get,
    deleteTerminal: terminals.delete,
    resizeTerminal: terminals.resize,
    terminalSocket: upgradeRequired,
    tcpTunnel: upgradeRequired,
    readFile: fileAccess.read,
    writeFile: fileAccess.write,
    deleteFile: fileAccess.remove,
    listFiles: fileAccess.list,
    listPorts: listening.list,
    waitForPort: listening.wait,
    createPreviewLink: previewLinkRoute(previews),
    readStdout: output.read('stdout'),
    followStdout: output.follow('stdout'),
    readStderr: output.read('stderr'),
    followStderr: output.follow('stderr'),
    readOutput: output.read('output'),
    followOutput: output.follow('output'),
  };
  // Built from the same table as the OpenAPI document: a route is served only if documented.
  const router = new Router();
  for (const route of routeTable()) router.add(route.method.toUpperCase(), route.path, handlers[route.id]);

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
