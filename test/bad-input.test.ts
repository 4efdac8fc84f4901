import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type ProcessInfo, restClient } from './helpers/api.ts';
import { isAlive, useDaemon } from './helpers/daemon.ts';
import { readSse } from './helpers/sse.ts';

const MiB = 1024 * 1024;
/** Larger than any pid Linux hands out (pid_max is at most 2^22). */
const UNUSED_PID = 2_147_483_647;

let client: ReturnType<typeof restClient>;
const daemon = useDaemon({
  afterStart: () => {
    client = restClient(daemon);
  },
});

interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
}

interface ErrorBody {
  error: string;
  code: string;
}

type Body = string | Uint8Array<ArrayBuffer>;

/** One HTTP request to the dialect; the body is sent as given (strings are not JSON-encoded). */
async function send(
  method: string,
  path: string,
  body?: Body,
  contentType = 'application/json',
): Promise<RawResponse> {
  const response = await fetch(`${daemon.api}${path}`, {
    method,
    headers: { ...daemon.headers, ...(body === undefined ? {} : { 'content-type': contentType }) },
    body,
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

const sendJson = (method: string, path: string, body: unknown) => send(method, path, JSON.stringify(body));

const writeStdin = (pid: number, body: Body) =>
  send('POST', `/processes/${pid}/stdin`, body, 'application/octet-stream');

/**
 * Asserts the dialect's error shape: the status, `{error, code}` with this code, and a
 * non-empty message that mentions every given word. Returns the message.
 */
function assertError(response: RawResponse, status: number, code: string, mentions: string[] = []): string {
  const context = `${response.status} ${response.text}`;
  assert.equal(response.status, status, context);
  const body: unknown = JSON.parse(response.text);
  assert.ok(typeof body === 'object' && body !== null && !Array.isArray(body), context);
  const { error, code: actualCode } = body as Partial<ErrorBody>;
  assert.equal(actualCode, code, context);
  assert.equal(typeof error, 'string', context);
  assert.notEqual(error, '', context);
  for (const word of mentions)
    assert.ok(error?.includes(word), `message should mention '${word}': ${context}`);
  return error as string;
}

async function listProcesses(): Promise<ProcessInfo[]> {
  const response = await send('GET', '/processes');
  assert.equal(response.status, 200);
  return (JSON.parse(response.text) as { processes: ProcessInfo[] }).processes;
}

/** Starts a process through the API, hands it to `use`, and kills it afterwards whatever happened. */
async function withProcess(
  body: Record<string, unknown>,
  use: (info: ProcessInfo) => Promise<void>,
): Promise<void> {
  const started = await client.start(body);
  try {
    await use(started);
  } finally {
    await client.kill(started.pid);
  }
}

interface RawHttpResponse {
  status: number;
  headers: Map<string, string>;
  text: string;
}

/**
 * One TCP connection to the daemon, spoken to in raw HTTP/1.1: the only way to send a chunked
 * body of a chosen size and then to reuse exactly that connection. fetch pools connections.
 */
class RawConnection {
  private received = Buffer.alloc(0);
  private ended = false;
  private wake: (() => void) | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.wake?.();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake?.();
    });
    // A reset shows up as 'close' too; the error itself is no failure of the test.
    socket.on('error', () => {});
  }

  static async open(url: string): Promise<RawConnection> {
    const { hostname, port } = new URL(url);
    const socket = connect(Number(port), hostname);
    await once(socket, 'connect');
    return new RawConnection(socket);
  }

  /**
   * Starts a request with `Transfer-Encoding: chunked` and sends `prefix`, then `size` bytes of
   * `x`; more may follow (`sendFiller`) before `endChunked`.
   */
  startChunked(method: string, path: string, contentType: string, prefix: string, size: number): void {
    this.writeHead(method, path, [`content-type: ${contentType}`, 'transfer-encoding: chunked']);
    if (prefix !== '') this.writeChunk(Buffer.from(prefix));
    this.sendFiller(size);
  }

  sendFiller(size: number): void {
    const chunk = Buffer.alloc(64 * 1024, 'x');
    for (let sent = 0; sent < size; sent += chunk.length) {
      this.writeChunk(chunk.subarray(0, Math.min(chunk.length, size - sent)));
    }
  }

  endChunked(): void {
    this.socket.write('0\r\n\r\n');
  }

  /** Writes a request with a Content-Length body. */
  sendWithLength(method: string, path: string, contentType: string, body: string): void {
    this.writeHead(method, path, [
      `content-type: ${contentType}`,
      `content-length: ${Buffer.byteLength(body)}`,
    ]);
    this.socket.write(body);
  }

  sendGet(path: string): void {
    this.writeHead('GET', path, []);
  }

  /**
   * The next complete response (it must carry a Content-Length), or 'closed' when the server
   * closes the connection first. Waits on socket events, at most `ms`.
   */
  async nextResponse(ms: number): Promise<RawHttpResponse | 'closed'> {
    const deadline = Date.now() + ms;
    for (;;) {
      const response = this.takeResponse();
      if (response) return response;
      if (this.ended) return 'closed';
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no response and no close within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private writeHead(method: string, path: string, extra: string[]): void {
    const head = [`${method} ${path} HTTP/1.1`, 'host: sandboxd.local', ...extra];
    for (const [name, value] of Object.entries(daemon.headers)) head.push(`${name}: ${value}`);
    this.socket.write(`${head.join('\r\n')}\r\n\r\n`);
  }

  private writeChunk(data: Buffer): void {
    this.socket.write(`${data.length.toString(16)}\r\n`);
    this.socket.write(data);
    this.socket.write('\r\n');
  }

  private takeResponse(): RawHttpResponse | undefined {
    const headEnd = this.received.indexOf('\r\n\r\n');
    if (headEnd === -1) return undefined;
    const [statusLine = '', ...headerLines] = this.received
      .subarray(0, headEnd)
      .toString('latin1')
      .split('\r\n');
    const headers = new Map<string, string>();
    for (const line of headerLines) {
      const colon = line.indexOf(':');
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const length = Number(headers.get('content-length') ?? 0);
    const bodyStart = headEnd + 4;
    if (this.received.length < bodyStart + length) return undefined;
    const text = this.received.subarray(bodyStart, bodyStart + length).toString('utf8');
    this.received = this.received.subarray(bodyStart + length);
    return { status: Number(statusLine.split(' ')[1]), headers, text };
  }
}

const JSON_PREFIX = '{"command":"true","padding":"';

/** Asserts that the next thing on the connection is a response with this status. */
async function assertNextAnswer(connection: RawConnection, status: number): Promise<void> {
  const answer = await connection.nextResponse(5000);
  assert.notEqual(answer, 'closed', `expected ${status}, the daemon closed the connection`);
  assert.equal(answer === 'closed' ? 0 : answer.status, status);
}

/** Sends a chunked body of `size` bytes on a fresh connection; returns the connection and the answer. */
async function sendChunked(
  path: string,
  contentType: string,
  prefix: string,
  size: number,
): Promise<{ connection: RawConnection; response: RawResponse }> {
  const connection = await RawConnection.open(daemon.url);
  connection.startChunked('POST', `/api/v1${path}`, contentType, prefix, size);
  connection.endChunked();
  const answer = await connection.nextResponse(10_000);
  if (answer === 'closed') {
    connection.close();
    throw new Error(`the daemon closed the connection instead of answering POST ${path}`);
  }
  return {
    connection,
    response: { status: answer.status, headers: new Headers([...answer.headers]), text: answer.text },
  };
}

describe('POST /api/v1/processes with a malformed or ill-typed body', () => {
  test('malformed JSON is 400 INVALID_REQUEST', async () => {
    const response = await send('POST', '/processes', '{"command": "echo", "args": [');
    assertError(response, 400, 'INVALID_REQUEST', ['JSON']);
  });

  for (const body of ['null', '[]', '"echo"', '42']) {
    test(`a JSON body that is not an object (${body}) is 400 INVALID_REQUEST`, async () => {
      assertError(await send('POST', '/processes', body), 400, 'INVALID_REQUEST');
    });
  }

  test('a missing command is 400 INVALID_REQUEST naming the field', async () => {
    const response = await sendJson('POST', '/processes', { args: ['hello'] });
    assertError(response, 400, 'INVALID_REQUEST', ['command']);
  });

  test('an empty body is 400 INVALID_REQUEST naming the missing command', async () => {
    assertError(await send('POST', '/processes', ''), 400, 'INVALID_REQUEST', ['command']);
  });

  const wrongTypes: [string, Record<string, unknown>, string][] = [
    ['command is a number', { command: 42 }, 'command'],
    ['command is empty', { command: '' }, 'command'],
    ['args is a string, not an array', { command: 'echo', args: 'a b' }, 'args'],
    ['args holds numbers', { command: 'echo', args: [1, 2] }, 'args'],
    ['env is an array', { command: 'env', env: ['A=1'] }, 'env'],
    ['env holds a number', { command: 'env', env: { A: 1 } }, 'env'],
    ['working_dir is a number', { command: 'pwd', working_dir: 5 }, 'working_dir'],
    ['stdin_mode is "bogus"', { command: 'cat', stdin_mode: 'bogus' }, 'stdin_mode'],
    ['stdout_mode is "bogus"', { command: 'echo', stdout_mode: 'bogus' }, 'stdout_mode'],
    ['stderr_mode is "file"', { command: 'echo', stderr_mode: 'file' }, 'stderr_mode'],
    ['name is a number', { command: 'echo', name: 7 }, 'name'],
    ['restart.policy is unknown', { command: 'echo', restart: { policy: 'sometimes' } }, 'restart'],
  ];
  for (const [what, body, field] of wrongTypes) {
    test(`400 INVALID_REQUEST naming the field when ${what}`, async () => {
      assertError(await sendJson('POST', '/processes', body), 400, 'INVALID_REQUEST', [field]);
    });
  }

  for (const name of ['12345', 'a/b']) {
    test(`a name that is all digits or holds '/' (${name}) is 400 INVALID_REQUEST`, async () => {
      const response = await sendJson('POST', '/processes', { command: 'true', name });
      assertError(response, 400, 'INVALID_REQUEST', ['name']);
    });
  }

  const unexecutable: [string, Record<string, unknown>, string][] = [
    ['a NUL byte in command', { command: 'ec\u0000ho' }, 'command'],
    ['a NUL byte in args', { command: 'echo', args: ['a\u0000b'] }, 'args'],
    ['a NUL byte in an env value', { command: 'env', env: { A: 'a\u0000b' } }, 'env'],
    ["'=' in an env name", { command: 'env', env: { 'A=B': 'c' } }, 'env'],
  ];
  for (const [what, body, field] of unexecutable) {
    test(`${what} (which exec cannot carry) is 400 INVALID_REQUEST, not a 500`, async () => {
      assertError(await sendJson('POST', '/processes', body), 400, 'INVALID_REQUEST', [field]);
    });
  }
});

describe('a pid or name the daemon does not know is 404 NOT_FOUND on every process route', () => {
  const routes: [string, string, Body | undefined][] = [
    ['GET', '', undefined],
    ['DELETE', '', undefined],
    ['POST', '/signal', JSON.stringify({ signal: 15 })],
    ['POST', '/stdin', 'hello\n'],
    ['POST', '/stdin/close', undefined],
    ['POST', '/restart', undefined],
    ['GET', '/stdout', undefined],
    ['GET', '/stderr', undefined],
    ['GET', '/output', undefined],
    ['GET', '/stdout/follow', undefined],
    ['GET', '/stderr/follow', undefined],
    ['GET', '/output/follow', undefined],
  ];
  for (const ref of [String(UNUSED_PID), 'no-such-name']) {
    for (const [method, suffix, body] of routes) {
      test(`${method} /processes/${ref}${suffix}`, async () => {
        assertError(await send(method, `/processes/${ref}${suffix}`, body), 404, 'NOT_FOUND');
      });
    }
  }

  describe('a live OS process the daemon did not start', () => {
    let stranger: ChildProcess;
    before(async () => {
      stranger = spawn('sleep', ['30'], { stdio: 'ignore' });
      await once(stranger, 'spawn');
    });
    after(async () => {
      if (stranger.exitCode === null && stranger.signalCode === null) {
        stranger.kill('SIGKILL');
        await once(stranger, 'exit');
      }
    });

    test('cannot be killed or signalled through the API: 404 and it keeps running', async () => {
      const pid = stranger.pid as number;
      assertError(await send('DELETE', `/processes/${pid}`), 404, 'NOT_FOUND');
      assertError(await sendJson('POST', `/processes/${pid}/signal`, { signal: 9 }), 404, 'NOT_FOUND');
      assert.equal(isAlive(pid), true);
      assert.equal(stranger.exitCode, null);
    });
  });
});

describe('signals', () => {
  for (const signal of [0, 999, -1, 'TERM', 65, 1.5, null]) {
    test(`signal ${JSON.stringify(signal)} is 400 INVALID_SIGNAL and the process keeps running`, async () => {
      await withProcess({ command: 'sleep', args: ['30'] }, async ({ pid }) => {
        const response = await sendJson('POST', `/processes/${pid}/signal`, { signal });
        assertError(response, 400, 'INVALID_SIGNAL');
        const info = await client.get(pid);
        assert.equal(info.status, 'running');
      });
    });
  }

  test('a signal request with malformed JSON or a non-boolean group is 400 INVALID_REQUEST', async () => {
    await withProcess({ command: 'sleep', args: ['30'] }, async ({ pid }) => {
      assertError(await send('POST', `/processes/${pid}/signal`, '{"signal":'), 400, 'INVALID_REQUEST');
      const groupIsText = await sendJson('POST', `/processes/${pid}/signal`, { signal: 15, group: 'yes' });
      assertError(groupIsText, 400, 'INVALID_REQUEST', ['group']);
      assert.equal((await client.get(pid)).status, 'running');
    });
  });

  test('a signal to a process that has ended is 400 PROCESS_NOT_RUNNING', async () => {
    await withProcess({ command: 'true' }, async ({ pid }) => {
      const ended = await client.waitForEnd(pid);
      assert.equal(ended.status, 'exited');
      const response = await sendJson('POST', `/processes/${pid}/signal`, { signal: 15 });
      assertError(response, 400, 'PROCESS_NOT_RUNNING');
    });
  });
});

describe('stdin', () => {
  test('a write to a process started with the default (closed) stdin is 400 STDIN_NOT_WRITABLE', async () => {
    await withProcess({ command: 'sleep', args: ['30'] }, async ({ pid, stdin_writable }) => {
      assert.equal(stdin_writable, false);
      assertError(await writeStdin(pid, 'hello\n'), 400, 'STDIN_NOT_WRITABLE');
    });
  });

  test('a write after stdin/close is 400 STDIN_NOT_WRITABLE while the process still runs', async () => {
    // sleep never reads stdin, so EOF does not end it: the refusal is due to the close alone.
    await withProcess({ command: 'sleep', args: ['30'], stdin_mode: 'pipe' }, async ({ pid }) => {
      assert.equal((await writeStdin(pid, 'first\n')).status, 204);
      assert.equal((await send('POST', `/processes/${pid}/stdin/close`)).status, 204);
      assertError(await writeStdin(pid, 'second\n'), 400, 'STDIN_NOT_WRITABLE');
      const info = await client.get(pid);
      assert.deepEqual([info.status, info.stdin_writable], ['running', false]);
    });
  });

  test('stdin/close on a process without a stdin pipe is 400 STDIN_NOT_WRITABLE', async () => {
    await withProcess({ command: 'sleep', args: ['30'] }, async ({ pid }) => {
      assertError(await send('POST', `/processes/${pid}/stdin/close`), 400, 'STDIN_NOT_WRITABLE');
    });
  });

  test('a write to a piped process that has exited is 400 STDIN_NOT_WRITABLE', async () => {
    await withProcess({ command: 'true', stdin_mode: 'pipe' }, async ({ pid }) => {
      await client.waitForEnd(pid);
      assertError(await writeStdin(pid, 'late\n'), 400, 'STDIN_NOT_WRITABLE');
    });
  });

  test('a stdin body over 16 MiB is 413 PAYLOAD_TOO_LARGE and none of it reaches the process', async () => {
    await withProcess({ command: 'wc', args: ['-c'], stdin_mode: 'pipe' }, async ({ pid }) => {
      const tooBig = new Uint8Array(16 * MiB + 1).fill('y'.charCodeAt(0));
      assertError(await writeStdin(pid, tooBig), 413, 'PAYLOAD_TOO_LARGE');
      const chunked = await sendChunked(
        `/processes/${pid}/stdin`,
        'application/octet-stream',
        '',
        16 * MiB + 1,
      );
      chunked.connection.close();
      assertError(chunked.response, 413, 'PAYLOAD_TOO_LARGE');
      // The pipe is still usable, and only these three bytes were ever written to it.
      assert.equal((await writeStdin(pid, 'abc')).status, 204);
      assert.equal((await send('POST', `/processes/${pid}/stdin/close`)).status, 204);
      const { lines } = await client.follow(pid);
      assert.deepEqual(
        lines.map((l) => l.line.trim()),
        ['3'],
      );
    });
  });
});

describe('spawn failures', () => {
  test('a command that does not exist is 400 SPAWN_FAILED and leaves no process behind', async () => {
    const command = 'sandboxd-no-such-command';
    const response = await sendJson('POST', '/processes', { command });
    assertError(response, 400, 'SPAWN_FAILED', [command]);
    assert.equal((await listProcesses()).filter((p) => p.command === command).length, 0);
  });

  test('a command that is not executable (a directory) is 400 SPAWN_FAILED', async () => {
    assertError(await sendJson('POST', '/processes', { command: '/tmp' }), 400, 'SPAWN_FAILED', ['/tmp']);
  });

  test('a working_dir that does not exist is 400 SPAWN_FAILED naming the path', async () => {
    const workingDir = '/sandboxd/no/such/dir';
    const response = await sendJson('POST', '/processes', { command: 'pwd', working_dir: workingDir });
    assertError(response, 400, 'SPAWN_FAILED', [workingDir]);
  });
});

describe('body size limits', () => {
  test('a JSON body over 1 MiB is 413 PAYLOAD_TOO_LARGE', async () => {
    const body = JSON.stringify({ command: 'true', padding: 'x'.repeat(MiB) });
    assertError(await send('POST', '/processes', body), 413, 'PAYLOAD_TOO_LARGE');
  });

  test('a chunked JSON body over 1 MiB (no Content-Length) is 413 PAYLOAD_TOO_LARGE', async () => {
    const { connection, response } = await sendChunked(
      '/processes',
      'application/json',
      JSON_PREFIX,
      MiB + 1,
    );
    connection.close();
    assertError(response, 413, 'PAYLOAD_TOO_LARGE');
  });

  test('after a 413 for a body with Content-Length, the same connection answers the next request', async () => {
    const connection = await RawConnection.open(daemon.url);
    try {
      const body = JSON.stringify({ command: 'true', padding: 'x'.repeat(MiB) });
      connection.sendWithLength('POST', '/api/v1/processes', 'application/json', body);
      await assertNextAnswer(connection, 413);
      connection.sendGet('/api/v1/health');
      await assertNextAnswer(connection, 200);
    } finally {
      connection.close();
    }
  });

  test('a client that sends a whole oversized body and its next request in one go reads both answers', async () => {
    // The daemon refuses at 1 MiB while the rest is still coming: it must read that rest rather
    // than close on it, or the reset the kernel sends can wipe the 413 before the client reads it.
    for (let round = 0; round < 5; round++) {
      const connection = await RawConnection.open(daemon.url);
      try {
        connection.startChunked('POST', '/api/v1/processes', 'application/json', JSON_PREFIX, 8 * MiB);
        connection.endChunked();
        connection.sendGet('/api/v1/health');
        await assertNextAnswer(connection, 413);
        await assertNextAnswer(connection, 200);
      } finally {
        connection.close();
      }
    }
  });

  test('after an early 413 for a chunked body, the connection answers the next request', async () => {
    const connection = await RawConnection.open(daemon.url);
    try {
      connection.startChunked('POST', '/api/v1/processes', 'application/json', JSON_PREFIX, MiB + 1);
      await assertNextAnswer(connection, 413);
      // The client finishes the body it had started, as HTTP/1.1 allows, and asks again.
      connection.sendFiller(64 * 1024);
      connection.endChunked();
      connection.sendGet('/api/v1/health');
      await assertNextAnswer(connection, 200);
    } finally {
      connection.close();
    }
  });

  test('a JSON body just under 1 MiB is accepted (unknown fields are ignored)', async () => {
    const envelope = JSON.stringify({ command: 'true', padding: '' });
    const body = JSON.stringify({ command: 'true', padding: 'x'.repeat(MiB - envelope.length - 16) });
    const response = await send('POST', '/processes', body);
    assert.equal(response.status, 201, response.text);
    const { pid } = JSON.parse(response.text) as ProcessInfo;
    await client.kill(pid);
  });
});

describe('routing', () => {
  for (const path of ['/api/v1/nope', '/api/v1/processes/1/nope', '/nope']) {
    test(`an unknown route (${path}) is 404 NOT_FOUND`, async () => {
      const response = await fetch(`${daemon.url}${path}`, { headers: daemon.headers });
      assertError(
        { status: response.status, headers: response.headers, text: await response.text() },
        404,
        'NOT_FOUND',
      );
    });
  }

  test('PUT /api/v1/processes is 405 METHOD_NOT_ALLOWED with an Allow header', async () => {
    const response = await sendJson('PUT', '/processes', { command: 'true' });
    assertError(response, 405, 'METHOD_NOT_ALLOWED');
    const allowed = (response.headers.get('allow') ?? '').split(/,\s*/).sort();
    assert.deepEqual(allowed, ['GET', 'POST']);
  });

  test('DELETE /api/v1/health is 405 METHOD_NOT_ALLOWED', async () => {
    assertError(await send('DELETE', '/health'), 405, 'METHOD_NOT_ALLOWED');
  });
});

describe('names', () => {
  test('a name held by a running process is 409 NAME_TAKEN and starts nothing', async () => {
    await withProcess({ command: 'sleep', args: ['30'], name: 'bad-input-holder' }, async ({ pid }) => {
      const response = await sendJson('POST', '/processes', {
        command: 'sleep',
        args: ['31'],
        name: 'bad-input-holder',
      });
      assertError(response, 409, 'NAME_TAKEN', ['bad-input-holder']);
      assert.equal((await client.get('bad-input-holder')).pid, pid);
      const holders = (await listProcesses()).filter((p) => p.name === 'bad-input-holder');
      assert.deepEqual(
        holders.map((p) => p.pid),
        [pid],
      );
    });
  });
});

interface RunFrame {
  pid?: number;
  line?: string;
  stream?: string;
  exit_code?: number;
  signal?: number;
  error?: string;
}

/** POSTs to /processes/run and reads the SSE response to its end. */
async function run(body: unknown): Promise<{ contentType: string | null; frames: RunFrame[] }> {
  const response = await fetch(`${daemon.api}/processes/run`, {
    method: 'POST',
    headers: { ...daemon.headers, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(response.status, 200, `run answered ${response.status}`);
  const frames: RunFrame[] = [];
  for await (const message of readSse(response)) frames.push(JSON.parse(message.data) as RunFrame);
  return { contentType: response.headers.get('content-type'), frames };
}

const isTerminal = (frame: RunFrame) =>
  frame.exit_code !== undefined || frame.signal !== undefined || frame.error !== undefined;

describe('POST /api/v1/processes/run', () => {
  test('a command that does not exist is 200 SSE ending in one {error, exit_code: 127} frame', async () => {
    const { contentType, frames } = await run({ command: 'sandboxd-no-such-command' });
    assert.match(contentType ?? '', /^text\/event-stream/);
    const last = frames.at(-1);
    assert.ok(last, 'the stream must not be empty');
    assert.equal(last.exit_code, 127, JSON.stringify(frames));
    assert.equal(typeof last.error, 'string');
    assert.notEqual(last.error, '');
    assert.equal(frames.filter(isTerminal).length, 1, JSON.stringify(frames));
  });

  test('a working_dir that does not exist ends in an {error, exit_code: 127} frame naming it', async () => {
    const { frames } = await run({ command: 'pwd', working_dir: '/sandboxd/no/such/dir' });
    const last = frames.at(-1);
    assert.equal(last?.exit_code, 127, JSON.stringify(frames));
    assert.ok(last?.error?.includes('/sandboxd/no/such/dir'), JSON.stringify(frames));
  });

  test('a body without command is 400 INVALID_REQUEST', async () => {
    assertError(await sendJson('POST', '/processes/run', { args: ['x'] }), 400, 'INVALID_REQUEST', [
      'command',
    ]);
  });

  test('a NUL byte in args is refused (400) or reported in a final frame, never a 500', async () => {
    const response = await sendJson('POST', '/processes/run', { command: 'echo', args: ['a\u0000b'] });
    if (response.status === 200) {
      const frames = response.text
        .split('\n')
        .filter((line) => line.startsWith('data: '))
        .map((line) => JSON.parse(line.slice(6)) as RunFrame);
      assert.ok(frames.at(-1)?.error, response.text);
    } else {
      assertError(response, 400, 'INVALID_REQUEST');
    }
  });
});

describe('after all of the above', () => {
  test('no request made the daemon fail internally (it logs every 500)', () => {
    assert.doesNotMatch(daemon.output(), /request failed|unhandled request error/);
  });

  test('the daemon still serves: health, and a real echo run', async () => {
    assert.equal(daemon.child.exitCode, null, 'the daemon must still be running');
    const health = await send('GET', '/health');
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.text), { healthy: true });

    const { frames } = await run({ command: 'echo', args: ['still serving'] });
    assert.deepEqual(
      frames.filter((f) => f.line !== undefined).map((f) => [f.line, f.stream]),
      [['still serving', 'stdout']],
    );
    assert.deepEqual(frames.at(-1), { exit_code: 0 });
    const started = frames[0]?.pid;
    assert.equal(typeof started, 'number');
    assert.equal((await client.get(started as number)).status, 'exited');
  });
});
