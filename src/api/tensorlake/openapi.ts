import { z } from 'zod';
import { version } from '../../version.ts';
import { followQuery, outputQuery } from './output.ts';
import { createBody as ptyCreateBody, resizeBody as ptyResizeBody } from './pty-routes.ts';
import {
  eofEventData,
  errorResponse,
  fileListResponse,
  healthResponse,
  infoResponse,
  outputEventData,
  outputPageResponse,
  processInfoResponse,
  processListResponse,
  ptyCreatedResponse,
  ptyListResponse,
  ptySessionResponse,
  runFrameData,
  successResponse,
  truncatedEventData,
} from './responses.ts';
import { filesQuery, runBody, signalBody, startBody } from './schemas.ts';
import { tunnelQuery } from './tunnel.ts';

// The OpenAPI 3.1 document of this dialect, generated from the zod schemas that validate its
// requests and type its responses: there is no second copy of any shape to keep in step.

type Schema = z.ZodType;
type JsonObject = Record<string, unknown>;

interface Answer {
  description: string;
  /** A JSON body of this shape; absent for no body. */
  json?: Schema;
  /** A text/event-stream: the shape of the `data:` of each kind of event (`message` when unnamed). */
  events?: Record<string, Schema>;
  /** Bytes, of this media type. */
  bytes?: string;
}

interface Operation {
  method: 'get' | 'post' | 'put' | 'delete';
  path: string;
  id: string;
  summary: string;
  description?: string;
  tag: string;
  query?: z.ZodObject;
  headers?: JsonObject[];
  body?: Schema | { bytes: string; description: string };
  answers: Record<number, Answer>;
  /** Needs no token (the health check). */
  open?: boolean;
  security?: JsonObject[];
}

const REF = {
  name: 'ref',
  in: 'path',
  required: true,
  description: 'a pid, or a process name',
  schema: { type: 'string' },
};
const SESSION = {
  name: 'id',
  in: 'path',
  required: true,
  description: 'a terminal session id',
  schema: { type: 'string' },
};

const error = (description: string): Answer => ({ description, json: errorResponse });
const NOT_FOUND = error('no such process (NOT_FOUND)');
const BAD_REQUEST = error('the request is malformed (INVALID_REQUEST)');
const UNAUTHORIZED = error('the daemon has a token, and the request does not carry it (UNAUTHORIZED)');

function operations(): Operation[] {
  const process = (path: string) => `/api/v1/processes/{ref}${path}`;
  const pty = (path: string) => `/api/v1/pty/{id}${path}`;
  const list: Operation[] = [
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
        'Setting `name` or `restart` makes it managed. `timeout` (seconds) SIGKILLs its group when it has passed.',
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
      path: process(''),
      id: 'getProcess',
      tag: 'processes',
      summary: 'One process',
      answers: { 200: { description: 'the process', json: processInfoResponse }, 404: NOT_FOUND },
    },
    {
      method: 'delete',
      path: process(''),
      id: 'killProcess',
      tag: 'processes',
      summary: 'SIGKILL its process group (also when it has ended)',
      answers: { 204: { description: 'killed' }, 404: NOT_FOUND },
    },
    {
      method: 'post',
      path: process('/stdin'),
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
      path: process('/stdin/close'),
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
      path: process('/signal'),
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
      path: process('/restart'),
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
  ];
  const fileErrors = {
    400: error(
      'no path (INVALID_REQUEST), or a directory where a file belongs (IS_DIRECTORY, NOT_A_DIRECTORY)',
    ),
    403: error("the daemon's user may not (PERMISSION_DENIED)"),
    404: error('no such file (NOT_FOUND)'),
  };
  list.push(
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
      method: 'get',
      path: '/api/v1/files/list',
      id: 'listFiles',
      tag: 'files',
      summary: "A directory's entries",
      query: filesQuery,
      answers: { 200: { description: 'the entries', json: fileListResponse }, ...fileErrors },
    },
  );
  for (const view of ['stdout', 'stderr', 'output'] as const) {
    const which = view === 'output' ? 'stdout and stderr lines in the order they were read' : `${view} lines`;
    list.push(
      {
        method: 'get',
        path: process(`/${view}`),
        id: `read${capitalize(view)}`,
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
        path: process(`/${view}/follow`),
        id: `follow${capitalize(view)}`,
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
    );
  }
  return list;
}

function capitalize(word: string): string {
  return `${word[0]?.toUpperCase()}${word.slice(1)}`;
}

const componentRef = (id: string) => `#/components/schemas/${id}`;

/** A schema as it appears in the document: a $ref to its component when it has an id. */
function schemaOf(schema: Schema, io: 'input' | 'output'): JsonObject {
  const id = z.globalRegistry.get(schema)?.id;
  if (id) return { $ref: componentRef(id) };
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonObject;
  return rest;
}

function queryParameters(query: z.ZodObject | undefined): JsonObject[] {
  if (!query) return [];
  return Object.entries(query.shape).map(([name, field]) => {
    const { description, ...schema } = schemaOf(field as Schema, 'input');
    return {
      name,
      in: 'query',
      required: !(field as Schema).safeParse(undefined).success,
      description,
      schema,
    };
  });
}

function requestBody(body: Operation['body']): JsonObject | undefined {
  if (body === undefined) return undefined;
  if ('bytes' in body && typeof body.bytes === 'string') {
    return { required: true, description: body.description, content: { [body.bytes]: {} } };
  }
  return { required: true, content: { 'application/json': { schema: schemaOf(body as Schema, 'input') } } };
}

function answer({ description, json, events, bytes }: Answer): JsonObject {
  if (json) return { description, content: { 'application/json': { schema: schemaOf(json, 'output') } } };
  if (events) {
    const shapes = Object.entries(events).map(([name, data]) => [name, schemaOf(data, 'output')]);
    return {
      description: `${description}. Each event's \`data:\` is JSON of the shape \`x-sse-events\` gives for its name.`,
      content: {
        'text/event-stream': { schema: { type: 'string' }, 'x-sse-events': Object.fromEntries(shapes) },
      },
    };
  }
  if (bytes) return { description, content: { [bytes]: {} } };
  return { description };
}

/** Every schema with an id, as components: request bodies as they may be sent, the rest as sent. */
function components(requestIds: Set<string>): JsonObject {
  const convert = (io: 'input' | 'output') =>
    z.toJSONSchema(z.globalRegistry, { io, uri: componentRef, unrepresentable: 'any' }).schemas;
  const input = convert('input');
  const output = convert('output');
  const schemas: JsonObject = {};
  for (const id of Object.keys(output).sort()) {
    const { $schema: _, $id: __, ...schema } = (requestIds.has(id) ? input[id] : output[id]) as JsonObject;
    schemas[id] = schema;
  }
  return schemas;
}

let cached: JsonObject | undefined;

/** The document (built once). */
export function openapiDocument(): JsonObject {
  if (cached) return cached;
  const paths: Record<string, Record<string, JsonObject>> = {};
  const requestIds = new Set<string>();
  for (const op of operations()) {
    if (op.body && !('bytes' in op.body && typeof op.body.bytes === 'string')) {
      const id = z.globalRegistry.get(op.body as Schema)?.id;
      if (id) requestIds.add(id);
    }
    const pathParameters = [
      op.path.includes('{ref}') ? REF : undefined,
      op.path.includes('{id}') ? SESSION : undefined,
    ];
    const parameters = [
      ...pathParameters.filter((p) => p !== undefined),
      ...queryParameters(op.query),
      ...(op.headers ?? []),
    ];
    const answers = op.open ? op.answers : { ...op.answers, 401: UNAUTHORIZED };
    const responses: JsonObject = {};
    for (const [status, spec] of Object.entries(answers)) responses[status] = answer(spec);
    paths[op.path] ??= {};
    (paths[op.path] as Record<string, JsonObject>)[op.method] = {
      operationId: op.id,
      tags: [op.tag],
      summary: op.summary,
      ...(op.description ? { description: op.description } : {}),
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(op.body ? { requestBody: requestBody(op.body) } : {}),
      responses,
      ...(op.open ? { security: [] } : op.security ? { security: op.security } : {}),
    };
  }
  cached = {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'sandboxd REST API',
      version,
      description:
        'Start and drive processes in a sandbox over HTTP: the REST + Server-Sent Events dialect under /api/v1. ' +
        'Errors are `{error, code}` with the HTTP status. Every `{ref}` is a pid or a process name.',
    },
    servers: [{ url: 'http://127.0.0.1:9501', description: 'the default address of `sandboxd serve`' }],
    security: [{ bearer: [] }, { accessToken: [] }, {}],
    tags: [
      { name: 'daemon', description: 'the daemon itself' },
      { name: 'processes', description: 'start, inspect, feed, signal and kill processes' },
      { name: 'output', description: 'captured output, read or followed' },
      { name: 'terminals', description: 'processes in a pseudo-terminal' },
      { name: 'files', description: 'files in the sandbox, read and written as streams' },
      { name: 'tunnels', description: "TCP connections to services on the sandbox's loopback" },
    ],
    paths,
    components: {
      schemas: components(requestIds),
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: "the daemon's token (when it has one)" },
        accessToken: {
          type: 'apiKey',
          in: 'header',
          name: 'X-Access-Token',
          description: "the daemon's token",
        },
        sessionToken: {
          type: 'apiKey',
          in: 'query',
          name: 'token',
          description: "a terminal session's token",
        },
        sessionTokenHeader: {
          type: 'apiKey',
          in: 'header',
          name: 'X-PTY-Token',
          description: "a terminal session's token",
        },
      },
    },
  };
  return cached;
}
