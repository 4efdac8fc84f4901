import type { IncomingMessage } from 'node:http';
import { isSameOriginRequest, readCookie, type SessionAuth } from '../http/auth.ts';
import { crypto } from '../node-on-demand.ts';
import { isConsoleCall } from './api-calls.ts';

export const COOKIE = 'sandboxd_console';

export interface SessionOptions {
  /** A session ends this long after login, whatever happens. */
  lifetimeMs: number;
  /** Beyond this many live sessions, the oldest is ended. */
  maxSessions: number;
}

// The map is keyed by a hash of the cookie, so a lookup's timing says nothing about a
// cookie that is almost right, and the daemon's memory holds no usable cookie.
const key = (cookie: string) => crypto().createHash('sha256').update(cookie).digest('base64url');

/** The console's logins: random cookies, held in memory only (a restart logs everyone out). */
export class ConsoleSessions implements SessionAuth {
  private readonly expiries = new Map<string, number>();

  constructor(private readonly options: SessionOptions) {}

  /** A new session; returns its cookie value. */
  create(): string {
    const cookie = crypto().randomBytes(32).toString('base64url');
    this.expiries.set(key(cookie), Date.now() + this.options.lifetimeMs);
    for (const oldest of this.expiries.keys()) {
      if (this.expiries.size <= this.options.maxSessions) break;
      this.expiries.delete(oldest);
    }
    return cookie;
  }

  /** True when the request carries the cookie of a live session. */
  has(req: IncomingMessage): boolean {
    const cookie = readCookie(req, COOKIE);
    if (cookie === undefined) return false;
    const expiry = this.expiries.get(key(cookie));
    if (expiry === undefined) return false;
    if (expiry > Date.now()) return true;
    this.expiries.delete(key(cookie));
    return false;
  }

  /** Ends the request's session, if it has one. */
  end(req: IncomingMessage): void {
    const cookie = readCookie(req, COOKIE);
    if (cookie !== undefined) this.expiries.delete(key(cookie));
  }

  check(req: IncomingMessage, url: URL): 'ok' | 'none' | 'cross-origin' {
    if (!isConsoleCall(req.method ?? 'GET', url.pathname) || !this.has(req)) return 'none';
    return isSameOriginRequest(req) ? 'ok' : 'cross-origin';
  }
}

/** The Set-Cookie value that stores a session in the browser, or (no value) clears it. */
export function sessionCookie(value: string | undefined, lifetimeMs: number): string {
  const attributes = 'Path=/; HttpOnly; SameSite=Strict';
  if (value === undefined) return `${COOKIE}=; ${attributes}; Max-Age=0`;
  return `${COOKIE}=${value}; ${attributes}; Max-Age=${Math.floor(lifetimeMs / 1000)}`;
}
