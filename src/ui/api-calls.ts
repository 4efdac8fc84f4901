// The REST routes the console calls, and so the only ones its session cookie opens. A route
// added to the console must be added here; everything else still needs the token.
const ref = '[^/]+';
const calls: [method: string, path: RegExp][] = [
  ['GET', /^\/api\/v1\/info$/],
  ['GET', /^\/api\/v1\/processes$/],
  ['POST', /^\/api\/v1\/processes$/],
  ['GET', new RegExp(`^/api/v1/processes/${ref}$`)],
  ['DELETE', new RegExp(`^/api/v1/processes/${ref}$`)],
  ['POST', new RegExp(`^/api/v1/processes/${ref}/(signal|restart|stdin|stdin/close)$`)],
  ['GET', new RegExp(`^/api/v1/processes/${ref}/(output|stdout|stderr)(/follow)?$`)],
  ['GET', /^\/api\/v1\/pty$/],
  ['POST', /^\/api\/v1\/pty$/],
  ['GET', new RegExp(`^/api/v1/pty/${ref}$`)],
  ['DELETE', new RegExp(`^/api/v1/pty/${ref}$`)],
  ['POST', new RegExp(`^/api/v1/pty/${ref}/resize$`)],
  ['GET', /^\/api\/v1\/files$/],
  ['PUT', /^\/api\/v1\/files$/],
  ['DELETE', /^\/api\/v1\/files$/],
  ['GET', /^\/api\/v1\/files\/list$/],
  ['GET', /^\/api\/v1\/ports$/],
  ['POST', /^\/api\/v1\/ports\/\d{1,5}\/preview$/],
];

/** True for a route the console calls. */
export function isConsoleCall(method: string, pathname: string): boolean {
  // The REST routes take an optional trailing slash.
  const path = pathname.length > 1 ? pathname.replace(/\/$/, '') : pathname;
  return calls.some(([m, pattern]) => m === method && pattern.test(path));
}
