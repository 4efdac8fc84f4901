import type { IncomingMessage } from 'node:http';
import { crypto } from '../node-on-demand.ts';

const digest = (text: string) => crypto().createHash('sha256').update(text).digest();

/**
 * Compares a presented token with the expected one in constant time. Both are hashed first,
 * so neither the content nor the length of the token leaks through timing.
 */
export function tokensMatch(presented: string | undefined, expected: string): boolean {
  return presented !== undefined && crypto().timingSafeEqual(digest(presented), digest(expected));
}

/** The token of an `Authorization: Bearer T` header. */
export function bearerToken(authorization: string | undefined): string | undefined {
  return authorization?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim();
}

/** True when the request carries the token as `Authorization: Bearer` or `X-Access-Token`. */
export function isAuthorized(req: IncomingMessage, expected: string): boolean {
  const access = req.headers['x-access-token'];
  const bearer = bearerToken(req.headers.authorization);
  // Both are compared, always, so that timing does not tell which header was right.
  const accessMatches = tokensMatch(typeof access === 'string' ? access : undefined, expected);
  const bearerMatches = tokensMatch(bearer, expected);
  return accessMatches || bearerMatches;
}

/** The value of one cookie the request carries, if it carries it. */
export function readCookie(req: IncomingMessage, name: string): string | undefined {
  return readCookies(req, name)[0];
}

/** Every value the request carries for a cookie name (cookies of a parent domain come beside the host's own). */
export function readCookies(req: IncomingMessage, name: string): string[] {
  const values: string[] = [];
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const equals = part.indexOf('=');
    if (equals !== -1 && part.slice(0, equals).trim() === name) values.push(part.slice(equals + 1).trim());
  }
  return values;
}

const SAFE_METHODS = new Set(['GET', 'HEAD']);

/**
 * True when a browser request was made by a page of the origin it is sent to. A SameSite=Strict
 * cookie still travels with requests from other ports of the same host (the same site), so the
 * browser's own word on where a request came from decides: fetch metadata when it sends it, and
 * an Origin naming this host on anything that may change state.
 */
export function isSameOriginRequest(req: IncomingMessage): boolean {
  const safe = SAFE_METHODS.has(req.method ?? 'GET');
  const site = req.headers['sec-fetch-site'];
  // "none" is a person typing the address or opening a bookmark: fine for a read only.
  if (site !== undefined && site !== 'same-origin' && !(safe && site === 'none')) return false;
  if (safe) return true;
  const origin = req.headers.origin;
  if (origin === undefined || req.headers.host === undefined) return false;
  try {
    return new URL(origin).host === req.headers.host.toLowerCase();
  } catch {
    return false;
  }
}

/**
 * True when a browser says a request that may change state comes from a page of another
 * origin. Clients that are not browsers send neither header and pass; so does a browser's
 * read, whose answer another origin's page cannot see. Without a token, this is what keeps a
 * web page from starting processes on a daemon listening on loopback.
 */
export function isCrossOriginWrite(req: IncomingMessage): boolean {
  if (SAFE_METHODS.has(req.method ?? 'GET')) return false;
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return true;
  return hasForeignOrigin(req);
}

/**
 * True when the request names an origin other than the host it is sent to. Browsers always
 * send Origin on a WebSocket handshake and on a write; clients that are not browsers send none.
 */
export function hasForeignOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== (req.headers.host ?? '').toLowerCase();
  } catch {
    return true; // "null", or nonsense: not this origin.
  }
}

/**
 * A second way in, for browsers, which cannot put a token on an EventSource or a WebSocket:
 * a session cookie, honoured only on the routes the session's owner allows it on.
 * `cross-origin`: a live session, but the request came from another origin.
 */
export interface SessionAuth {
  check(req: IncomingMessage, url: URL): 'ok' | 'none' | 'cross-origin';
}
