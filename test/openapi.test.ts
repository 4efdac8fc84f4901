import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import WebSocket from 'ws';
import type { SandboxClient } from '../src/client/index.ts';
import { readSse } from '../src/client/sse.ts';
import { sandboxClient } from './helpers/api.ts';
import { cli } from './helpers/cli.ts';
import { ROOT, useDaemon } from './helpers/daemon.ts';

type Json = Record<string, unknown>;

interface Operation {
  method: string;
  template: string;
  pattern: RegExp;
  responses: Record<string, Json>;
}

/**
 * Checks real answers against the document: the status must be one it lists for the
 * operation, and a JSON body (or every data frame of an event stream) must match its schema.
 */
class Conformance {
  readonly seen = new Set<string>();
  private readonly operations: Operation[] = [];
  private readonly ajv = new Ajv2020({ strict: true, strictTypes: false, allErrors: true });
  private readonly compiled = new Map<Json, ValidateFunction>();

  constructor(document: Json) {
    // Component references, pointed at one schema holding the components as $defs.
    const rewritten = JSON.parse(
      JSON.stringify(document).replaceAll(
        '"#/components/schemas/',
        '"https://sandboxd.test/components#/$defs/',
      ),
    ) as Json;
    const components = (rewritten.components as Json).schemas as Json;
    this.ajv.addSchema({ $id: 'https://sandboxd.test/components', $defs: components });
    for (const [template, methods] of Object.entries(
      rewritten.paths as Record<string, Record<string, Json>>,
    )) {
      const pattern = new RegExp(`^${template.replace(/\{\w+\}/g, '[^/]+')}$`);
      for (const [method, operation] of Object.entries(methods)) {
        this.operations.push({
          method,
          template,
          pattern,
          responses: operation.responses as Record<string, Json>,
        });
      }
    }
  }

  get all(): string[] {
    return this.operations.map((op) => `${op.method.toUpperCase()} ${op.template}`);
  }

  /** The documented answer for a request's status; fails the test when it is not documented. */
  private documented(method: string, url: string, status: number): { key: string; spec: Json } {
    const { pathname } = new URL(url);
    const op = this.operations.find((o) => o.method === method.toLowerCase() && o.pattern.test(pathname));
    assert.ok(op, `${method} ${pathname} is not in the document`);
    const spec = op.responses[String(status)];
    assert.ok(spec, `${method} ${op.template} answered ${status}, which the document does not list`);
    const key = `${method.toUpperCase()} ${op.template}`;
    this.seen.add(key);
    this.seen.add(`${key} ${status}`);
    return { key, spec };
  }

  private validate(schema: Json, value: unknown, what: string): void {
    let validate = this.compiled.get(schema);
    if (!validate) {
      validate = this.ajv.compile(schema);
      this.compiled.set(schema, validate);
    }
    assert.ok(validate(value), `${what}: ${this.ajv.errorsText(validate.errors)}\n${JSON.stringify(value)}`);
  }

  /** Reads the whole answer and checks it against the document; returns its JSON body, if any. */
  async check(response: Response, method: string): Promise<unknown> {
    const { key, spec } = this.documented(method, response.url, response.status);
    const what = `${key} ${response.status}`;
    const content = spec.content as Record<string, Json> | undefined;
    const type = response.headers.get('content-type')?.split(';')[0] ?? '';
    if (!content) {
      assert.equal(await response.text(), '', `${what} has a body the document does not describe`);
      return undefined;
    }
    const media = content[type];
    assert.ok(media, `${what} answered ${type}, which the document does not list`);
    if (type === 'application/json') {
      const body = await response.json();
      this.validate(media.schema as Json, body, what);
      return body;
    }
    if (type === 'text/event-stream') {
      let frames = 0;
      const shapes = media['x-sse-events'] as Record<string, Json>;
      for await (const message of readSse(response)) {
        const event = message.event ?? 'message';
        assert.ok(shapes[event], `${what}: an event '${event}' the document does not list`);
        this.validate(shapes[event], JSON.parse(message.data), `${what} ${event} event`);
        frames += 1;
      }
      assert.ok(frames > 0, `${what}: no events`);
    } else {
      await response.arrayBuffer();
    }
    return undefined;
  }

  /** A WebSocket handshake's answer: 101, or a refusal with a JSON body. */
  async checkUpgrade(url: string, headers: Record<string, string> = {}): Promise<number> {
    const socket = new WebSocket(url, { headers });
    const status = await Promise.race([
      once(socket, 'open').then(() => 101),
      once(socket, 'unexpected-response').then(async ([, response]) => {
        let text = '';
        for await (const chunk of response) text += chunk;
        const { spec } = this.documented('GET', url.replace(/^ws/, 'http'), response.statusCode);
        const schema = ((spec.content as Record<string, Json>)['application/json'] as Json).schema as Json;
        this.validate(schema, JSON.parse(text), `upgrade ${response.statusCode}`);
        return response.statusCode as number;
      }),
    ]);
    if (status === 101) this.documented('GET', url.replace(/^ws/, 'http'), 101);
    socket.terminate();
    return status;
  }
}

const TOKEN = 'openapi-token';
let client: SandboxClient;
let committed: Json;
const daemon = useDaemon({
  args: ['--token', TOKEN],
  afterStart: async () => {
    client = sandboxClient(daemon);
    committed = JSON.parse(await readFile(join(ROOT, 'openapi.json'), 'utf8')) as Json;
  },
});

describe('the OpenAPI document', () => {
  test('the committed openapi.json is what the daemon serves and what `sandboxd openapi` prints', async () => {
    const served = await client.call<Json>('GET', '/openapi.json');
    assert.deepEqual(served, committed);
    const printed = await cli(['openapi']);
    assert.equal(printed.code, 0);
    assert.equal(printed.stdout, await readFile(join(ROOT, 'openapi.json'), 'utf8'));
  });

  test('is a valid OpenAPI 3.1 document', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(committed));
    assert.deepEqual(result.errors ?? [], []);
    assert.equal(result.valid, true);
    assert.equal(validator.version, '3.1');
  });

  test("every operation's real answers, successes and errors, match it", async () => {
    const conformance = new Conformance(committed);
    const api = daemon.api;
    const call = async (
      method: string,
      path: string,
      body?: unknown,
      headers: Record<string, string> = {},
    ) => {
      const json = body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array);
      const response = await client.request(method, path, {
        body,
        headers: json ? headers : { 'content-type': 'application/octet-stream', ...headers },
      });
      return conformance.check(response, method);
    };

    await conformance.check(await fetch(`${api}/health`), 'GET');
    await conformance.check(await fetch(`${api}/processes`), 'GET'); // no token: 401
    await call('GET', '/info');
    await call('GET', '/openapi.json');

    // Processes: start one of each kind, and every way to get a start wrong.
    const { pid } = (await call('POST', '/processes', { command: 'cat', stdin_mode: 'pipe' })) as {
      pid: number;
    };
    await call('POST', '/processes', { command: 'sleep', args: ['1011.5'], name: 'openapi-managed' });
    await call('POST', '/processes', { command: 'sleep', args: ['1'], name: 'openapi-managed' }); // 409
    await call('POST', '/processes', { args: [] }); // 400 INVALID_REQUEST
    await call('POST', '/processes', { command: 'no-such-command-1011' }); // 400 SPAWN_FAILED
    await call('POST', '/processes', `{"command":"${'x'.repeat(1024 * 1024)}"}`); // 413
    await call('POST', '/processes', { command: 'sleep', args: ['5'], timeout: 0.05 });
    await call('GET', '/processes');
    await call('GET', `/processes/${pid}`);
    await call('GET', '/processes/openapi-managed');
    await call('GET', '/processes/999999999'); // 404

    await call('POST', `/processes/${pid}/stdin`, 'one\ntwo\n');
    await call('POST', '/processes/openapi-managed/stdin', 'x'); // 400: not a pipe
    await call('POST', '/processes/999999999/stdin', 'x'); // 404
    await call('POST', `/processes/${pid}/stdin/close`);
    await call('POST', '/processes/openapi-managed/stdin/close'); // 400
    await client.follow(pid).next();
    for (const view of ['stdout', 'stderr', 'output']) {
      await call('GET', `/processes/${pid}/${view}?after=0&limit=10`);
      await call('GET', `/processes/${pid}/${view}?after=x`); // 400
      await call('GET', `/processes/999999999/${view}`); // 404
    }
    // Every follow view, to its end (stderr has no lines of cat's: a process that writes there).
    const both = await client.start({ command: 'sh', args: ['-c', 'echo out; echo err >&2'] });
    for (const view of ['stdout', 'stderr', 'output']) {
      await call('GET', `/processes/${both.pid}/${view}/follow`);
      await call('GET', `/processes/${both.pid}/${view}/follow`, undefined, { 'last-event-id': 'x' }); // 400
      await call('GET', `/processes/999999999/${view}/follow`); // 404
    }

    await call('GET', `/processes/${both.pid}/wait?until=exited`);
    await call('GET', '/processes/openapi-managed/wait?until=running&timeout_ms=1000');
    await call('GET', '/processes/openapi-managed/wait?until=exited&timeout_ms=0'); // 408
    await call('GET', '/processes/openapi-managed/wait?until=healthy'); // 400: no health check
    await call('GET', '/processes/999999999/wait'); // 404
    await call('POST', '/processes/openapi-managed/signal', { signal: 999 }); // 400
    await call('POST', '/processes/999999999/signal', { signal: 15 }); // 404
    await call('POST', '/processes/openapi-managed/restart');
    await call('POST', `/processes/${pid}/restart`); // 400 NOT_MANAGED
    await call('POST', '/processes/999999999/restart'); // 404
    await call('POST', '/processes/openapi-managed/signal', { signal: 15 });
    await call('DELETE', '/processes/openapi-managed');
    await call('DELETE', '/processes/999999999'); // 404

    // Run-and-wait: an exit, a timeout, a command that cannot start, a malformed request.
    await call('POST', '/processes/run', { command: 'sh', args: ['-c', 'echo a; echo b >&2; exit 3'] });
    await call('POST', '/processes/run', { command: 'sleep', args: ['5'], timeout: 0.05 });
    await call('POST', '/processes/run', { command: 'no-such-command-1012' });
    await call('POST', '/processes/run', { command: 7 }); // 400

    // Terminals.
    const { session_id: id } = (await call('POST', '/pty', { command: 'sh', rows: 10, cols: 40 })) as Json;
    await call('POST', '/pty', { rows: 10 }); // 400
    await call('GET', '/pty');
    await call('GET', `/pty/${id}`);
    await call('GET', '/pty/no-such-session'); // 404
    await call('POST', `/pty/${id}/resize`, { rows: 20, cols: 50 });
    await call('POST', `/pty/${id}/resize`, { rows: 'many' }); // 400
    await call('POST', '/pty/no-such-session/resize', { rows: 1, cols: 1 }); // 404
    await call('GET', `/pty/${id}/ws`); // 426
    const ws = `${daemon.url.replace('http', 'ws')}/api/v1/pty`;
    assert.equal(await conformance.checkUpgrade(`${ws}/${id}/ws`, { authorization: `Bearer ${TOKEN}` }), 101);
    assert.equal(await conformance.checkUpgrade(`${ws}/${id}/ws?token=wrong`), 403);
    assert.equal(await conformance.checkUpgrade(`${ws}/no-such-session/ws?token=x`), 404);
    await call('DELETE', `/pty/${id}`);

    // Tunnels: connected, a bad port, no token, nothing listening, no upgrade.
    const tunnel = `${daemon.url.replace('http', 'ws')}/api/v1/tunnels/tcp`;
    const bearer = { authorization: `Bearer ${TOKEN}` };
    const listening = createServer((socket) => socket.destroy());
    listening.listen(0, '127.0.0.1');
    await once(listening, 'listening');
    const { port } = listening.address() as AddressInfo;
    assert.equal(await conformance.checkUpgrade(`${tunnel}?port=${port}`, bearer), 101);
    assert.equal(await conformance.checkUpgrade(`${tunnel}?port=0`, bearer), 400);
    assert.equal(await conformance.checkUpgrade(`${tunnel}?port=${port}`), 401);
    listening.close();
    await once(listening, 'close');
    assert.equal(await conformance.checkUpgrade(`${tunnel}?port=${port}`, bearer), 502);
    await call('GET', `/tunnels/tcp?port=${port}`); // 426
    await call('DELETE', '/pty/no-such-session'); // 404
    await client.kill(pid);
    await client.kill(both.pid);

    // Files: write, read whole and in part, list, delete, and each way to get them wrong.
    const dir = await mkdtemp(join(tmpdir(), 'sandboxd-openapi-'));
    const file = encodeURIComponent(join(dir, 'sub', 'file.txt'));
    await call('PUT', `/files?path=${file}`, new TextEncoder().encode('0123456789'));
    await call('PUT', `/files?path=${encodeURIComponent(join(dir, 'sub'))}`, new Uint8Array(1)); // 400
    await call('GET', `/files?path=${file}`);
    await call('GET', `/files?path=${file}`, undefined, { range: 'bytes=2-5' }); // 206
    await call('GET', `/files?path=${file}`, undefined, { range: 'bytes=100-200' }); // 416
    await call('GET', `/files?path=${encodeURIComponent(join(dir, 'missing'))}`); // 404
    await call('GET', '/files'); // 400: no path
    await call('GET', `/files/list?path=${encodeURIComponent(dir)}`);
    await call('GET', `/files/list?path=${file}`); // 400 NOT_A_DIRECTORY
    await call('DELETE', `/files?path=${file}`);
    await call('DELETE', `/files?path=${file}`); // 404
    await rm(dir, { recursive: true, force: true });

    // Ports: the list, a wait on the daemon's own port, on a closed one (408) and on no port (400).
    await call('GET', '/ports');
    await call('GET', `/ports/${new URL(daemon.url).port}/wait?timeout_ms=1000`);
    const closed = createServer().listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const closedPort = (closed.address() as AddressInfo).port;
    closed.close();
    await call('GET', `/ports/${closedPort}/wait?timeout_ms=0`); // 408
    await call('GET', '/ports/0/wait'); // 400
    // Ports: a preview link, and a port that is none.
    await call('POST', '/ports/3000/preview');
    await call('POST', '/ports/0/preview'); // 400

    const missed = conformance.all.filter((operation) => !conformance.seen.has(operation));
    assert.deepEqual(missed, [], 'operations this test never called');
  });
});
