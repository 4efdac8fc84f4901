import { SandboxError } from '../../core/errors.ts';
import { type LongTimeout, setLongTimeout } from '../../core/long-timeout.ts';
import type { SandboxProcess } from '../../core/process.ts';
import type { ProcessTable, StartRequest } from '../../core/process-table.ts';
import { exitCodeOf, SIGHUP } from '../../core/signals.ts';
import { crypto } from '../../node-on-demand.ts';
import { ApiError } from './errors.ts';

export interface PtySessionOptions {
  /** An unattached session is killed and forgotten after this long. */
  idleTimeoutMs: number;
  /** Sessions that may exist at once. */
  maxSessions: number;
  /** Between SIGHUP and SIGKILL when a session is deleted. */
  killGraceMs: number;
}

/** Something attached to a session, told when the session is deleted. */
export interface SessionClient {
  terminate(): void;
}

/** A terminal session: a process in a pty, with the token that lets a client attach to it. */
export class PtySession {
  // Hex: an id that began with '-' would read as an option on a command line (sandboxd attach ID).
  readonly id = crypto().randomBytes(8).toString('hex');
  // URL-safe, since clients put it in a query string as it is.
  readonly token = crypto().randomBytes(24).toString('base64url');
  readonly createdAt = Date.now();
  readonly clients = new Set<SessionClient>();
  idleTimer: LongTimeout | undefined;

  constructor(readonly child: SandboxProcess) {}

  /** Clients get one number, as a shell reports it. */
  get exitCode(): number | null {
    return exitCodeOf(this.child);
  }
}

/** The dialect's terminal sessions. Their processes live in the shared process table. */
export class PtySessions {
  private readonly sessions = new Map<string, PtySession>();

  constructor(
    private readonly table: ProcessTable,
    private readonly options: PtySessionOptions,
  ) {}

  async create(request: StartRequest): Promise<PtySession> {
    if (this.sessions.size >= this.options.maxSessions) {
      throw new ApiError(
        429,
        'TOO_MANY_SESSIONS',
        `at most ${this.options.maxSessions} terminal sessions may exist`,
      );
    }
    const session = new PtySession(await this.table.start(request));
    this.sessions.set(session.id, session);
    this.detached(session);
    return session;
  }

  get(id: string): PtySession {
    const session = this.sessions.get(id);
    if (!session) throw new ApiError(404, 'SESSION_NOT_FOUND', `terminal session ${id} not found`);
    return session;
  }

  list(): PtySession[] {
    return [...this.sessions.values()];
  }

  attach(session: PtySession, client: SessionClient): void {
    session.idleTimer?.clear();
    session.clients.add(client);
  }

  detach(session: PtySession, client: SessionClient): void {
    session.clients.delete(client);
    if (session.clients.size === 0 && this.sessions.get(session.id) === session) this.detached(session);
  }

  /** SIGHUP to the session's process group, SIGKILL to all its descendants after the grace; its clients are told. */
  delete(session: PtySession): void {
    this.sessions.delete(session.id);
    session.idleTimer?.clear();
    for (const client of session.clients) client.terminate();
    session.clients.clear();
    const { child } = session;
    if (!child.running) return;
    // Also called from the idle timer: a failure is reported, never thrown; a process that
    // ended meanwhile needs no hang-up.
    try {
      child.sendSignal(SIGHUP);
    } catch (error) {
      if (!(error instanceof SandboxError && error.kind === 'not_running'))
        console.error(`sandboxd: cannot signal terminal session ${session.id}:`, error);
    }
    const kill = setTimeout(() => void child.kill(), this.options.killGraceMs).unref();
    void child.exited.then(() => clearTimeout(kill));
  }

  private detached(session: PtySession): void {
    session.idleTimer?.clear();
    session.idleTimer = setLongTimeout(() => this.delete(session), this.options.idleTimeoutMs);
  }
}
