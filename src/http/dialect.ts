import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/** One wire protocol served by the daemon; the server picks the dialect that owns a path. */
export interface Dialect {
  owns(url: URL): boolean;
  /** Paths served without a token (health checks). */
  isPublic(req: IncomingMessage, url: URL): boolean;
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void>;
  /** Refuses a request that lacks a valid token, in this dialect's error shape, with no detail. */
  unauthorized(res: ServerResponse): void;
  /** An error in this dialect's shape, for answers the server gives before a route is found. */
  errorBody(url: URL, status: number, message: string): unknown;
  /**
   * Takes over a WebSocket upgrade on a path the dialect owns. The dialect authorizes it
   * itself: such routes carry their own credentials (a browser cannot set headers on one).
   */
  upgrade?(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void;
}
