import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * Compares a presented token with the expected one in constant time. Both are hashed first,
 * so neither the content nor the length of the token leaks through timing.
 */
export function tokensMatch(presented: string | undefined, expected: string): boolean {
  return presented !== undefined && timingSafeEqual(digest(presented), digest(expected));
}

/** True when the request carries the token as `Authorization: Bearer` or `X-Access-Token`. */
export function isAuthorized(req: IncomingMessage, expected: string): boolean {
  const access = req.headers['x-access-token'];
  const bearer = req.headers.authorization?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim();
  // Both are compared, always, so that timing does not tell which header was right.
  const accessMatches = tokensMatch(typeof access === 'string' ? access : undefined, expected);
  const bearerMatches = tokensMatch(bearer, expected);
  return accessMatches || bearerMatches;
}
