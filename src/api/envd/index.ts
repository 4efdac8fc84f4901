import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ConnectRouter } from '@connectrpc/connect';
import type { ProcessTable } from '../../core/process-table.ts';
import type { FileSystem } from '../../files/file-system.ts';
import { Filesystem } from '../../gen/filesystem/filesystem_pb.ts';
import { Process } from '../../gen/process/process_pb.ts';
import type { Dialect } from '../../http/dialect.ts';
import { sendJson } from '../../http/json.ts';
import { download } from './files/download.ts';
import { sendFilesError } from './files/errors.ts';
import { upload } from './files/upload.ts';
import { listDir } from './filesystem/list-dir.ts';
import { makeDir } from './filesystem/make-dir.ts';
import { move } from './filesystem/move.ts';
import { remove } from './filesystem/remove.ts';
import { stat } from './filesystem/stat.ts';
import { watchDir } from './filesystem/watch-dir.ts';
import { watcherRoutes } from './filesystem/watchers.ts';
import { envs, health, metricsRoute } from './plain-routes.ts';
import { closeStdin } from './process/close-stdin.ts';
import { connect } from './process/connect.ts';
import { list } from './process/list.ts';
import { sendInput } from './process/send-input.ts';
import { sendSignal } from './process/send-signal.ts';
import { start } from './process/start.ts';
import { streamInput } from './process/stream-input.ts';
import { update } from './process/update.ts';
import { rpcHandler } from './rpc-handler.ts';

export interface EnvdOptions {
  table: ProcessTable;
  files: FileSystem;
  /** The environment processes start from, served at /envs. */
  baseEnv: Record<string, string>;
  /** Largest request message, in bytes. */
  readMaxBytes: number;
  /** A polled watcher that nobody polls for this long is removed. */
  watcherIdleMs: number;
}

// `/<package>.<Service>/<Method>`: every such path is Connect's, known or not, so that an
// unknown method gets a Connect error a client can read.
const CONNECT_PATH = /^\/[A-Za-z_][\w.]*\.[A-Z]\w*\/[^/]*$/;
const CONNECT_CODE_BY_STATUS: Record<number, string> = {
  400: 'invalid_argument',
  403: 'permission_denied',
  408: 'deadline_exceeded',
  413: 'resource_exhausted',
  431: 'resource_exhausted',
  503: 'unavailable',
};
const PLAIN_PATHS = new Set(['/health', '/envs', '/metrics', '/files']);

/** The Connect-RPC `process.Process` and `filesystem.Filesystem` services and envd's plain routes. */
export function envdDialect({ table, files, baseEnv, readMaxBytes, watcherIdleMs }: EnvdOptions): Dialect {
  const watchers = watcherRoutes(files, { idleMs: watcherIdleMs });
  const rpc = rpcHandler(
    (router: ConnectRouter) => {
      router.service(Process, {
        start: start(table, files),
        connect: connect(table),
        list: list(table),
        sendInput: sendInput(table),
        streamInput: streamInput(table),
        sendSignal: sendSignal(table),
        closeStdin: closeStdin(table),
        update: update(table),
      });
      router.service(Filesystem, {
        stat: stat(files),
        makeDir: makeDir(files),
        move: move(files),
        listDir: listDir(files),
        remove: remove(files),
        watchDir: watchDir(files),
        ...watchers,
      });
    },
    { grpcWeb: true, readMaxBytes },
  );
  const metrics = metricsRoute();

  return {
    owns: (url) => CONNECT_PATH.test(url.pathname) || PLAIN_PATHS.has(url.pathname),
    isPublic: (req, url) => req.method === 'GET' && url.pathname === '/health',
    unauthorized(res: ServerResponse) {
      sendJson(res, 401, { code: 'unauthenticated', message: 'unauthorized' });
    },
    // Connect's shape on its paths, the plain routes' `{message, code: status}` elsewhere.
    errorBody: (url, status, message) =>
      CONNECT_PATH.test(url.pathname)
        ? { code: CONNECT_CODE_BY_STATUS[status] ?? 'invalid_argument', message }
        : { message, code: status },
    async handle(req: IncomingMessage, res: ServerResponse, url: URL) {
      if (CONNECT_PATH.test(url.pathname)) {
        await rpc(req, res);
        return;
      }
      if (url.pathname === '/files' && (req.method === 'GET' || req.method === 'POST')) {
        await (req.method === 'GET' ? download : upload)(files, req, res, url).catch((error: unknown) =>
          sendFilesError(res, error),
        );
        return;
      }
      const allowed = url.pathname === '/files' ? 'GET, POST' : 'GET';
      if (req.method !== 'GET') {
        res.writeHead(405, { allow: allowed });
        res.end();
        req.resume();
        return;
      }
      if (url.pathname === '/health') health(res);
      else if (url.pathname === '/envs') envs(res, baseEnv);
      else await metrics(res);
    },
  };
}
