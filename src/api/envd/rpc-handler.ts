import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ConnectRouter, type ConnectRouterOptions, createConnectRouter } from '@connectrpc/connect';
import {
  createAsyncIterable,
  readAllBytes,
  type UniversalServerResponse,
} from '@connectrpc/connect/protocol';
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from '@connectrpc/connect-node';
// Node's timers hold at most this; a longer deadline would fire at once.
import { MAX_TIMER_MS } from '../../core/long-timeout.ts';

/**
 * Serves Connect, gRPC-Web and gRPC routes on node:http (what connectNodeAdapter does), with
 * three differences: an unknown method is a Connect `unimplemented` error, not a bare 404; a
 * unary binary message that cannot be parsed is `invalid_argument`, not `internal`; and a
 * client that goes away mid-call is routine, not an error with a stack trace.
 */
export function rpcHandler(routes: (router: ConnectRouter) => void, options: ConnectRouterOptions) {
  const router = createConnectRouter({
    acceptCompression: [compressionGzip, compressionBrotli],
    // Compressed requests are taken, but answers go uncompressed: output is mostly streamed
    // to a nearby proxy, and gzip would cost more than the bytes it saves (it was most of the
    // CPU of a Start streaming 200 MiB).
    compressMinBytes: Number.POSITIVE_INFINITY,
    ...options,
  });
  routes(router);
  const handlers = new Map(router.handlers.map((handler) => [handler.requestPath, handler]));
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const handler = handlers.get((req.url ?? '').split('?', 1)[0] as string);
    if (!handler) {
      req.resume();
      const body = JSON.stringify({ code: 'unimplemented', message: `${req.url} is not implemented` });
      res.writeHead(404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    clampTimeouts(req);
    try {
      const response = await handler(universalRequestFromNodeRequest(req, res, undefined, undefined));
      await universalResponseToNodeResponse(await parseErrorsAreInvalidArgument(response), res);
    } catch (error) {
      if (req.destroyed || res.destroyed) return; // The client went away.
      throw error;
    }
  };
}

/** Deadlines longer than a timer can hold are clamped, so that they do not expire at once. */
function clampTimeouts(req: IncomingMessage): void {
  const connect = req.headers['connect-timeout-ms'];
  if (typeof connect === 'string' && /^\d+$/.test(connect) && Number(connect) > MAX_TIMER_MS) {
    req.headers['connect-timeout-ms'] = String(MAX_TIMER_MS);
  }
  const grpc = req.headers['grpc-timeout'];
  const units: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };
  const match = typeof grpc === 'string' ? /^(\d+)([HMSmun])$/.exec(grpc) : null;
  if (match && Number(match[1]) * (units[match[2] as string] as number) > MAX_TIMER_MS) {
    req.headers['grpc-timeout'] = `${Math.floor(MAX_TIMER_MS / 1000)}S`;
  }
}

/**
 * The library reports a unary binary message it cannot parse as `internal` (500); it is the
 * client's mistake, `invalid_argument` (400), as it already is for JSON.
 */
async function parseErrorsAreInvalidArgument(
  response: UniversalServerResponse,
): Promise<UniversalServerResponse> {
  const { header, body } = response;
  if (response.status !== 500 || !body || header?.get('content-type') !== 'application/json') return response;
  if (header.has('content-encoding')) return response;
  const bytes = await readAllBytes(body, Number.MAX_SAFE_INTEGER);
  let error: { code?: string; message?: string } | undefined;
  try {
    error = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    // Not an error body after all: passed on as it was.
  }
  if (error?.code !== 'internal' || !error.message?.startsWith('parse binary:')) {
    return { ...response, body: createAsyncIterable([bytes]) };
  }
  const corrected = Buffer.from(JSON.stringify({ ...error, code: 'invalid_argument' }));
  header.set('content-length', String(corrected.length));
  return { ...response, status: 400, body: createAsyncIterable([corrected]) };
}
