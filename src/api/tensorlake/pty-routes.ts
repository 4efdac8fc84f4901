import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import './zod-setup.ts';
import * as z from 'zod';
import type { ProcessTable } from '../../core/process-table.ts';
import { DEFAULT_TERMINAL_SIZE } from '../../core/start-request.ts';
import { isAuthorized, tokensMatch } from '../../http/auth.ts';
import { readJson } from '../../http/body.ts';
import { sendJson } from '../../http/json.ts';
import type { RouteContext } from '../../http/router.ts';
import { refuseUpgrade } from '../../http/upgrade.ts';
import { lazyWebSocketServer } from '../../http/websocket-server.ts';
import { ApiError, toApiError } from './errors.ts';
import type { Limits } from './limits.ts';
import { type PtySession, type PtySessionOptions, PtySessions } from './pty-sessions.ts';
import { type PtySocketOptions, serveTerminal } from './pty-socket.ts';
import { sendNoContent } from './respond.ts';
import type { PtySessionInfo } from './responses.ts';
import { commandFields, timeout, toStartRequest } from './schemas.ts';

export const createBody = z
  .object({
    ...commandFields,
    rows: z.number().int().nullish(),
    cols: z.number().int().nullish(),
    timeout,
  })
  .meta({ id: 'PtyCreateRequest' });

export const resizeBody = z
  .object({ rows: z.number().int(), cols: z.number().int() })
  .meta({ id: 'PtyResizeRequest' });

export interface PtyOptions extends PtySessionOptions, PtySocketOptions {
  /** Largest WebSocket frame a client may send. */
  maxFrameBytes: number;
  /** The daemon's own token, if it has one: presented in a header, it opens any session. */
  daemonToken?: string;
}

function sessionInfo(session: PtySession): PtySessionInfo {
  const { child } = session;
  return {
    session_id: session.id,
    pid: child.pid,
    command: child.spec.command,
    args: child.spec.args,
    rows: (child.size ?? DEFAULT_TERMINAL_SIZE).rows,
    cols: (child.size ?? DEFAULT_TERMINAL_SIZE).cols,
    created_at: session.createdAt,
    ended_at: child.endedAt,
    exit_code: session.exitCode,
    is_alive: child.running,
  };
}

/** Terminal sessions: REST to manage them, a WebSocket to use one. */
export function ptyRoutes(table: ProcessTable, limits: Limits, options: PtyOptions) {
  const sessions = new PtySessions(table, options);
  const sockets = lazyWebSocketServer({ maxPayload: options.maxFrameBytes });
  const lookup = ({ params }: RouteContext) => sessions.get(params.id as string);

  return {
    async create({ req, res }: RouteContext) {
      const body = createBody.parse(await readJson(req, limits.jsonBytes));
      const session = await sessions.create(toStartRequest(body, { rows: body.rows, cols: body.cols }));
      sendJson(res, 201, { session_id: session.id, token: session.token });
    },

    list({ res }: RouteContext) {
      sendJson(res, 200, { sessions: sessions.list().map(sessionInfo) });
    },

    get(context: RouteContext) {
      sendJson(context.res, 200, sessionInfo(lookup(context)));
    },

    delete(context: RouteContext) {
      sessions.delete(lookup(context));
      sendNoContent(context.res);
    },

    async resize(context: RouteContext) {
      const session = lookup(context);
      const body = resizeBody.parse(await readJson(context.req, limits.jsonBytes));
      session.child.resize({ rows: body.rows, cols: body.cols });
      sendNoContent(context.res);
    },

    /**
     * The WebSocket: authorized by the session's token, in the query or X-PTY-Token, or with
     * no session token by the daemon's own credentials (see daemonCredentials).
     */
    upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL, id: string) {
      let session: PtySession;
      try {
        session = sessions.get(id);
        const header = req.headers['x-pty-token'];
        const presented = url.searchParams.get('token') ?? (typeof header === 'string' ? header : undefined);
        const allowed =
          presented === undefined
            ? daemonCredentials(req, options.daemonToken)
            : tokensMatch(presented, session.token);
        if (!allowed) throw new ApiError(403, 'INVALID_TOKEN', 'invalid terminal token');
      } catch (error) {
        refuseWith(socket, error);
        return;
      }
      sockets.handleUpgrade(req, socket, head, (ws) => serveTerminal(ws, session, sessions, options));
    },
  };
}

/**
 * Whoever may start processes may also attach to any terminal (`sandboxd attach`): the daemon's
 * token in a header, or, on a daemon without a token (which serves loopback only and answers
 * every REST call anyway), any client that is not a web page. A browser always sends `Origin`
 * on a WebSocket handshake and cannot put a header of its own on one, so a page gets in only
 * with the session's token, as before.
 */
function daemonCredentials(req: IncomingMessage, daemonToken: string | undefined): boolean {
  return daemonToken === undefined ? req.headers.origin === undefined : isAuthorized(req, daemonToken);
}

function refuseWith(socket: Duplex, error: unknown): void {
  const { status, code, message } = toApiError(error);
  refuseUpgrade(
    socket,
    status,
    status === 404 ? 'Not Found' : 'Forbidden',
    JSON.stringify({ error: message, code }),
  );
}
