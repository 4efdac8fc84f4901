import './zod-setup.ts';
import * as z from 'zod';
import { SLOW_AFTER_MS, SLOW_WAIT_INTERVAL_MS, WAIT_INTERVAL_MS } from '../../ports/wait.ts';
import { followQuery, outputQuery } from './output.ts';
import { waitQuery } from './ports.ts';
import { createBody as ptyCreateBody, resizeBody as ptyResizeBody } from './pty-routes.ts';
import {
  eofEventData,
  errorResponse,
  fileListResponse,
  healthResponse,
  infoResponse,
  outputEventData,
  outputPageResponse,
  portListResponse,
  portReadyResponse,
  previewLinkResponse,
  processInfoResponse,
  processListResponse,
  ptyCreatedResponse,
  ptyListResponse,
  ptySessionResponse,
  runFrameData,
  successResponse,
  truncatedEventData,
} from './responses.ts';
import { filesQuery, processWaitQuery, runBody, signalBody, startBody } from './schemas.ts';
import { tunnelQuery } from './tunnel.ts';

// The REST dialect's routes, each with what the OpenAPI document says of it: the router and the
// document are both built from this table, so no route can exist undocumented.

export type Schema = z.ZodType;
export type JsonObject = Record<string, unknown>;

export interface Answer {
  description: string;
  /** A JSON body of this shape; absent for no body. */
  json?: Schema;
  /** A text/event-stream: the shape of the `data:` of each kind of event (`message` when unnamed). */
  events?: Record<string, Schema>;
  /** Bytes, of this media type. */
  bytes?: string;
}

export interface Operation {
  method: 'get' | 'post' | 'put' | 'delete';
  path: string;
  id: string;
  summary: string;
  description?: string;
  tag: string;
  query?: z.ZodObject;
  headers?: readonly JsonObject[];
  body?: Schema | { bytes: string; description: string };
  answers: Record<number, Answer>;
  /** Needs no token (the health check). */
  open?: boolean;
  security?: readonly JsonObject[];
}

const pathParameter = (name: string, description: string, schema: JsonObject = { type: 'string' }) => ({
  name,
  in: 'path',
  required: true,
  description,
  schema,
});
const REF = pathParameter('ref', 'a pid, or a process name (percent-encoded)');
const PORT = pathParameter('port', 'a TCP port, 1 to 65535', { type: 'string', pattern: '^[0-9]{1,5}$' });
const SESSION = pathParameter('id', 'a terminal session id');

const error = (description: string): Answer => ({ description, json: errorResponse });
const NOT_FOUND = error('no such process (NOT_FOUND)');
const BAD_REQUEST = error('the request is malformed (INVALID_REQUEST)');
export const UNAUTHORIZED = error('the daemon has a token, and the request does not carry it (UNAUTHORIZED)');

/** Every route, in the order the router tries them. */
export function routeTable() {
  const processPath = (path: string) => `/api/v1/processes/{ref}${path}`;
  const pty = (path: string) => `/api/v1/pty/{id}${path}`;
  const main = [
    {
      method: 'get',
      path: '/api/v1/health',
      id: 'health',
      tag: 'daemon',
      summary: 'Is the daemon up (no token needed)',
      open: true,
      answers: { 200: { description: 'healthy', json: healthResponse } },
    },
    {
      method: 'get',
      path: '/api/v1/info',
      id: 'info',
      tag: 'daemon',
      summary: 'Version, uptime and process counts',
      answers: { 200: { description: 'the daemon', json: infoResponse } },
    },
    {
      method: 'get',
      path: '/api/v1/openapi.json',
      id: 'openapi',
      tag: 'daemon',
      summary: 'This document',
      answers: { 200: { description: 'an OpenAPI 3.1 document', json: z.record(z.string(), z.unknown()) } },
    },
    {
      method: 'post',
      path: '/api/v1/processes',
      id: 'startProcess',
      tag: 'processes',
      summary: 'Start a process',
      description:
        'Setting `name`, `restart` or `health_check` makes it managed. `timeout` (seconds) SIGKILLs its group when it has passed.',
      body: startBody,
      answers: {
        201: { description: 'started', json: processInfoResponse },
        400: error('a malformed request (INVALID_REQUEST), or it could not start (SPAWN_FAILED)'),
        409: error('the name belongs to a live process (NAME_TAKEN)'),
        413: error('the body is too large (PAYLOAD_TOO_LARGE)'),
      },
    },
    {
      method: 'get',
      path: '/api/v1/processes',
      id: 'listProcesses',
      tag: 'processes',
      summary: 'Every process, running and finished',
      answers: { 200: { description: 'the processes', json: processListResponse } },
    },
    {
      method: 'post',
      path: '/api/v1/processes/run',
      id: 'runProcess',
      tag: 'processes',
      summary: 'Run and wait: one event stream from start to exit',
      description:
        'The first frame has the pid, then a frame per line, and always exactly one final frame: ' +
        '`exit_code`, `signal` (with `timed_out` after `timeout`), or `error` when it could not start.',
      body: runBody,
      answers: {
        200: {
          description: 'the run, as it happens',
          events: { message: runFrameData, truncated: truncatedEventData },
        },
        400: BAD_REQUEST,
      },
    },
    {
      method: 'get',
      path: processPath(''),
      id: 'getProcess',
      tag: 'processes',
      summary: 'One process',
      answers: { 200: { description: 'the process', json: processInfoResponse }, 404: NOT_FOUND },
    },
    {
      method: 'get',
      path: processPath('/wait'),
      id: 'waitForProcess',
      tag: 'processes',
      summary: 'Wait until the process is running, healthy or has exited',
      description:
        'Answers the process once the state is reached. A managed process backing off is `running` once ' +
        'its next incarnation runs; `exited` is the incarnation asked about. A state that can no longer ' +
        'come (it ended and nothing restarts it) is 400 PROCESS_NOT_RUNNING; `healthy` without a health ' +
        'check is 400 INVALID_REQUEST. The wait ends if the client goes away.',
      query: processWaitQuery,
      answers: {
        200: { description: 'the state was reached', json: processInfoResponse },
        400: error(
          'a bad query, no health check (INVALID_REQUEST), or the state cannot come (PROCESS_NOT_RUNNING)',
        ),
        404: NOT_FOUND,
        408: error('not reached in time (REQUEST_TIMEOUT)'),
      },
    },
    {
      method: 'delete',
      path: processPath(''),
      id: 'killProcess',
      tag: 'processes',
      summary: 'SIGKILL its process group (also when it has ended)',
      answers: { 204: { description: 'killed' }, 404: NOT_FOUND },
    },
    {
      method: 'post',
      path: processPath('/stdin'),
      id: 'writeStdin',
      tag: 'processes',
      summary: 'Write bytes to its stdin',
      description: 'Answered once the bytes are accepted (written, or queued in order).',
      body: { bytes: 'application/octet-stream', description: 'the bytes, as they are' },
      answers: {
        204: { description: 'accepted' },
        400: error('stdin is not an open pipe, or the process has ended (STDIN_NOT_WRITABLE)'),
        404: NOT_FOUND,
        413: error('the body is too large (PAYLOAD_TOO_LARGE)'),
        429: error('the process does not read its stdin (STDIN_QUEUE_FULL)'),
      },
    },
    {
      method: 'post',
      path: processPath('/stdin/close'),
      id: 'closeStdin',
      tag: 'processes',
      summary: 'EOF on its stdin, after everything accepted before',
      answers: {
        204: { description: 'closed' },
        400: error('stdin is not a pipe (STDIN_NOT_WRITABLE)'),
        404: NOT_FOUND,
      },
    },
    {
      method: 'post',
      path: processPath('/signal'),
      id: 'signalProcess',
      tag: 'processes',
      summary: 'Send a signal to its process group (or to it alone with `group: false`)',
      body: signalBody,
      answers: {
        200: { description: 'sent', json: successResponse },
        400: error('not a valid signal (INVALID_SIGNAL), or it has ended (PROCESS_NOT_RUNNING)'),
        404: NOT_FOUND,
      },
    },
    {
      method: 'post',
      path: processPath('/restart'),
      id: 'restartProcess',
      tag: 'processes',
      summary: 'Restart a managed process',
      answers: {
        200: { description: 'the new incarnation', json: processInfoResponse },
        400: error('it is not managed (NOT_MANAGED)'),
        404: NOT_FOUND,
      },
    },
    {
      method: 'post',
      path: '/api/v1/pty',
      id: 'createTerminal',
      tag: 'terminals',
      summary: 'Start a process in a terminal',
      body: ptyCreateBody,
      answers: {
        201: { description: 'the session, and the token that opens its WebSocket', json: ptyCreatedResponse },
        400: error('a malformed request (INVALID_REQUEST), or it could not start (SPAWN_FAILED)'),
        429: error('too many sessions (TOO_MANY_SESSIONS)'),
      },
    },
    {
      method: 'get',
      path: '/api/v1/pty',
      id: 'listTerminals',
      tag: 'terminals',
      summary: 'Every terminal session',
      answers: { 200: { description: 'the sessions (no tokens)', json: ptyListResponse } },
    },
    {
      method: 'get',
      path: pty(''),
      id: 'getTerminal',
      tag: 'terminals',
      summary: 'One terminal session',
      answers: {
        200: { description: 'the session', json: ptySessionResponse },
        404: error('no such session (SESSION_NOT_FOUND)'),
      },
    },
    {
      method: 'delete',
      path: pty(''),
      id: 'deleteTerminal',
      tag: 'terminals',
      summary: 'SIGHUP its group (SIGKILL 5 s later) and forget it',
      answers: { 204: { description: 'deleted' }, 404: error('no such session (SESSION_NOT_FOUND)') },
    },
    {
      method: 'post',
      path: pty('/resize'),
      id: 'resizeTerminal',
      tag: 'terminals',
      summary: 'Resize the terminal (its program gets SIGWINCH)',
      body: ptyResizeBody,
      answers: {
        204: { description: 'resized' },
        400: BAD_REQUEST,
        404: error('no such session (SESSION_NOT_FOUND)'),
      },
    },
    {
      method: 'get',
      path: pty('/ws'),
      id: 'terminalSocket',
      tag: 'terminals',
      summary: 'The terminal itself, over WebSocket',
      description:
        'Binary frames whose first byte is the opcode. Client to server: 0x00 + input bytes, ' +
        '0x01 + cols (u16 BE) + rows (u16 BE) to resize, 0x02 when ready for output. Server to ' +
        'client: 0x00 + output bytes (the scrollback first), 0x03 + exit code (i32 BE), then ' +
        'close 1000 `exit:<code>`. Opened with the session token (`?token=` or `X-PTY-Token`), or ' +
        "without one by the daemon's own token in a header.",
      security: [{ sessionToken: [] }, { sessionTokenHeader: [] }, { bearer: [] }, { accessToken: [] }],
      answers: {
        101: { description: 'switching to the WebSocket protocol' },
        403: error('a wrong token (INVALID_TOKEN)'),
        404: error('no such session (SESSION_NOT_FOUND)'),
        426: error('a plain GET without a WebSocket upgrade (UPGRADE_REQUIRED)'),
      },
    },
  ] as const satisfies readonly Operation[];
  const fileErrors = {
    400: error(
      'no path (INVALID_REQUEST), or a directory where a file belongs (IS_DIRECTORY, NOT_A_DIRECTORY)',
    ),
    403: error("the daemon's user may not (PERMISSION_DENIED)"),
    404: error('no such file (NOT_FOUND)'),
  };
  const files = [
    {
      method: 'get',
      path: '/api/v1/files',
      id: 'readFile',
      tag: 'files',
      summary: "A file's bytes, streamed",
      description:
        'A relative path resolves against the home directory; `Range: bytes=a-b` reads a part (206).',
      query: filesQuery,
      headers: [
        {
          name: 'Range',
          in: 'header',
          required: false,
          description: 'one range of bytes, such as `bytes=0-1023`',
          schema: { type: 'string' },
        },
      ],
      answers: {
        200: { description: 'the bytes', bytes: 'application/octet-stream' },
        206: { description: 'the bytes of the range asked for', bytes: 'application/octet-stream' },
        ...fileErrors,
        416: error('the range starts beyond the end of the file (RANGE_NOT_SATISFIABLE)'),
      },
    },
    {
      method: 'put',
      path: '/api/v1/files',
      id: 'writeFile',
      tag: 'files',
      summary: 'Replace a file with the body, streamed',
      description:
        'Parents are created. The bytes go to a temporary file beside it that is renamed over it at the end, ' +
        'so a reader never sees half a file and a failed upload leaves the old one whole.',
      query: filesQuery,
      body: { bytes: 'application/octet-stream', description: 'the new contents' },
      answers: {
        204: { description: 'written' },
        ...fileErrors,
        507: error('the disk is full (NO_SPACE)'),
      },
    },
    {
      method: 'delete',
      path: '/api/v1/files',
      id: 'deleteFile',
      tag: 'files',
      summary: 'Delete a file, a link or a whole tree',
      query: filesQuery,
      answers: { 204: { description: 'deleted' }, ...fileErrors },
    },
    {
      method: 'post',
      path: '/api/v1/ports/{port}/preview',
      id: 'createPreviewLink',
      tag: 'ports',
      summary: "A one-time link that opens the port's HTTP preview in a browser",
      description:
        'Previews are selected by Host: a request to `<port>-<anything>` goes to that port on the ' +
        "sandbox's loopback. They are private (the token in a header opens them) unless the port is " +
        'public (`--public-port`). The link carries a code that works once, within a minute: opening it ' +
        "swaps the code for an HttpOnly cookie that opens only that port's preview, and redirects to " +
        'the same address without the code.',
      answers: {
        200: { description: 'the link', json: previewLinkResponse },
        400: error('not a port (INVALID_REQUEST)'),
      },
    },
    {
      method: 'get',
      path: '/api/v1/files/list',
      id: 'listFiles',
      tag: 'files',
      summary: "A directory's entries",
      query: filesQuery,
      answers: { 200: { description: 'the entries', json: fileListResponse }, ...fileErrors },
    },
  ] as const satisfies readonly Operation[];
  const ports = [
    {
      method: 'get',
      path: '/api/v1/ports',
      id: 'listPorts',
      tag: 'ports',
      summary: 'The listening TCP ports, with the process holding each',
      description:
        "From /proc/net/tcp and tcp6 (LISTEN sockets) and the holders' descriptors. One entry per " +
        'address and port: a port on both 0.0.0.0 and :: is two.',
      answers: { 200: { description: 'the ports', json: portListResponse } },
    },
    {
      method: 'get',
      path: '/api/v1/ports/{port}/wait',
      id: 'waitForPort',
      tag: 'ports',
      summary: 'Wait until the port accepts a TCP connection on 127.0.0.1 or ::1',
      description:
        `Tries to connect every ${WAIT_INTERVAL_MS} ms (every ${SLOW_WAIT_INTERVAL_MS} ms after the first ` +
        `${SLOW_AFTER_MS / 1000} s; a connection made is closed at once) until one succeeds or ` +
        '`timeout_ms` has passed. The wait ends if the client goes away.',
      query: waitQuery,
      answers: {
        200: { description: 'the port accepted a connection', json: portReadyResponse },
        400: error('the port or the timeout is not valid (INVALID_REQUEST)'),
        408: error('no connection was accepted in time (REQUEST_TIMEOUT)'),
      },
    },
    {
      method: 'get',
      path: '/api/v1/tunnels/tcp',
      id: 'tcpTunnel',
      tag: 'tunnels',
      summary: "A TCP connection to a port of the sandbox's loopback, over WebSocket",
      description:
        'The daemon connects to 127.0.0.1:port (then [::1]:port) before it answers, so the handshake ' +
        'says whether anything listens. Binary frames carry the bytes verbatim, both ways; a text frame ' +
        "closes the tunnel (1002). The service's EOF closes the WebSocket (1000) after the bytes read " +
        "before it; the WebSocket's close ends the service's connection (no half-close). One WebSocket " +
        'per connection; pings are answered. A tunnel holds about 1 MiB at most: a reader that stops ' +
        'on either side stops the other. Client messages over 1 MiB close it (1009).',
      query: tunnelQuery,
      answers: {
        101: { description: 'connected to the service; switching to the WebSocket protocol' },
        400: error(
          'no port, a port that is not an integer from 1 to 65535, or no WebSocket upgrade (INVALID_REQUEST)',
        ),
        403: error('a daemon without a token, and a browser page of another origin (FORBIDDEN)'),
        426: error('a plain GET without a WebSocket upgrade (UPGRADE_REQUIRED)'),
        502: error('nothing accepted a connection on that port within 5 s (BAD_GATEWAY)'),
      },
    },
  ] as const satisfies readonly Operation[];
  return [
    ...main,
    ...files,
    ...ports,
    ...outputRoutes('stdout'),
    ...outputRoutes('stderr'),
    ...outputRoutes('output'),
  ];
}

function capitalize<Word extends string>(word: Word): Capitalize<Word> {
  return `${word[0]?.toUpperCase()}${word.slice(1)}` as Capitalize<Word>;
}
/** Reading and following one view of a process's output. */
function outputRoutes<View extends 'stdout' | 'stderr' | 'output'>(view: View) {
  const processPath = (path: string) => `/api/v1/processes/{ref}${path}`;
  const which = view === 'output' ? 'stdout and stderr lines in the order they were read' : `${view} lines`;
  return [
    {
      method: 'get',
      path: processPath(`/${view}`),
      id: `read${capitalize(view)}` as const,
      tag: 'output',
      summary: `The complete ${which} so far`,
      query: outputQuery,
      answers: {
        200: { description: 'a page of lines', json: outputPageResponse },
        400: BAD_REQUEST,
        404: NOT_FOUND,
      },
    },
    {
      method: 'get',
      path: processPath(`/${view}/follow`),
      id: `follow${capitalize(view)}` as const,
      tag: 'output',
      summary: `Follow the ${which}: the past, then live, until the end`,
      description:
        'Server-Sent Events: `event: output` with an `id:` per line, then `event: eof` once the ' +
        'process has ended and its output is drained. `Last-Event-ID` or `?after=` resumes after a line.',
      query: followQuery,
      headers: [
        {
          name: 'Last-Event-ID',
          in: 'header',
          required: false,
          description: 'resume after this line id (wins over `after`)',
          schema: { type: 'string', pattern: '^\\d+$' },
        },
      ],
      answers: {
        200: {
          description: 'the lines, as they come',
          events: { output: outputEventData, eof: eofEventData },
        },
        400: BAD_REQUEST,
        404: NOT_FOUND,
      },
    },
  ] as const satisfies readonly Operation[];
}

export type RouteId = ReturnType<typeof routeTable>[number]['id'];

/** The path parameters a route's template may hold. */
export const PATH_PARAMETERS: Record<string, JsonObject> = { ref: REF, id: SESSION, port: PORT };
