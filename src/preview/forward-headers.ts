import type { IncomingMessage } from 'node:http';
import { bearerToken, tokensMatch } from '../http/auth.ts';

export interface Credentials {
  /** The daemon's token, if it has one. */
  token?: string;
  /** Names of the daemon's own cookies (the console's session, the preview's). */
  cookies: readonly string[];
}

/**
 * Makes a request's headers fit to pass on to a sandboxed app: the daemon's credentials taken
 * out (its token headers and its cookies, which the app must never see, or it could act as the
 * user on the daemon), and `X-Forwarded-For/-Host/-Proto` added. A proxy in front of the daemon
 * may have set Host and Proto already (TLS ends there): those are kept, and For is appended to.
 */
export function prepareForwardedHeaders(req: IncomingMessage, credentials: Credentials): void {
  const headers = req.headers;
  // Another Authorization (the app's own Basic login, say) is the app's business.
  if (credentials.token !== undefined && tokensMatch(bearerToken(headers.authorization), credentials.token))
    delete headers.authorization;
  delete headers['x-access-token'];
  if (headers.cookie !== undefined) {
    const kept = headers.cookie.split(';').filter((part) => !credentials.cookies.includes(cookieName(part)));
    if (kept.length === 0) delete headers.cookie;
    else headers.cookie = kept.join(';').trim();
  }
  const client = req.socket.remoteAddress ?? '';
  const forwardedFor = headers['x-forwarded-for'];
  headers['x-forwarded-for'] = forwardedFor ? `${String(forwardedFor)}, ${client}` : client;
  headers['x-forwarded-host'] ??= headers.host ?? '';
  headers['x-forwarded-proto'] ??= 'encrypted' in req.socket ? 'https' : 'http';
}

function cookieName(pair: string): string {
  const equals = pair.indexOf('=');
  return (equals === -1 ? pair : pair.slice(0, equals)).trim();
}
