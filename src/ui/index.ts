import type { IncomingMessage, ServerResponse } from 'node:http';
import { isSameOriginRequest, tokensMatch } from '../http/auth.ts';
import { BodyError, readBody } from '../http/body.ts';
import type { Dialect } from '../http/dialect.ts';
import { Assets } from './assets.ts';
import { ConsoleSessions, sessionCookie } from './sessions.ts';

export interface ConsoleOptions {
  /** The daemon's token; without one the console, like the API, is open. */
  token?: string;
  sessionLifetimeMs?: number;
}

const PREFIX = '/ui';
const LOGIN = `${PREFIX}/login`;
const HOME = `${PREFIX}/`;

// The pages load only their own scripts and talk only to their own origin. xterm styles its
// rows with a <style> element, hence inline styles.
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  // Not no-referrer: Chromium then sends "Origin: null" with the page's own form posts.
  'referrer-policy': 'same-origin',
};

const LOGOUT_FORM =
  '<form method="post" action="/ui/logout" class="logout"><button type="submit">Log out</button></form>';
const LOGIN_FAILED = '<p class="error" role="alert">That token is not right.</p>';

/**
 * The web console: its pages and assets under /ui, and the login that gives a browser a
 * session cookie, which the request listener then accepts on the REST routes the console calls.
 */
export function consoleUi({ token, sessionLifetimeMs = 24 * 60 * 60 * 1000 }: ConsoleOptions) {
  const sessions = new ConsoleSessions({ lifetimeMs: sessionLifetimeMs, maxSessions: 1000 });
  const assets = new Assets();
  const loggedIn = (req: IncomingMessage) => token === undefined || sessions.has(req);

  const redirect = (res: ServerResponse, location: string, headers: Record<string, string> = {}) => {
    res.writeHead(303, { location, 'cache-control': 'no-store', ...headers });
    res.end();
  };

  const plain = (res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
    res.end(text);
  };

  const sendPage = async (
    res: ServerResponse,
    status: number,
    name: string,
    fill: Record<string, string>,
  ) => {
    const page = await assets.page(name);
    if (page === undefined) {
      plain(res, 503, 'The console is not built: run `npm run build`.\n');
      return;
    }
    const html = page.replace(/<!--(\w+)-->/g, (slot, key: string) => fill[key] ?? slot);
    res.writeHead(status, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      ...PAGE_HEADERS,
    });
    res.end(html);
  };

  const logIn = async (req: IncomingMessage, res: ServerResponse) => {
    if (!isSameOriginRequest(req)) {
      req.resume();
      plain(res, 403, 'cross-origin request refused\n');
      return;
    }
    if (token === undefined) {
      req.resume();
      redirect(res, HOME);
      return;
    }
    const form = new URLSearchParams((await readBody(req, 64 * 1024)).toString('utf8'));
    if (!tokensMatch(form.get('token') ?? undefined, token)) {
      await sendPage(res, 401, 'login.html', { error: LOGIN_FAILED });
      return;
    }
    redirect(res, HOME, { 'set-cookie': sessionCookie(sessions.create(), sessionLifetimeMs) });
  };

  const logOut = (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    if (!isSameOriginRequest(req)) {
      plain(res, 403, 'cross-origin request refused\n');
      return;
    }
    sessions.end(req);
    redirect(res, token === undefined ? HOME : LOGIN, { 'set-cookie': sessionCookie(undefined, 0) });
  };

  const dialect: Dialect = {
    owns: (url) => url.pathname === PREFIX || url.pathname.startsWith(`${PREFIX}/`),
    // The console checks its own session and answers a stranger with the login page.
    isPublic: () => true,
    unauthorized: (res) => redirect(res, LOGIN),
    errorBody: (_url, _status, message) => ({ error: message }),
    async handle(req, res, url) {
      const method = req.method ?? 'GET';
      const path = url.pathname;
      try {
        if (path === LOGIN && method === 'POST') return await logIn(req, res);
        if (path === `${PREFIX}/logout` && method === 'POST') return logOut(req, res);
        req.resume();
        if (path === `${PREFIX}/logout`) return plain(res, 405, 'log out with POST\n', { allow: 'POST' });
        if (method !== 'GET' && method !== 'HEAD') return plain(res, 405, 'method not allowed\n');
        // The assets are the same bytes as the package ships; only pages need a session.
        if (path.startsWith(`${PREFIX}/assets/`)) {
          const found = await assets.send(req, res, path.slice(PREFIX.length + 1));
          if (!found) plain(res, 404, 'not found\n');
          return;
        }
        if (path === LOGIN) {
          if (loggedIn(req)) return redirect(res, HOME);
          return await sendPage(res, 200, 'login.html', { error: '' });
        }
        if (!loggedIn(req)) return redirect(res, LOGIN);
        if (path === PREFIX || path === HOME)
          return await sendPage(res, 200, 'index.html', { logout: token === undefined ? '' : LOGOUT_FORM });
        plain(res, 404, 'not found\n');
      } catch (error) {
        if (!(error instanceof BodyError)) throw error;
        plain(res, error.status, `${error.message}\n`);
      }
    },
  };

  return { dialect, sessions };
}
