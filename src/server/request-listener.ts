import type { IncomingMessage, RequestListener } from 'node:http';
import type { Duplex } from 'node:stream';
import { isAuthorized } from '../http/auth.ts';
import type { Dialect } from '../http/dialect.ts';

export interface RequestListenerOptions {
  dialects: Dialect[];
  /** When set, every route but the public health checks requires it. */
  token?: string;
}

/** Serves every dialect from one listener: auth first, then the dialect that owns the path. Any Host header is accepted. */
export function createRequestListener({ dialects, token }: RequestListenerOptions): RequestListener {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://sandboxd');
    const dialect = dialects.find((d) => d.owns(url));
    if (token !== undefined && !(dialect?.isPublic(req, url) ?? false) && !isAuthorized(req, token)) {
      (dialect ?? (dialects[0] as Dialect)).unauthorized(res);
      req.resume();
      return;
    }
    if (!dialect) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `no route for ${url.pathname}`, code: 'NOT_FOUND' }));
      req.resume();
      return;
    }
    dialect.handle(req, res, url).catch((error: unknown) => {
      console.error('sandboxd: unhandled request error:', error);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  };
}

export type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** Hands a WebSocket upgrade to the dialect that owns the path; refuses it elsewhere. */
export function createUpgradeListener(dialects: Dialect[]): UpgradeListener {
  return (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://sandboxd');
    const dialect = dialects.find((d) => d.owns(url) && d.upgrade);
    if (dialect?.upgrade) {
      dialect.upgrade(req, socket, head, url);
      return;
    }
    socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
  };
}
