import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { isAuthorized, readCookies } from '../http/auth.ts';
import type { PreviewAccess } from '../ports/preview-access.ts';
import { PREVIEW_CODE_PARAM } from '../ports/preview-link.ts';
import { prepareForwardedHeaders } from './forward-headers.ts';
import { previewHost } from './host.ts';
import {
  badPortPage,
  daemonPortPage,
  privatePage,
  refuseWithPage,
  sendPage,
  spentLinkPage,
} from './pages.ts';
import { loopbackProxy } from './proxy.ts';

/** The cookie a preview link leaves in the browser: a session that opens one port's preview. */
export const PREVIEW_COOKIE = 'sandboxd_preview';

export interface PreviewOptions {
  access: PreviewAccess;
  /** The daemon's token: it opens every preview, and is never passed on. */
  token?: string;
  /** The console's session cookie, which opens no preview and is never passed on. */
  consoleCookie: string;
  /**
   * The ports the daemon listens on (filled in once it listens): their previews would be the
   * daemon proxying to itself, each hop a new connection, without end.
   */
  daemonPorts: ReadonlySet<number>;
}

/**
 * HTTP previews: a request whose Host starts with `<port>-` goes to that port of the sandbox's
 * loopback. Selected by Host, before the daemon's own routes and their token check, since the
 * path is the app's.
 */
export interface Previews {
  /** Takes the request if its Host names a preview; false leaves it to the daemon's routes. */
  serve(req: IncomingMessage, res: ServerResponse): boolean;
  /** The same for a WebSocket upgrade (an app's hot reload, say). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  close(): void;
}

const CODE_IN_QUERY = `${PREVIEW_CODE_PARAM}=`;

export function previews({ access, token, consoleCookie, daemonPorts }: PreviewOptions): Previews {
  const proxy = loopbackProxy();
  const credentials = { token, cookies: [consoleCookie, PREVIEW_COOKIE] };

  /** Private by default: the token in a header, a session from a link for this port, or a public port. */
  const mayOpen = (req: IncomingMessage, port: number): boolean => {
    if (token === undefined || access.isPublic(port) || isAuthorized(req, token)) return true;
    return previewSessions(req).some((session) => access.sessionOpens(session, port));
  };

  /** Opening a link: its code is swapped for a cookie, and the browser sent on without it. */
  const openLink = (req: IncomingMessage, res: ServerResponse, port: number, code: string) => {
    req.resume();
    const session = access.redeemCode(code, port);
    if (session === undefined && !mayOpen(req, port)) {
      sendPage(res, spentLinkPage(port));
      return;
    }
    const headers: Record<string, string> = {
      location: withoutCode(req.url ?? '/'),
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
    };
    if (session !== undefined) headers['set-cookie'] = cookie(req, session, access.sessionLifetimeMs);
    res.writeHead(303, headers);
    res.end();
  };

  return {
    serve(req, res) {
      const host = previewHost(req.headers.host);
      if (host.kind === 'none') return false;
      if (host.kind === 'bad' || daemonPorts.has(host.port)) {
        req.resume();
        sendPage(res, host.kind === 'bad' ? badPortPage(host.label) : daemonPortPage(host.port));
        return true;
      }
      const code = linkCode(req);
      if (code !== undefined) openLink(req, res, host.port, code);
      else if (!mayOpen(req, host.port)) {
        req.resume();
        sendPage(res, privatePage(host.port));
      } else {
        prepareForwardedHeaders(req, credentials);
        proxy.web(req, res, host.port);
      }
      return true;
    },

    upgrade(req, socket, head) {
      const host = previewHost(req.headers.host);
      if (host.kind === 'none') return false;
      if (host.kind === 'bad') refuseWithPage(socket, badPortPage(host.label));
      else if (daemonPorts.has(host.port)) refuseWithPage(socket, daemonPortPage(host.port));
      else if (!mayOpen(req, host.port)) refuseWithPage(socket, privatePage(host.port));
      else {
        prepareForwardedHeaders(req, credentials);
        proxy.upgrade(req, socket, head, host.port);
      }
      return true;
    },

    close: () => proxy.close(),
  };
}

/**
 * Every preview cookie the request carries. Usually one; but an app on a sibling preview host
 * (`3001-sandbox.localhost`) may set one for the parent domain, which the browser then sends
 * beside this host's own: it must not hide the real one.
 */
function previewSessions(req: IncomingMessage): string[] {
  return readCookies(req, PREVIEW_COOKIE);
}

/** The code of a preview link being opened (a GET or HEAD with the parameter), if this is one. */
function linkCode(req: IncomingMessage): string | undefined {
  const target = req.url ?? '';
  if ((req.method !== 'GET' && req.method !== 'HEAD') || !target.includes(CODE_IN_QUERY)) return undefined;
  const query = target.indexOf('?');
  if (query === -1) return undefined;
  return new URLSearchParams(target.slice(query + 1)).get(PREVIEW_CODE_PARAM) ?? undefined;
}

/**
 * The request target without the code, every other byte of it as it was, and a path on this
 * host: `//other.example/…` would send the browser to another host (an open redirect).
 */
function withoutCode(requested: string): string {
  const target = requested.startsWith('/') ? requested.replace(/^[/\\]+/, '/') : '/';
  const query = target.indexOf('?');
  if (query === -1) return target;
  const kept = target
    .slice(query + 1)
    .split('&')
    .filter((pair) => pair.split('=', 1)[0] !== PREVIEW_CODE_PARAM);
  const path = target.slice(0, query);
  return kept.length > 0 ? `${path}?${kept.join('&')}` : path;
}

/**
 * Host-only (no Domain), so the browser sends it to this preview's host alone; HttpOnly, so
 * the app's scripts cannot read it; SameSite=Lax, so it goes with the redirect and with the
 * user's own navigation to the app, but not with other sites' requests.
 */
function cookie(req: IncomingMessage, session: string, lifetimeMs: number): string {
  const secure = req.headers['x-forwarded-proto'] === 'https' || 'encrypted' in req.socket;
  return (
    `${PREVIEW_COOKIE}=${session}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${Math.floor(lifetimeMs / 1000)}` +
    (secure ? '; Secure' : '')
  );
}
