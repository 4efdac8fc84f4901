import { crypto } from '../node-on-demand.ts';

// Who may open an HTTP preview of a port, apart from the daemon's token: ports open to anyone,
// one-time codes that preview links carry, and the browser sessions those codes are swapped
// for. No HTTP here: the REST route hands codes out and the preview proxy checks them, each
// given this one object by the daemon.

export interface PreviewAccessOptions {
  /** Ports whose previews anyone may open. */
  publicPorts: Iterable<number>;
  /** How long a link's code may wait to be opened. */
  codeLifetimeMs: number;
  /** How long a browser session, once opened from a link, lasts. */
  sessionLifetimeMs: number;
  /** Beyond this many codes (or sessions), the oldest is forgotten. */
  maxEntries: number;
}

interface Grant {
  port: number;
  expiresAt: number;
}

// Maps are keyed by a hash of the secret, so that a lookup's timing says nothing about a secret
// that is almost right, and the daemon's memory holds nothing a reader could replay.
const key = (secret: string) => crypto().createHash('sha256').update(secret).digest('base64url');

/** Holds a bounded, insertion-ordered set of secrets that each open one port until a time. */
class Grants {
  private readonly byKey = new Map<string, Grant>();

  constructor(private readonly maxEntries: number) {}

  add(port: number, lifetimeMs: number, now: number): { secret: string; expiresAt: number } {
    const secret = crypto().randomBytes(32).toString('base64url');
    const expiresAt = now + lifetimeMs;
    this.byKey.set(key(secret), { port, expiresAt });
    for (const oldest of this.byKey.keys()) {
      if (this.byKey.size <= this.maxEntries) break;
      this.byKey.delete(oldest);
    }
    return { secret, expiresAt };
  }

  /** The live grant of a secret, if any; an expired one is forgotten on the way. */
  find(secret: string, now: number): Grant | undefined {
    const grantKey = key(secret);
    const grant = this.byKey.get(grantKey);
    if (grant === undefined) return undefined;
    if (grant.expiresAt > now) return grant;
    this.byKey.delete(grantKey);
    return undefined;
  }

  delete(secret: string): void {
    this.byKey.delete(key(secret));
  }
}

/** The daemon's record of who may open which port's preview. */
export class PreviewAccess {
  /** Ports open to anyone (`--public-port`). */
  readonly publicPorts: ReadonlySet<number>;
  private readonly codes: Grants;
  private readonly sessions: Grants;

  constructor(private readonly options: PreviewAccessOptions) {
    this.publicPorts = new Set(options.publicPorts);
    this.codes = new Grants(options.maxEntries);
    this.sessions = new Grants(options.maxEntries);
  }

  isPublic(port: number): boolean {
    return this.publicPorts.has(port);
  }

  get sessionLifetimeMs(): number {
    return this.options.sessionLifetimeMs;
  }

  /** A one-time code that opens this port's preview once, within the code lifetime. */
  createCode(port: number, now = Date.now()): { code: string; expiresAt: number } {
    const { secret, expiresAt } = this.codes.add(port, this.options.codeLifetimeMs, now);
    return { code: secret, expiresAt };
  }

  /**
   * Spends a code on this port: a new session secret for the browser when the code is live and
   * was made for this port; undefined otherwise. A code is spent whatever port it is tried on,
   * so a code that leaked cannot be tried again.
   */
  redeemCode(code: string, port: number, now = Date.now()): string | undefined {
    const grant = this.codes.find(code, now);
    this.codes.delete(code);
    if (grant === undefined || grant.port !== port) return undefined;
    return this.sessions.add(port, this.options.sessionLifetimeMs, now).secret;
  }

  /** True when the session secret is live and was opened for this port (and no other). */
  sessionOpens(session: string, port: number, now = Date.now()): boolean {
    return this.sessions.find(session, now)?.port === port;
  }
}
