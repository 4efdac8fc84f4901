import { createServer, type Server } from 'node:http';
import { isAuthorized } from '../http/auth.ts';
import type { Dialect } from '../http/dialect.ts';

export interface HttpServerOptions {
  dialects: Dialect[];
  /** When set, every route but the public health checks requires it. */
  token?: string;
}

/** One node:http server for every dialect; any Host header is accepted. */
export function createHttpServer({ dialects, token }: HttpServerOptions): Server {
  return createServer((req, res) => {
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
  });
}
