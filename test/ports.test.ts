import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import type { ListeningPortInfo, PortReady, ProcessInfo } from '../src/client/index.ts';
import { restClient } from './helpers/api.ts';
import { cli, unusedPort } from './helpers/cli.ts';
import { eventually, useDaemon } from './helpers/daemon.ts';

const TOKEN = 'ports-test-token';
let rest: ReturnType<typeof restClient>;
const daemon = useDaemon({
  args: ['--token', TOKEN],
  afterStart: () => {
    rest = restClient(daemon);
  },
});

/** A node one-liner that listens on host:port (0: any free port) and prints the port it got. */
function listenerScript(host: string, port = 0): string {
  return `const s = require('net').createServer((c) => c.end()).listen(${port}, '${host}', () => console.log(s.address().port))`;
}

/** Starts a process through the API and keeps it for the test's cleanup. */
async function start(started: ProcessInfo[], body: Parameters<typeof rest.start>[0]): Promise<ProcessInfo> {
  const info = await rest.start(body);
  started.push(info);
  return info;
}

/** The first line the process prints on stdout. */
async function firstLine(pid: number): Promise<string> {
  const stream = rest.client.follow(pid, { view: 'stdout' });
  try {
    for (;;) {
      const next = await stream.next();
      if (next.done) throw new Error(`process ${pid} ended without printing a line`);
      const [first] = next.value;
      if (first) return first.line;
    }
  } finally {
    await stream.return(false);
  }
}

async function listening(): Promise<ListeningPortInfo[]> {
  return rest.client.listPorts();
}

/** Kills every process the test started (their groups and descendants) and waits for their ends. */
async function cleanUp(started: ProcessInfo[]): Promise<void> {
  for (const { pid } of started) {
    await rest.kill(pid);
    await rest.waitForEnd(pid);
  }
}

describe('GET /api/v1/ports', () => {
  test('listeners started through the API, on 127.0.0.1 and on ::1, with their pid, process and command', async () => {
    const started: ProcessInfo[] = [];
    try {
      const v4 = await start(started, {
        command: process.execPath,
        args: ['-e', listenerScript('127.0.0.1')],
      });
      const v6 = await start(started, { command: process.execPath, args: ['-e', listenerScript('::1')] });
      const v4Port = Number(await firstLine(v4.pid));
      const v6Port = Number(await firstLine(v6.pid));
      const ports = await listening();
      const entryV4 = ports.find((p) => p.port === v4Port);
      const entryV6 = ports.find((p) => p.port === v6Port);
      assert.deepEqual(entryV4, {
        port: v4Port,
        address: '127.0.0.1',
        pid: v4.pid,
        process_pid: v4.pid,
        command: `${process.execPath} -e ${listenerScript('127.0.0.1')}`,
        public: false,
      });
      assert.deepEqual(entryV6, {
        port: v6Port,
        address: '::1',
        pid: v6.pid,
        process_pid: v6.pid,
        command: `${process.execPath} -e ${listenerScript('::1')}`,
        public: false,
      });
      // In order, one entry per address and port.
      const keys = ports.map((p) => `${p.port} ${p.address}`);
      assert.equal(new Set(keys).size, keys.length);
      assert.deepEqual(
        ports.map((p) => p.port),
        ports.map((p) => p.port).sort((a, b) => a - b),
      );

      // Stopped, it leaves the list.
      await rest.kill(v4.pid);
      await rest.waitForEnd(v4.pid);
      assert.equal(
        (await listening()).find((p) => p.port === v4Port),
        undefined,
      );
    } finally {
      await cleanUp(started);
    }
  });

  test('one port on 0.0.0.0 and on :: is two entries', async () => {
    const started: ProcessInfo[] = [];
    try {
      const port = await unusedPort();
      // Prints once both listen.
      const script =
        `const net = require('net'); let up = 0; const ready = () => ++up === 2 && console.log('up');` +
        `net.createServer().listen({ port: ${port}, host: '0.0.0.0' }, ready);` +
        `net.createServer().listen({ port: ${port}, host: '::', ipv6Only: true }, ready)`;
      const both = await start(started, { command: process.execPath, args: ['-e', script] });
      assert.equal(await firstLine(both.pid), 'up');
      const entries = (await listening()).filter((p) => p.port === port);
      assert.deepEqual(
        entries.map((p) => [p.address, p.pid, p.process_pid]),
        [
          ['0.0.0.0', both.pid, both.pid],
          ['::', both.pid, both.pid],
        ],
      );
    } finally {
      await cleanUp(started);
    }
  });

  test("a listener started as a grandchild belongs to the process that started it, also after that one's end", async () => {
    const started: ProcessInfo[] = [];
    try {
      // The shell runs on (waits): the listener's parent is the process the daemon started.
      const waiting = await start(started, {
        command: 'sh',
        args: ['-c', `"${process.execPath}" -e "${listenerScript('127.0.0.1')}" & wait`],
      });
      const waitingPort = Number(await firstLine(waiting.pid));
      const child = (await listening()).find((p) => p.port === waitingPort);
      assert.ok(child, `port ${waitingPort} listed`);
      assert.notEqual(child.pid, waiting.pid);
      assert.equal(child.process_pid, waiting.pid);
      assert.match(child.command ?? '', /createServer/);

      // The shell exits at once: the listener is an orphan, found by the session its shell led.
      const port = await unusedPort();
      const gone = await start(started, {
        command: 'sh',
        args: ['-c', `"${process.execPath}" -e "${listenerScript('127.0.0.1', port)}" > /dev/null &`],
      });
      const shellEnd = await rest.waitForEnd(gone.pid);
      assert.equal(shellEnd.status, 'exited');
      await rest.client.waitForPort(port, 10_000);
      const orphan = (await listening()).find((p) => p.port === port);
      assert.ok(orphan, `port ${port} listed`);
      assert.equal(orphan.process_pid, gone.pid);
      assert.notEqual(orphan.pid, gone.pid);
    } finally {
      // A kill of the ended shell still reaches its orphan.
      await cleanUp(started);
    }
  });

  test('a listener the test opens itself has its pid and command, and no process', async () => {
    const server = createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as { port: number };
      const entry = (await listening()).find((p) => p.port === port);
      assert.ok(entry);
      assert.equal(entry.pid, process.pid);
      assert.equal('process_pid' in entry, false);
      assert.match(entry.command ?? '', /node/);
    } finally {
      server.close();
    }
  });

  test('sandboxd ports prints a table, and --json the list', async () => {
    const started: ProcessInfo[] = [];
    try {
      const listener = await start(started, {
        command: process.execPath,
        args: ['-e', listenerScript('127.0.0.1')],
      });
      const port = Number(await firstLine(listener.pid));
      const printed = await cli(['ports'], { daemon });
      assert.equal(printed.code, 0, printed.stderr);
      const [header, ...lines] = printed.stdout.trimEnd().split('\n');
      assert.match(header ?? '', /^PORT\s+ADDRESS\s+PID\s+PROCESS\s+PUBLIC\s+COMMAND$/);
      const row = lines.find((line) => line.startsWith(`${port} `));
      assert.ok(row, printed.stdout);
      assert.deepEqual(row.split(/\s+/).slice(0, 5), [
        String(port),
        '127.0.0.1',
        String(listener.pid),
        String(listener.pid),
        'no',
      ]);
      const json = await cli(['ports', '--json'], { daemon });
      assert.equal(json.code, 0, json.stderr);
      const listed = JSON.parse(json.stdout) as ListeningPortInfo[];
      assert.equal(listed.find((p) => p.port === port)?.process_pid, listener.pid);
    } finally {
      await cleanUp(started);
    }
  });

  test('401 without the token', async () => {
    for (const path of ['/ports', '/ports/80/wait?timeout_ms=0']) {
      const response = await fetch(`${daemon.api}${path}`);
      assert.equal(response.status, 401, path);
      assert.deepEqual(await response.json(), { error: 'unauthorized', code: 'UNAUTHORIZED' });
    }
  });
});

describe('GET /api/v1/ports/{port}/wait', () => {
  const wait = (port: number | string, query = '', signal?: AbortSignal) =>
    rest.client.request('GET', `/ports/${port}/wait${query}`, { signal });

  test('answers once a process starts listening later, on 127.0.0.1 or on ::1', async () => {
    for (const host of ['127.0.0.1', '::1'] as const) {
      const started: ProcessInfo[] = [];
      try {
        const port = await unusedPort();
        assert.equal((await wait(port, '?timeout_ms=0')).status, 408, 'nothing listens yet');
        // The listener starts when the test writes a line to the shell's stdin.
        const shell = await start(started, {
          command: 'sh',
          args: ['-c', `read go; exec "${process.execPath}" -e "${listenerScript(host, port)}"`],
          stdin_mode: 'pipe',
        });
        const answer = wait(port, '?timeout_ms=20000');
        let settled = false;
        void answer.then(() => {
          settled = true;
        });
        await listening(); // A round trip to the daemon: the wait is still waiting.
        assert.equal(settled, false);
        await rest.client.writeStdin(shell.pid, 'go\n');
        const response = await answer;
        assert.equal(response.status, 200);
        const body = (await response.json()) as PortReady;
        assert.equal(body.port, port);
        assert.equal(body.address, host);
        assert.ok(body.waited_ms >= 0);
      } finally {
        await cleanUp(started);
      }
    }
  });

  test('408 in the REST error shape once the timeout has passed', async () => {
    const port = await unusedPort();
    const began = performance.now();
    const response = await wait(port, '?timeout_ms=300');
    const took = performance.now() - began;
    assert.equal(response.status, 408);
    assert.deepEqual(await response.json(), {
      error: `port ${port} accepted no connection within 300 ms`,
      code: 'REQUEST_TIMEOUT',
    });
    assert.ok(took >= 300, `answered after ${took} ms`);
    assert.ok(took < 3000, `answered after ${took} ms`);
  });

  test('sandboxd wait-port: 0 once the port accepts, 1 after --timeout', async () => {
    const server = createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as { port: number };
      const ready = await cli(['wait-port', String(port), '--timeout', '5000'], { daemon });
      assert.equal(ready.code, 0, ready.stderr);
      assert.match(ready.stdout, new RegExp(`^port ${port} accepts connections on 127\\.0\\.0\\.1`));
    } finally {
      server.close();
    }
    const closed = await unusedPort();
    const late = await cli(['wait-port', String(closed), '--timeout', '200'], { daemon });
    assert.equal(late.code, 1);
    assert.equal(late.stderr, `sandboxd: port ${closed} accepted no connection within 200 ms\n`);
  });

  test('bad ports and timeouts are 400 INVALID_REQUEST', async () => {
    const cases: [port: string, query: string][] = [
      ['0', ''],
      ['65536', ''],
      ['abc', ''],
      ['-1', ''],
      ['1.5', ''],
      ['080x', ''],
      ['8080', '?timeout_ms=-5'],
      ['8080', '?timeout_ms=abc'],
      ['8080', '?timeout_ms=1e3'],
      ['8080', '?timeout_ms='],
      ['8080', '?timeout_ms=120001'],
    ];
    for (const [port, query] of cases) {
      const response = await wait(port, query);
      assert.equal(response.status, 400, `${port}${query}`);
      const body = (await response.json()) as { code: string; error: string };
      assert.equal(body.code, 'INVALID_REQUEST', `${port}${query}`);
      assert.match(body.error, query ? /^timeout_ms: / : /^port: /);
    }
  });

  test('a client that goes away ends its wait: the daemon holds no more descriptors than before', async () => {
    const descriptors = () => readdirSync(`/proc/${daemon.child.pid}/fd`).length;
    const port = await unusedPort();
    await listening();
    const idle = descriptors();
    const clients = Array.from({ length: 20 }, () => new AbortController());
    const waits = clients.map((client) =>
      wait(port, '?timeout_ms=60000', client.signal).catch(() => undefined),
    );
    // Each wait holds its connection (and, now and then, a socket of its attempt).
    await eventually(() => descriptors() >= idle + 20);
    for (const client of clients) client.abort();
    await Promise.all(waits);
    await eventually(() => descriptors() <= idle);
  });
});
