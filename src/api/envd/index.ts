import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ConnectRouter } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import type { ProcessTable } from '../../core/process-table.ts';
import { Process } from '../../gen/process/process_pb.ts';
import type { Dialect } from '../../http/dialect.ts';
import { sendJson } from '../../http/json.ts';
import { closeStdin } from './close-stdin.ts';
import { connect } from './connect.ts';
import { list } from './list.ts';
import { envs, health, metricsRoute } from './plain-routes.ts';
import { sendInput } from './send-input.ts';
import { sendSignal } from './send-signal.ts';
import { start } from './start.ts';
import { streamInput } from './stream-input.ts';
import { update } from './update.ts';

export interface EnvdOptions {
  table: ProcessTable;
  /** The environment processes start from, served at /envs. */
  baseEnv: Record<string, string>;
  /** Largest request message, in bytes. */
  readMaxBytes: number;
}

const SERVICE_PREFIX = `/${Process.typeName}/`;
const PLAIN_PATHS = new Set(['/health', '/envs', '/metrics']);

/** The Connect-RPC `process.Process` service and envd's plain routes. */
export function envdDialect({ table, baseEnv, readMaxBytes }: EnvdOptions): Dialect {
  const rpc = connectNodeAdapter({
    routes(router: ConnectRouter) {
      router.service(Process, {
        start: start(table),
        connect: connect(table),
        list: list(table),
        sendInput: sendInput(table),
        streamInput: streamInput(table),
        sendSignal: sendSignal(table),
        closeStdin: closeStdin(table),
        update: update(table),
      });
    },
    grpcWeb: true,
    readMaxBytes,
  });
  const metrics = metricsRoute();

  return {
    owns: (url) => url.pathname.startsWith(SERVICE_PREFIX) || PLAIN_PATHS.has(url.pathname),
    isPublic: (req, url) => req.method === 'GET' && url.pathname === '/health',
    unauthorized(res: ServerResponse) {
      sendJson(res, 401, { code: 'unauthenticated', message: 'unauthorized' });
    },
    async handle(req: IncomingMessage, res: ServerResponse, url: URL) {
      if (url.pathname.startsWith(SERVICE_PREFIX)) {
        rpc(req, res);
        return;
      }
      if (req.method !== 'GET') {
        res.writeHead(405, { allow: 'GET' });
        res.end();
        return;
      }
      if (url.pathname === '/health') health(res);
      else if (url.pathname === '/envs') envs(res, baseEnv);
      else metrics(res);
    },
  };
}
