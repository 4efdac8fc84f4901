import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type ConnectRouter,
  type ConnectRouterOptions,
  createConnectRouter,
  createContextKey,
  createContextValues,
} from '@connectrpc/connect';
import {
  createAsyncIterable,
  readAllBytes,
  type UniversalServerResponse,
} from '@connectrpc/connect/protocol';
import { parseContentType } from '@connectrpc/connect/protocol-connect';
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
 * four differences: an unknown method is a Connect `unimplemented` error, not a bare 404; a
 * unary binary message that cannot be parsed is `invalid_argument`, not `internal`; a client
 * that goes away mid-call is routine, not an error with a stack trace; and a Connect streaming
 * handler may send messages it framed itself (PreEncoded).
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
  // Pre-encoded frames stand in for the library's frames of empty messages, which it must not
  // compress: it compresses none unless a caller sets compressMinBytes.
  const preEncoding = (options.compressMinBytes ?? Number.POSITIVE_INFINITY) === Number.POSITIVE_INFINITY;
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
    const frames = preEncoding ? connectStreamFormat(req) : undefined;
    const values = createContextValues();
    if (frames) values.set(preEncodedFrames, frames);
    try {
      const response = await handler(universalRequestFromNodeRequest(req, res, undefined, values));
      const checked = await parseErrorsAreInvalidArgument(response);
      await universalResponseToNodeResponse(frames ? frames.substituted(checked) : checked, res);
    } catch (error) {
      if (req.destroyed || res.destroyed) return; // The client went away.
      throw error;
    }
  };
}

/**
 * Lets a Connect streaming handler send some of its messages already framed, bypassing the
 * library's serialization and envelope for them alone. The handler queues the frame with
 * `send` and yields what `send` returns, an empty message: the library serializes and frames
 * that as usual, in order, one frame per message, and the response body is read through
 * `substituted`, which swaps each such empty frame for the queued one. Everything else (other
 * messages, errors, the end-stream message, headers, the writes) stays the library's. Offered
 * only on Connect streaming calls (the envelope and the empty frames are Connect's), where the
 * library never compresses a response message (compressMinBytes); a handler that finds no
 * PreEncoded in its context values yields its messages as usual.
 */
export class PreEncoded {
  private readonly queue: Uint8Array[][] = [];
  /** The library's frame of an empty message in this call's format. */
  private readonly empty: Uint8Array;

  constructor(
    /** Binary protobuf, or JSON. */
    readonly binary: boolean,
  ) {
    // Flags 0, then the payload length: 0 bytes of protobuf, or the 2 bytes of `{}`.
    this.empty = binary ? Uint8Array.of(0, 0, 0, 0, 0) : Uint8Array.of(0, 0, 0, 0, 2, 0x7b, 0x7d);
  }

  /**
   * Queues a whole frame (its chunks, written in order) and returns what to yield in its place.
   * The handler must send no empty message of its own, which would be taken for this one.
   */
  send(frame: Uint8Array[]): Record<string, never> {
    this.queue.push(frame);
    return {};
  }

  /**
   * The response with each empty frame that stands for a queued one replaced by it. The body's
   * throw and return go straight to the library's, so a failed write reaches the handler as
   * it would without this.
   */
  substituted(response: UniversalServerResponse): UniversalServerResponse {
    const { body } = response;
    if (!body || !(Symbol.asyncIterator in body)) return response;
    const { queue, empty } = this;
    const isEmpty = (chunk: Uint8Array) => {
      if (chunk.length !== empty.length) return false;
      for (let i = 0; i < empty.length; i++) if (chunk[i] !== empty[i]) return false;
      return true;
    };
    const substitutedBody: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]() {
        const it = body[Symbol.asyncIterator]();
        // The chunks of the frame being written after its first.
        let rest: Uint8Array[] = [];
        return {
          async next(): Promise<IteratorResult<Uint8Array>> {
            const following = rest.shift();
            if (following) return { done: false, value: following };
            const result = await it.next();
            if (result.done || queue.length === 0 || !isEmpty(result.value)) return result;
            // A frame has one chunk at least (its header).
            const [first, ...others] = queue.shift() as [Uint8Array, ...Uint8Array[]];
            rest = others;
            return { done: false, value: first };
          },
          throw: (error?: unknown) => it.throw?.(error) ?? Promise.reject(error),
          return: (value?: unknown) => it.return?.(value) ?? Promise.resolve({ done: true, value }),
        };
      },
    };
    return { ...response, body: substitutedBody };
  }
}

/** The PreEncoded of a Connect streaming call; undefined on any other call. */
export const preEncodedFrames = createContextKey<PreEncoded | undefined>(undefined, {
  description: 'pre-encoded Connect frames',
});

/** A PreEncoded for a Connect streaming request, in its format; undefined for anything else. */
function connectStreamFormat(req: IncomingMessage): PreEncoded | undefined {
  const type = parseContentType(req.headers['content-type'] ?? null);
  return type?.stream ? new PreEncoded(type.binary) : undefined;
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
