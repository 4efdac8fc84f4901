import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request } from 'node:http';
import { connect } from 'node:net';
import { describe, test } from 'node:test';
import { Signal } from '../src/gen/process/process_pb.ts';
import { restClient } from './helpers/api.ts';
import { useDaemon } from './helpers/daemon.ts';
import { collect, processClient, started } from './helpers/envd.ts';

const daemon = useDaemon();

async function post(path: string, body: Uint8Array<ArrayBuffer>, headers: Record<string, string>) {
  const response = await fetch(`${daemon.url}${path}`, { method: 'POST', body, headers });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('Connect edges', () => {
  test('a unary binary message that cannot be parsed is invalid_argument (400), not internal', async () => {
    const bad = new Uint8Array([0xff, 0xff, 0xff]);
    for (const path of ['/process.Process/List', '/filesystem.Filesystem/Stat']) {
      const answer = await post(path, bad, { 'content-type': 'application/proto' });
      assert.equal(answer.status, 400, path);
      assert.equal(answer.body.code, 'invalid_argument');
      assert.match(String(answer.body.message), /parse binary/);
    }
  });

  test('a client that closes mid-body is no error worth a stack trace', async () => {
    const printedSoFar = daemon.output().length;
    const { hostname, port } = new URL(daemon.url);
    const socket = connect(Number(port), hostname);
    await once(socket, 'connect');
    socket.write(
      'POST /process.Process/SendInput HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"process":',
    );
    socket.destroy();
    // The next call is served after the daemon dealt with the closed one.
    assert.equal((await fetch(`${daemon.api}/health`)).status, 200);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(daemon.output().slice(printedSoFar), '');
  });

  test('Keepalive-Ping-Interval beyond what a timer holds does not make keepalives fire at once', async () => {
    const rpc = processClient(daemon);
    const seen = await collect(
      rpc.start(
        { process: { cmd: 'sleep', args: ['0.3'] }, stdin: false },
        { headers: { 'keepalive-ping-interval': '99999999' } },
      ),
    );
    assert.equal(seen.end?.exitCode, 0);
    assert.equal(seen.keepalives, 0);
  });

  test('Connect-Timeout-Ms beyond what a timer holds lets the command run', async () => {
    const rpc = processClient(daemon);
    const seen = await collect(
      rpc.start(
        { process: { cmd: 'sh', args: ['-c', 'sleep 0.2; echo done'] }, stdin: false },
        // As a header: the client's own timer has the same limit.
        { headers: { 'connect-timeout-ms': '99999999999' } },
      ),
    );
    assert.equal(seen.stdout, 'done\n');
    assert.equal(seen.end?.exitCode, 0);
  });
});

describe('names', () => {
  // REST names: any text of 1..255 bytes without '/' or control characters, not all digits.
  const bad = [
    'a\0b',
    'a/b',
    'tab\there',
    'x'.repeat(256),
    'é'.repeat(128),
    'x'.repeat(100_000),
    '123',
    '',
    '..',
  ];
  for (const name of bad) {
    const shown = name.length > 20 ? `${name.slice(0, 10)}… (${name.length})` : JSON.stringify(name);
    test(`${shown} is refused at a REST start, naming the rule`, async () => {
      const rest = await restClient(daemon).call('POST', '/processes', { command: 'true', name });
      assert.equal(rest.status, 400);
      const body = rest.body as { code: string; error: string };
      assert.equal(body.code, 'INVALID_REQUEST');
      assert.match(body.error, /^name .*: must /);
    });
  }
  test('names with spaces, dots, colons and any script are taken and addressed percent-encoded', async () => {
    const rest = restClient(daemon);
    for (const name of [
      'Worker_1.a-b',
      'sp ace',
      '...',
      '.hidden',
      '-dash',
      'a:b',
      '?#%',
      '名前',
      'x'.repeat(255),
    ]) {
      const info = await rest.start({ command: 'sleep', args: ['1000'], name });
      try {
        assert.equal((await rest.client.get(name)).pid, info.pid, name);
      } finally {
        await rest.kill(info.pid);
      }
    }
  });
  test("envd tags keep envd's rule: any text, all digits too, found by tag and never read as a pid", async () => {
    const rpc = processClient(daemon);
    for (const tag of ['123', 'a/b', 'sp ace']) {
      const { pid, rest } = await started(
        rpc.start({ process: { cmd: 'sleep', args: ['1000'] }, tag, stdin: false }),
      );
      try {
        const listed = (await rpc.list({})).processes.find((p) => p.pid === pid);
        assert.equal(listed?.tag, tag);
        await rpc.sendSignal({ process: { selector: { case: 'tag', value: tag } }, signal: Signal.SIGKILL });
        assert.equal((await collect(rest)).end?.status, 'signal: killed');
      } finally {
        await restClient(daemon).kill(pid);
      }
    }
  });
});

describe("Node's own refusals get the dialect's shape", () => {
  async function raw(text: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const { hostname, port } = new URL(daemon.url);
    const socket = connect(Number(port), hostname);
    let received = '';
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString();
    });
    socket.write(text);
    await once(socket, 'close');
    const [head = '', body = ''] = received.split('\r\n\r\n');
    return { status: Number(head.split(' ')[1]), body: JSON.parse(body) };
  }
  const huge = 'x'.repeat(20_000);

  test('a request head too large: 431 in the REST shape under /api/v1, Connect shape on Connect paths', async () => {
    const rest = await raw(`GET /api/v1/processes/${huge} HTTP/1.1\r\nhost: x\r\n\r\n`);
    assert.equal(rest.status, 431);
    assert.equal(rest.body.code, 'HEADERS_TOO_LARGE');
    const rpc = await raw(`POST /process.Process/List HTTP/1.1\r\nhost: x\r\nx-big: ${huge}\r\n\r\n`);
    assert.equal(rpc.status, 431);
    assert.equal(rpc.body.code, 'resource_exhausted');
  });

  test('a malformed request: 400 in the REST shape', async () => {
    const answer = await raw('GET /api/v1/health HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n');
    assert.equal(answer.status, 400);
    assert.equal(answer.body.code, 'INVALID_REQUEST');
  });
});

describe('browsers', () => {
  test("another origin's page cannot start a process, even without a token", async () => {
    const refused = await new Promise<number>((resolve) => {
      const req = request(`${daemon.api}/processes`, {
        method: 'POST',
        headers: { origin: 'https://evil.example', 'content-type': 'text/plain' },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode as number);
      });
      req.end(JSON.stringify({ command: 'touch', args: ['/tmp/sandboxd-csrf'] }));
    });
    assert.equal(refused, 403);
    const fetchMetadata = await fetch(`${daemon.api}/processes`, {
      method: 'POST',
      headers: { 'sec-fetch-site': 'cross-site' },
      body: JSON.stringify({ command: 'true' }),
    });
    assert.equal(fetchMetadata.status, 403);
    assert.equal(((await fetchMetadata.json()) as { code: string }).code, 'FORBIDDEN');
    // A read is no harm (the page cannot see the answer), and a client that is no browser passes.
    assert.equal(
      (await fetch(`${daemon.api}/processes`, { headers: { origin: 'https://evil.example' } })).status,
      200,
    );
    const info = await restClient(daemon).start({ command: 'true' });
    assert.ok(info.pid > 0);
  });
});
