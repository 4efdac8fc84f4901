import type { IncomingMessage, RequestListener } from 'node:http';
import type { Duplex } from 'node:stream';
import { isAuthorized, isCrossOriginWrite, type SessionAuth } from '../http/auth.ts';
import type { Dialect } from '../http/dialect.ts';
import { sendJson } from '../http/json.ts';
import { refuseUpgrade } from '../http/upgrade.ts';
import type { Previews } from '../preview/index.ts';

export interface RequestListenerOptions {
  dialects: Dialect[];
  /** When set, every route but the public health checks requires it. */
  token?: string;
  /** Browser sessions, accepted instead of the token where they say so. */
  session?: SessionAuth;
  /** HTTP previews, chosen by Host before anything else: they check access themselves. */
  previews?: Previews;
}

/** The request target as a URL; undefined for a target no URL can be made of. */
function requestUrl(req: IncomingMessage): URL | undefined {
  try {
    return new URL(req.url ?? '/', 'http://sandboxd');
  } catch {
    return undefined;
  }
}

/**
 * Serves every dialect from one listener: a preview when the Host names one; otherwise auth
 * first, then the dialect that owns the path. Any other Host header is accepted.
 */
export function createRequestListener({
  dialects,
  token,
  session,
  previews,
}: RequestListenerOptions): RequestListener {
  return (req, res) => {
    if (previews?.serve(req, res)) return;
    const url = requestUrl(req);
    if (!url) {
      sendJson(
        res,
        400,
        { error: 'malformed request target', code: 'INVALID_REQUEST' },
        { connection: 'close' },
      );
      return;
    }
    const dialect = dialects.find((d) => d.owns(url));
    // Answers given before a route is found, in the shape of the dialect whose path it is.
    const shaping = dialect ?? (dialects[0] as Dialect);
    const refuse = (status: number, message: string) => {
      sendJson(res, status, shaping.errorBody(url, status, message));
      req.resume();
    };
    if (isCrossOriginWrite(req)) {
      refuse(403, 'cross-origin request refused');
      return;
    }
    if (token !== undefined && !(dialect?.isPublic(req, url) ?? false) && !isAuthorized(req, token)) {
      const viaSession = session?.check(req, url) ?? 'none';
      if (viaSession !== 'ok') {
        if (viaSession === 'cross-origin') refuse(403, 'cross-origin request refused');
        else {
          shaping.unauthorized(res);
          req.resume();
        }
        return;
      }
    }
    if (!dialect) {
      refuse(404, `no route for ${url.pathname}`);
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

/**
 * Hands a WebSocket upgrade to the preview its Host names, or else to the dialect that owns the
 * path; refuses it elsewhere.
 */
export function createUpgradeListener(dialects: Dialect[], previews?: Previews): UpgradeListener {
  return (req, socket, head) => {
    // Node takes its own error handler off an upgraded socket: a reset must not crash us.
    socket.on('error', () => socket.destroy());
    if (previews?.upgrade(req, socket, head)) return;
    const url = requestUrl(req);
    const dialect = url && dialects.find((d) => d.owns(url) && d.upgrade);
    if (url && dialect?.upgrade) {
      dialect.upgrade(req, socket, head, url);
      return;
    }
    refuseUpgrade(socket, 404, 'Not Found');
  };
}
