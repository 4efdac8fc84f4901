import { type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import './zod-setup.ts';
import * as z from 'zod';
import { hasForeignOrigin, isAuthorized } from '../../http/auth.ts';
import { refuseUpgrade } from '../../http/upgrade.ts';
import { lazyWebSocketServer } from '../../http/websocket-server.ts';
import { DialError, dialLoopback } from '../../ports/loopback-dial.ts';
import { parsePort } from '../../ports/port-number.ts';
import { ReadPool } from '../../ports/read-pool.ts';
import { Tunnel, type TunnelLimits } from '../../ports/tunnel.ts';
import type { Tunnels } from '../../ports/tunnels.ts';

export interface TunnelOptions extends TunnelLimits {
  /** Where open tunnels are kept, for the daemon to close them when it stops. */
  registry: Tunnels;
  /** The daemon's token, if it has one. */
  daemonToken?: string;
  /** The service must accept the connection within this long, or the answer is 502. */
  dialTimeoutMs: number;
  /** The largest WebSocket message a client may send (larger closes the tunnel with 1009). */
  maxFrameBytes: number;
}

/** The query of `GET /api/v1/tunnels/tcp`, for the OpenAPI document and the route alike. */
export const tunnelQuery = z.object({
  port: z
    .string({ error: 'required' })
    .refine((text) => parsePort(text) !== undefined, 'an integer from 1 to 65535')
    .describe("a TCP port on the sandbox's loopback (1-65535)"),
});

/** The size of one read from a service: as much as Node reads from a socket at once. */
const READ_BYTES = 64 * 1024;

interface Refusal {
  status: number;
  code: string;
  message: string;
}

/**
 * `GET /api/v1/tunnels/tcp?port=N`: a WebSocket that carries one TCP connection to a port of
 * the sandbox's loopback. The daemon connects to the service before it completes the upgrade,
 * so a client learns from the handshake itself whether anything listens there.
 */
export function tunnelRoute(options: TunnelOptions) {
  const server = lazyWebSocketServer({ maxPayload: options.maxFrameBytes });

  const refuse = (socket: Duplex, { status, code, message }: Refusal) =>
    refuseUpgrade(socket, status, STATUS_CODES[status] ?? 'Error', JSON.stringify({ error: message, code }));

  return {
    upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
      const refusal = checkRequest(req, url, options.daemonToken);
      if (typeof refusal === 'object') {
        refuse(socket, refusal);
        return;
      }
      const port = refusal;
      // The client may leave, or the daemon stop, while the service is being reached.
      const dialing = new AbortController();
      const abandon = () => dialing.abort();
      socket.once('close', abandon);
      const release = options.registry.track({
        shutdown: async () => {
          dialing.abort();
          socket.destroy();
        },
      });
      // What waits for the client is bounded by the pool: maxQueuedBytes in reads of 64 KiB.
      const pool = new ReadPool(Math.max(2, Math.ceil(options.maxQueuedBytes / READ_BYTES)), READ_BYTES);
      const dial = { timeoutMs: options.dialTimeoutMs, signal: dialing.signal, onread: pool.onread };
      dialLoopback(port, dial).then(
        (service) => {
          release();
          socket.off('close', abandon);
          // ws answers a malformed handshake itself and closes the socket, without a callback.
          const drop = () => service.destroy();
          socket.once('close', drop);
          server.handleUpgrade(req, socket, head, (ws) => {
            socket.off('close', drop);
            const tunnel = new Tunnel(service, ws, options, pool);
            options.registry.track(tunnel, tunnel.closed);
          });
        },
        (error: unknown) => {
          release();
          socket.off('close', abandon);
          if (error instanceof DialError && error.failure === 'aborted') return;
          const message = error instanceof Error ? error.message : String(error);
          refuse(socket, { status: 502, code: 'BAD_GATEWAY', message });
        },
      );
    },
  };
}

/** The port asked for, or why the request is refused before anything is dialled. */
function checkRequest(req: IncomingMessage, url: URL, daemonToken: string | undefined): number | Refusal {
  if (daemonToken !== undefined) {
    if (!isAuthorized(req, daemonToken))
      return { status: 401, code: 'UNAUTHORIZED', message: 'unauthorized' };
  } else if (hasForeignOrigin(req)) {
    // Without a token anyone on the loopback may tunnel, but not a web page they happen to
    // visit: a browser cannot put a header on a WebSocket, but it always says where it came from.
    return { status: 403, code: 'FORBIDDEN', message: 'cross-origin request refused' };
  }
  if (req.headers.upgrade?.toLowerCase() !== 'websocket') {
    return { status: 400, code: 'INVALID_REQUEST', message: 'this route speaks WebSocket' };
  }
  const text = url.searchParams.get('port');
  const port = parsePort(text);
  if (port === undefined) {
    const message =
      text === null ? 'port: required' : `port: '${text.slice(0, 20)}' is not an integer from 1 to 65535`;
    return { status: 400, code: 'INVALID_REQUEST', message };
  }
  return port;
}
