import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import WebSocket from 'ws';
import { startCli, unusedPort } from './helpers/cli.ts';
import { eventually, startDaemon, type TestDaemon, useDaemon } from './helpers/daemon.ts';
import { runSdkScenario } from './helpers/tensorlake-sdk.ts';
import { needs, x11vnc, xev, xvfb } from './helpers/tools.ts';

const TOKEN = 'tunnel-token';
const MiB = 1024 * 1024;

/** A TCP service on the loopback, for the test's life; its connections are kept to be looked at. */
async function service(
  onConnection: (socket: Socket) => void,
  host = '127.0.0.1',
): Promise<{ server: Server; port: number }> {
  const server = createServer(onConnection);
  server.listen(0, host);
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

async function closeServer(server: Server): Promise<void> {
  server.close();
  await once(server, 'close');
}

const tunnelUrl = (daemon: TestDaemon, query: string) =>
  `${daemon.url.replace(/^http/, 'ws')}/api/v1/tunnels/tcp${query === '' ? '' : `?${query}`}`;

type Handshake = { ws: WebSocket } | { status: number; body: unknown };

/**
 * Opens a tunnel WebSocket; resolves with it once open, or with the refusal's status and body.
 * It comes back paused, as the client's openTunnel does: the service's first bytes may come in
 * the packet of the 101, and would be emitted before the caller listens. collect() and closed()
 * resume it.
 */
function handshake(url: string, headers: Record<string, string> = {}): Promise<Handshake> {
  const ws = new WebSocket(url, { headers });
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.pause();
      resolve({ ws });
    });
    ws.once('unexpected-response', async (_request, response: IncomingMessage) => {
      let text = '';
      for await (const chunk of response) text += chunk;
      ws.terminate();
      resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) });
    });
    ws.once('error', reject);
  });
}

async function openTunnel(daemon: TestDaemon, port: number): Promise<WebSocket> {
  const result = await handshake(tunnelUrl(daemon, `port=${port}`), daemon.headers);
  if ('ws' in result) return result.ws;
  throw new Error(`tunnel refused: ${result.status} ${JSON.stringify(result.body)}`);
}

/** Resolves with the close code and reason once the WebSocket has closed. */
async function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) throw new Error('closed before anyone listened for its close');
  const closing = once(ws, 'close');
  ws.resume();
  const [code, reason] = await closing;
  return { code: code as number, reason: String(reason) };
}

/** Collects the binary messages a WebSocket receives until it closes. */
function collect(ws: WebSocket): { bytes: () => Buffer; ended: Promise<{ code: number; reason: string }> } {
  const chunks: Buffer[] = [];
  ws.on('message', (data: Buffer) => chunks.push(data));
  const ended = closed(ws);
  return { bytes: () => Buffer.concat(chunks), ended };
}

const openDescriptors = async (pid: number) => (await readdir(`/proc/${pid}/fd`)).length;
const rssMiB = async (pid: number, field = 'VmRSS') =>
  Number(new RegExp(`${field}:\\s+(\\d+)`).exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;

describe('the TCP tunnel through the tensorlake SDK', () => {
  const daemon = useDaemon(['--token', TOKEN]);

  test('createTunnel: an HTTP server started through the SDK answers; 64 MiB and 32 parallel connections echo exactly', async () => {
    const seen = await runSdkScenario('tensorlake-tunnel-scenario.mjs', daemon, {
      TUNNEL_SCENARIO: 'tunnel',
    });
    assert.equal(seen.failure, undefined, seen.failure);
    assert.deepEqual(seen.http, { status: 200, body: 'hello from /through/the/tunnel' });
    assert.deepEqual(seen.big, { sent: 64 * MiB, received: 64 * MiB, exact: true });
    assert.equal(seen.parallel.length, 32);
    assert.ok(
      seen.parallel.every((exact: boolean) => exact),
      `inexact connections: ${seen.parallel.map(String)}`,
    );
  });
});

describe('the desktop through the tensorlake SDK', { skip: await needs([xvfb, x11vnc, xev]) }, () => {
  const daemon = useDaemon(['--token', TOKEN]);

  test('connectDesktop: a VNC desktop started through the SDK (Xvfb, x11vnc): its size, a PNG screenshot, a click', async () => {
    const seen = await runSdkScenario('tensorlake-tunnel-scenario.mjs', daemon, {
      TUNNEL_SCENARIO: 'desktop',
    });
    assert.equal(seen.failure, undefined, seen.failure);
    assert.deepEqual(seen.size, { width: 640, height: 480 });
    assert.deepEqual(seen.png, { signature: '89504e470d0a1a0a', width: 640, height: 480 });
    assert.deepEqual(seen.clickedAt, [123, 45]);
    assert.equal(seen.released, true);
  });
});

describe('the TCP tunnel over a plain WebSocket', () => {
  let echo: { server: Server; port: number };
  const daemon = useDaemon({
    args: ['--token', TOKEN],
    beforeStart: async () => {
      echo = await service((socket) => socket.pipe(socket));
    },
    afterStop: async () => {
      await closeServer(echo.server);
    },
  });

  test('every handshake answer: 101, 400 for a bad port, 401 without the token, 502 with nothing listening, 426 without an upgrade', async () => {
    const ok = await handshake(tunnelUrl(daemon, `port=${echo.port}`), daemon.headers);
    assert.ok('ws' in ok);
    ok.ws.close();
    await closed(ok.ws);
    const viaAccessToken = await handshake(tunnelUrl(daemon, `port=${echo.port}`), {
      'x-access-token': TOKEN,
    });
    assert.ok('ws' in viaAccessToken);
    viaAccessToken.ws.close();
    await closed(viaAccessToken.ws);

    for (const query of [
      '',
      'port=',
      'port=0',
      'port=65536',
      'port=abc',
      'port=-1',
      'port=1.5',
      'port=%2080',
    ]) {
      const refused = await handshake(tunnelUrl(daemon, query), daemon.headers);
      assert.ok('status' in refused, query);
      assert.equal(refused.status, 400, query);
      assert.equal((refused.body as { code: string }).code, 'INVALID_REQUEST', query);
      assert.match((refused.body as { error: string }).error, /^port: /, query);
    }
    const wrong: Record<string, string>[] = [
      {},
      { authorization: 'Bearer wrong' },
      { 'x-access-token': 'wrong' },
    ];
    for (const headers of wrong) {
      const refused = await handshake(tunnelUrl(daemon, `port=${echo.port}`), headers);
      assert.deepEqual(refused, { status: 401, body: { error: 'unauthorized', code: 'UNAUTHORIZED' } });
    }
    const nowhere = await unusedPort();
    const refused = await handshake(tunnelUrl(daemon, `port=${nowhere}`), daemon.headers);
    assert.deepEqual(refused, {
      status: 502,
      body: { error: `nothing listens on port ${nowhere}`, code: 'BAD_GATEWAY' },
    });
    const plain = await fetch(`${daemon.api}/tunnels/tcp?port=${echo.port}`, { headers: daemon.headers });
    assert.equal(plain.status, 426);
    assert.equal(((await plain.json()) as { code: string }).code, 'UPGRADE_REQUIRED');
  });

  test('502 when the service does not accept the connection within 5 s', async () => {
    // A listener whose process is stopped: the kernel queues connections up to its backlog and
    // then leaves new ones unanswered, as a service too busy to accept would.
    const child = spawn(
      process.execPath,
      [
        '-e',
        "const s=require('net').createServer().listen({port:0,host:'127.0.0.1',backlog:1},()=>console.log(s.address().port))",
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const queued: Socket[] = [];
    try {
      const port = Number(String((await once(child.stdout, 'data'))[0]).trim());
      child.kill('SIGSTOP');
      // Linux queues backlog + 1 connections; past that it drops the SYNs of new ones.
      for (let index = 0; index < 2; index++) {
        const socket = connect({ host: '127.0.0.1', port });
        socket.on('error', () => {});
        queued.push(socket);
        await once(socket, 'connect');
      }
      const started = performance.now();
      const refused = await handshake(tunnelUrl(daemon, `port=${port}`), daemon.headers);
      assert.deepEqual(refused, {
        status: 502,
        body: { error: `port ${port} did not accept a connection within 5000 ms`, code: 'BAD_GATEWAY' },
      });
      assert.ok(performance.now() - started >= 4900);
    } finally {
      for (const socket of queued) socket.destroy();
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  });

  test('binary frames go both ways verbatim; the service ending its side sends what it read, then closes the WebSocket', async () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, byte) => byte));
    const { server, port } = await service((socket) => {
      socket.once('data', (first) => {
        // The last bytes travel with the EOF: the client must get them before the close.
        socket.end(Buffer.concat([first, all]));
      });
    });
    try {
      const ws = await openTunnel(daemon, port);
      const received = collect(ws);
      ws.send(all);
      assert.deepEqual(await received.ended, { code: 1000, reason: '' });
      assert.deepEqual(received.bytes(), Buffer.concat([all, all]));
    } finally {
      await closeServer(server);
    }
  });

  test("the client's close ends the service's connection, after the bytes sent before it", async () => {
    let serviceGot = Buffer.alloc(0);
    let serviceEnded!: () => void;
    const ended = new Promise<void>((resolve) => {
      serviceEnded = resolve;
    });
    const { server, port } = await service((socket) => {
      socket.on('data', (chunk) => {
        serviceGot = Buffer.concat([serviceGot, chunk]);
      });
      socket.once('end', () => {
        socket.end();
        serviceEnded();
      });
    });
    try {
      const ws = await openTunnel(daemon, port);
      const wsClosed = closed(ws);
      ws.send(Buffer.from('last words'));
      ws.close(1000);
      await ended;
      assert.equal(serviceGot.toString(), 'last words');
      assert.equal((await wsClosed).code, 1000);
    } finally {
      await closeServer(server);
    }
  });

  test('a text frame closes the tunnel (protocol error) and the service connection', async () => {
    let serviceClosed!: Promise<unknown>;
    const { server, port } = await service((socket) => {
      socket.on('error', () => {});
      socket.resume();
      serviceClosed = once(socket, 'close');
    });
    try {
      const ws = await openTunnel(daemon, port);
      ws.send('not bytes');
      assert.deepEqual(await closed(ws), { code: 1002, reason: 'a tunnel carries binary frames only' });
      await serviceClosed;
    } finally {
      await closeServer(server);
    }
  });

  test('pings are answered; a message over 1 MiB closes the tunnel with 1009', async () => {
    const ws = await openTunnel(daemon, echo.port);
    const pong = once(ws, 'pong');
    ws.resume();
    ws.ping(Buffer.from('are you there'));
    assert.equal(String((await pong)[0]), 'are you there');
    const wsClosed = closed(ws);
    ws.send(Buffer.alloc(MiB + 1));
    assert.equal((await wsClosed).code, 1009);
  });

  test('a service listening on ::1 alone is reached there', async () => {
    const { server, port } = await service((socket) => socket.end('from ipv6'), '::1');
    try {
      const ws = await openTunnel(daemon, port);
      const received = collect(ws);
      assert.equal((await received.ended).code, 1000);
      assert.equal(received.bytes().toString(), 'from ipv6');
    } finally {
      await closeServer(server);
    }
  });

  test('a port that speaks HTTP only is still just bytes', async () => {
    const web = createHttpServer((_req, res) => res.end('plain http'));
    web.listen(0, '127.0.0.1');
    await once(web, 'listening');
    try {
      const ws = await openTunnel(daemon, (web.address() as AddressInfo).port);
      const received = collect(ws);
      ws.send(Buffer.from('GET /x HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n'));
      await received.ended;
      const text = received.bytes().toString();
      assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(text, /plain http$/);
    } finally {
      web.close();
      await once(web, 'close');
    }
  });

  test('a service that closes at once, or resets, makes a clean close', async () => {
    for (const behaviour of ['end', 'reset'] as const) {
      const { server, port } = await service((socket) => {
        if (behaviour === 'end') socket.end();
        else socket.resetAndDestroy();
      });
      try {
        const result = await handshake(tunnelUrl(daemon, `port=${port}`), daemon.headers);
        // The service may be gone before or after the answer: either way a clear outcome.
        if ('ws' in result) {
          const { code } = await closed(result.ws);
          assert.ok([1000, 1011].includes(code), `${behaviour}: closed with ${code}`);
        } else {
          assert.equal(result.status, 502, behaviour);
        }
      } finally {
        await closeServer(server);
      }
    }
    assert.equal((await fetch(`${daemon.api}/health`)).status, 200);
  });

  test('tunnels opened and closed by the thousand leave no descriptor and no memory behind', async () => {
    // A daemon of its own, where nothing of another test may still be closing.
    const fresh = await startDaemon(['--token', TOKEN]);
    try {
      const pid = fresh.child.pid as number;
      const roundTrip = async () => {
        const ws = await openTunnel(fresh, echo.port);
        const echoed = once(ws, 'message');
        ws.resume();
        ws.send(Buffer.from('ping'));
        await echoed;
        ws.close();
        await closed(ws);
      };
      const thousand = async () => {
        for (let batch = 0; batch < 50; batch++) await Promise.all(Array.from({ length: 20 }, roundTrip));
      };
      // A daemon just started may still hold the connection of its own warm-up requests for a
      // moment: the count from after the first thousand, once it is back at the start's at most,
      // is what the second must come back to exactly.
      const descriptorsAtStart = await openDescriptors(pid);
      // The first thousand grows the heap to what this traffic needs (Node gives little of it
      // back at once); a leak shows as the second thousand growing it again.
      await thousand();
      await eventually(async () => (await openDescriptors(pid)) <= descriptorsAtStart);
      const descriptorsWarm = await openDescriptors(pid);
      const rssWarm = await rssMiB(pid);
      await thousand();
      // The daemon closes its side of each service connection as the service's EOF arrives.
      await eventually(async () => (await openDescriptors(pid)) <= descriptorsWarm);
      assert.equal(await openDescriptors(pid), descriptorsWarm);
      const rss = await rssMiB(pid);
      assert.ok(
        rss < rssWarm + 16,
        `RSS ${rss} MiB after the second thousand, ${rssWarm} MiB after the first`,
      );
    } finally {
      await fresh.stop();
    }
  });

  test('without a token, a web page of another origin may not open a tunnel', async () => {
    const open = await startDaemon();
    try {
      const page = await handshake(tunnelUrl(open, `port=${echo.port}`), { origin: 'http://evil.example' });
      assert.deepEqual(page, {
        status: 403,
        body: { error: 'cross-origin request refused', code: 'FORBIDDEN' },
      });
      const tool = await handshake(tunnelUrl(open, `port=${echo.port}`));
      assert.ok('ws' in tool);
      tool.ws.close();
      await closed(tool.ws);
    } finally {
      await open.stop();
    }
  });
});

describe('tunnel limits', () => {
  test('a paused reader while the service pushes 300 MiB holds the daemon within idle + 64 MiB; then every byte arrives', async () => {
    const daemon = await startDaemon(['--token', TOKEN]);
    const total = 300 * MiB;
    let flushed = 0;
    const sent = createHash('sha256');
    const { server, port } = await service(async (socket) => {
      socket.on('error', () => {});
      for (let written = 0; written < total && !socket.destroyed; ) {
        const chunk = randomBytes(MiB);
        sent.update(chunk);
        written += chunk.length;
        if (!socket.write(chunk, () => (flushed += chunk.length))) await once(socket, 'drain');
      }
      socket.end();
    });
    try {
      const pid = daemon.child.pid as number;
      const idle = await rssMiB(pid);
      const ws = await openTunnel(daemon, port);
      // Stalled: the service has written what the buffers on the way hold, and no more.
      let last = -1;
      let still = 0;
      await eventually(() => {
        still = flushed === last ? still + 1 : 0;
        last = flushed;
        return still >= 20;
      }, 30_000);
      assert.ok(flushed < total / 4, `the service wrote ${flushed / MiB} MiB to a paused reader`);
      const peakWhilePaused = await rssMiB(pid, 'VmHWM');
      assert.ok(peakWhilePaused < idle + 64, `peak RSS ${peakWhilePaused} MiB, idle ${idle} MiB`);

      const received = createHash('sha256');
      let bytes = 0;
      ws.on('message', (data: Buffer) => {
        received.update(data);
        bytes += data.length;
      });
      ws.resume();
      assert.equal((await closed(ws)).code, 1000);
      assert.equal(bytes, total);
      assert.equal(received.digest('hex'), sent.digest('hex'));
      const peak = await rssMiB(pid, 'VmHWM');
      assert.ok(peak < idle + 64, `peak RSS ${peak} MiB, idle ${idle} MiB`);
    } finally {
      await daemon.stop();
      await closeServer(server);
    }
  });

  test('a service that stops reading stops the client: the daemon holds at most its bound', async () => {
    const daemon = await startDaemon(['--token', TOKEN]);
    let accept!: (socket: Socket) => void;
    const accepted = new Promise<Socket>((resolve) => {
      accept = resolve;
    });
    const { server, port } = await service((socket) => {
      socket.pause();
      accept(socket);
    });
    try {
      const ws = await openTunnel(daemon, port);
      const serviceSocket = await accepted;
      const pid = daemon.child.pid as number;
      const idle = await rssMiB(pid);
      const chunk = randomBytes(256 * 1024);
      let sent = 0;
      // The client's own buffer grows once the daemon stops reading: that is the backpressure.
      while (sent < 200 * MiB && ws.bufferedAmount < 64 * MiB) {
        ws.send(chunk);
        sent += chunk.length;
        if (ws.bufferedAmount > 8 * MiB) await new Promise((resolve) => setImmediate(resolve));
      }
      assert.ok(ws.bufferedAmount >= 64 * MiB, `only ${ws.bufferedAmount} bytes waited at the client`);
      const peak = await rssMiB(pid, 'VmHWM');
      assert.ok(peak < idle + 64, `peak RSS ${peak} MiB, idle ${idle} MiB`);
      serviceSocket.destroy();
      await closed(ws);
    } finally {
      await daemon.stop();
      await closeServer(server);
    }
  });

  test('tunnels count against --max-connections', async () => {
    const daemon = await startDaemon(['--token', TOKEN, '--max-connections', '3']);
    const echo = await service((socket) => socket.pipe(socket));
    try {
      const open = [await openTunnel(daemon, echo.port), await openTunnel(daemon, echo.port)];
      open.push(await openTunnel(daemon, echo.port));
      const busy = await handshake(tunnelUrl(daemon, `port=${echo.port}`), daemon.headers);
      assert.deepEqual('status' in busy && busy.status, 503);
      const first = open.shift() as WebSocket;
      first.close();
      await closed(first);
      // The daemon counts the connection gone once its side has closed too.
      await eventually(async () => {
        const result = await handshake(tunnelUrl(daemon, `port=${echo.port}`), daemon.headers);
        if ('ws' in result) open.push(result.ws);
        return 'ws' in result;
      });
      assert.equal(open.length, 3);
      for (const ws of open) {
        ws.close();
        await closed(ws);
      }
    } finally {
      await daemon.stop();
      await closeServer(echo.server);
    }
  });

  test('the daemon stopping closes open tunnels (1001) and their service connections', async () => {
    const daemon = await startDaemon(['--token', TOKEN]);
    const serviceClosed: Promise<unknown>[] = [];
    const { server, port } = await service((socket) => {
      socket.on('error', () => {});
      socket.resume();
      serviceClosed.push(once(socket, 'close'));
    });
    try {
      const tunnels = [await openTunnel(daemon, port), await openTunnel(daemon, port)];
      const closes = tunnels.map(closed);
      assert.equal(await daemon.stop(), 0);
      for (const close of await Promise.all(closes)) assert.equal(close.code, 1001);
      await Promise.all(serviceClosed);
    } finally {
      await daemon.stop();
      await closeServer(server);
    }
  });
});

describe('sandboxd forward', () => {
  const daemon = useDaemon(['--token', TOKEN]);

  test('forwards local ports to services in the sandbox until Ctrl-C', async () => {
    const echo = await service((socket) => socket.pipe(socket));
    const greeter = await service((socket) => socket.end('hello\n'));
    const local = await unusedPort();
    const forward = startCli(['forward', `${local}:${echo.port}`, `:${greeter.port}`], { daemon });
    const exitedEarly = forward.result.then((result) => {
      throw new Error(`forward exited: ${JSON.stringify(result)}`);
    });
    try {
      await Promise.race([forward.waitFor(`Forwarding 127.0.0.1:${local} -> ${echo.port}\n`), exitedEarly]);
      await Promise.race([forward.waitFor(` -> ${greeter.port}\n`), exitedEarly]);
      const anyPort = new RegExp(`Forwarding 127\\.0\\.0\\.1:(\\d+) -> ${greeter.port}\n`).exec(
        forward.stdout,
      );
      const greeterLocal = Number(anyPort?.[1]);
      assert.ok(greeterLocal > 0, forward.stdout);
      for (let round = 0; round < 2; round++) {
        const socket = connect({ host: '127.0.0.1', port: local });
        const payload = randomBytes(MiB);
        const chunks: Buffer[] = [];
        let length = 0;
        const back = new Promise<void>((resolve) =>
          socket.on('data', (chunk: Buffer) => {
            chunks.push(chunk);
            length += chunk.length;
            if (length >= payload.length) resolve();
          }),
        );
        socket.write(payload);
        await back;
        assert.ok(Buffer.concat(chunks).equals(payload));
        socket.destroy();
      }
      const greeting = connect({ host: '127.0.0.1', port: greeterLocal });
      let text = '';
      greeting.on('data', (chunk) => {
        text += chunk;
      });
      await once(greeting, 'close');
      assert.equal(text, 'hello\n');

      const held = connect({ host: '127.0.0.1', port: local });
      await once(held, 'connect');
      held.write('x');
      await once(held, 'data');
      exitedEarly.catch(() => {});
      forward.child.kill('SIGINT');
      const result = await forward.result;
      assert.equal(result.code, 0, result.stderr);
      // Ctrl-C closes the connections it carried and the ports it listened on.
      if (!held.closed) await once(held, 'close');
      const refused = connect({ host: '127.0.0.1', port: local });
      const [error] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
      assert.equal(error.code, 'ECONNREFUSED');
    } finally {
      forward.child.kill('SIGKILL');
      await closeServer(echo.server);
      await closeServer(greeter.server);
    }
  });

  test('REMOTE alone listens on the same port, on --address', async () => {
    // Not 127.0.0.1, where the service itself listens (the sandbox is this machine here).
    const greeter = await service((socket) => socket.end('hello\n'));
    const forward = startCli(['forward', '--address', '127.0.0.2', String(greeter.port)], { daemon });
    try {
      await forward.waitFor(`Forwarding 127.0.0.2:${greeter.port} -> ${greeter.port}\n`);
      const greeting = connect({ host: '127.0.0.2', port: greeter.port });
      let text = '';
      greeting.on('data', (chunk) => {
        text += chunk;
      });
      await once(greeting, 'close');
      assert.equal(text, 'hello\n');
      forward.child.kill('SIGINT');
      assert.equal((await forward.result).code, 0);
    } finally {
      forward.child.kill('SIGKILL');
      await closeServer(greeter.server);
    }
  });

  test('bad mappings are refused with a clear message', async () => {
    for (const mapping of ['0', '70000', 'abc', '1:2:3', '-1']) {
      const result = await startCli(['forward', mapping], { daemon }).result;
      assert.equal(result.code, 2, mapping);
      assert.match(result.stderr, /sandboxd: /, mapping);
    }
  });
});
