import './zod-setup.ts';
import * as z from 'zod';
import { version } from '../../version.ts';
import {
  type Answer,
  type JsonObject,
  type Operation,
  PATH_PARAMETERS,
  routeTable,
  type Schema,
  UNAUTHORIZED,
} from './routes.ts';

// The OpenAPI 3.1 document of this dialect, generated from its route table and the zod schemas
// that validate its requests and type its responses: there is no second copy of any shape.

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
  const table: readonly Operation[] = routeTable();
  for (const op of table) {
    if (op.body && !('bytes' in op.body && typeof op.body.bytes === 'string')) {
      const id = z.globalRegistry.get(op.body as Schema)?.id;
      if (id) requestIds.add(id);
    }
    const pathParameters = [...op.path.matchAll(/\{(\w+)\}/g)].map(
      ([, name]) => PATH_PARAMETERS[name as string],
    );
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
      { name: 'ports', description: "the sandbox's listening ports, and HTTP previews of them" },
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
