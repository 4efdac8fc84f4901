import type { IncomingMessage, ServerResponse } from 'node:http';

/** One wire protocol served by the daemon; the server picks the dialect that owns a path. */
export interface Dialect {
  owns(url: URL): boolean;
  /** Paths served without a token (health checks). */
  isPublic(req: IncomingMessage, url: URL): boolean;
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void>;
  /** Refuses a request that lacks a valid token, in this dialect's error shape, with no detail. */
  unauthorized(res: ServerResponse): void;
}
