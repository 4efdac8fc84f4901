import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { SandboxError } from '../src/core/errors.ts';
import { type HealthCheck, healthCheckToWire, normaliseHealthCheck } from '../src/core/health/check.ts';
import { HealthMonitor, type HealthMonitorOptions } from '../src/core/health/monitor.ts';
import { type ProbeResult, probe, type RunCheck } from '../src/core/health/probe.ts';

// Health checks of managed processes: the request's shape and its defaults, one probe of each
// kind against real local servers and commands, and the monitor's transitions.

const DEADLINE_MS = 3000;

/** A local server; its connections are counted and closed with it. */
interface Local {
  port: number;
  server: Server;
  /** Sockets accepted so far. */
  sockets: Socket[];
  close(): Promise<void>;
}

async function listen(server: Server): Promise<Local> {
  const sockets: Socket[] = [];
  server.on('connection', (socket: Socket) => sockets.push(socket));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    server,
    sockets,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

const httpServer = (handler: (req: IncomingMessage, res: ServerResponse) => void) =>
  listen(createHttpServer(handler));

/** A port nothing listens on: bound, then closed. */
async function refusedPort(): Promise<number> {
  const local = await listen(createTcpServer());
  await local.close();
  return local.port;
}

/** Resolves when the socket closes (at once if it has). */
function closed(socket: Socket): Promise<void> {
  return socket.destroyed ? Promise.resolve() : once(socket, 'close').then(() => undefined);
}

/** Rejects when the deadline passes first; the timer is ref'd and keeps the loop alive. */
async function within<T>(promise: Promise<T>, what: string, ms = DEADLINE_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const check = (fields: Partial<HealthCheck> & Pick<HealthCheck, 'type'>): HealthCheck => ({
  initialDelayMs: 0,
  intervalMs: 10,
  timeoutMs: 1000,
  failureThreshold: 3,
  ...fields,
});

/** The tests' runner for exec checks: node's spawn, killed on abort; children are kept. */
function spawnRunner(children: ChildProcess[] = []): RunCheck {
  return (command, args, _timeoutMs, signal) =>
    new Promise((resolve, reject) => {
      const child = spawn(command, args, { stdio: 'ignore', signal, killSignal: 'SIGKILL' });
      children.push(child);
      child.once('error', (error) => {
        if (error.name !== 'AbortError') reject(error);
      });
      child.once('exit', (code, signalName) =>
        resolve(code === 0 ? true : code === null ? `killed by ${signalName}` : `exited ${code}`),
      );
    });
}

/** A monitor whose probes are recorded, and a way to wait for the state to come true. */
function watched(subject: HealthCheck, options: HealthMonitorOptions = {}) {
  const results: ProbeResult[] = [];
  const statuses: string[] = [];
  const unhealthy: string[] = [];
  let wake = () => {};
  const monitor = new HealthMonitor(subject, {
    ...options,
    onProbe: (result, m) => {
      results.push(result);
      statuses.push(m.status);
      options.onProbe?.(result, m);
      wake();
    },
    onUnhealthy: (reason) => {
      unhealthy.push(reason);
      options.onUnhealthy?.(reason);
    },
  });
  const until = (done: () => boolean, what: string): Promise<void> =>
    within(
      new Promise<void>((resolve) => {
        if (done()) return resolve();
        wake = () => {
          if (done()) resolve();
        };
      }),
      what,
    );
  return { monitor, results, statuses, unhealthy, until };
}

describe('health check: the request', () => {
  const defaults = { initialDelayMs: 5000, intervalMs: 1000, timeoutMs: 500, failureThreshold: 3 };
  const valid: [string, unknown, HealthCheck][] = [
    ['http, defaults', { type: 'http', port: 8080 }, { type: 'http', port: 8080, path: '/', ...defaults }],
    [
      'tcp, nulls as absent',
      { type: 'tcp', port: 9, path: null, command: null, initial_delay_ms: null, failure_threshold: null },
      { type: 'tcp', port: 9, ...defaults },
    ],
    [
      'exec, defaults',
      { type: 'exec', command: 'true' },
      { type: 'exec', command: 'true', args: [], ...defaults },
    ],
    [
      'every field given, unknown ones ignored',
      {
        type: 'http',
        port: 65535,
        path: '/health?deep=1',
        initial_delay_ms: 0,
        interval_ms: 86_400_000,
        timeout_ms: 1,
        failure_threshold: 1000,
        color: 'blue',
      },
      {
        type: 'http',
        port: 65535,
        path: '/health?deep=1',
        initialDelayMs: 0,
        intervalMs: 86_400_000,
        timeoutMs: 1,
        failureThreshold: 1000,
      },
    ],
    [
      'exec with args',
      { type: 'exec', command: '/bin/check', args: ['-q', ''], failure_threshold: 1 },
      { type: 'exec', command: '/bin/check', args: ['-q', ''], ...defaults, failureThreshold: 1 },
    ],
  ];
  for (const [name, raw, expected] of valid) {
    test(`valid: ${name}`, () => {
      const normalised = normaliseHealthCheck(raw);
      assert.deepEqual(normalised, expected);
      assert.deepEqual(
        normaliseHealthCheck(healthCheckToWire(normalised)),
        normalised,
        'the echo reads back',
      );
    });
  }

  const ms = 'must be an integer number of milliseconds from';
  const invalid: [unknown, string][] = [
    [null, 'health_check: must be an object'],
    [[], 'health_check: must be an object'],
    ['http', 'health_check: must be an object'],
    [{ port: 80 }, 'health_check.type: must be "http", "tcp" or "exec"'],
    [{ type: 'grpc', port: 80 }, 'health_check.type: must be "http", "tcp" or "exec"'],
    [{ type: 'http' }, 'health_check.port: required for http checks'],
    [{ type: 'tcp', port: null }, 'health_check.port: required for tcp checks'],
    [{ type: 'http', port: 0 }, 'health_check.port: must be an integer from 1 to 65535'],
    [{ type: 'tcp', port: 65536 }, 'health_check.port: must be an integer from 1 to 65535'],
    [{ type: 'http', port: 80.5 }, 'health_check.port: must be an integer from 1 to 65535'],
    [{ type: 'http', port: '80' }, 'health_check.port: must be an integer from 1 to 65535'],
    [{ type: 'http', port: 80, path: 'health' }, 'health_check.path: must start with "/"'],
    [{ type: 'http', port: 80, path: '' }, 'health_check.path: must start with "/"'],
    [{ type: 'http', port: 80, path: 5 }, 'health_check.path: must be a string'],
    [
      { type: 'http', port: 80, path: '/a b' },
      'health_check.path: must be printable ASCII without spaces (percent-encode the rest)',
    ],
    [
      { type: 'http', port: 80, path: '/caf\u00e9' },
      'health_check.path: must be printable ASCII without spaces (percent-encode the rest)',
    ],
    [
      { type: 'http', port: 80, path: `/${'a'.repeat(2048)}` },
      'health_check.path: must be at most 2048 characters',
    ],
    [{ type: 'tcp', port: 80, path: '/' }, 'health_check.path: not allowed for tcp checks'],
    [{ type: 'http', port: 80, command: 'true' }, 'health_check.command: not allowed for http checks'],
    [{ type: 'tcp', port: 80, args: [] }, 'health_check.args: not allowed for tcp checks'],
    [{ type: 'exec', command: 'true', port: 80 }, 'health_check.port: not allowed for exec checks'],
    [{ type: 'exec' }, 'health_check.command: required for exec checks'],
    [{ type: 'exec', command: '' }, 'health_check.command: must not be empty'],
    [{ type: 'exec', command: ['true'] }, 'health_check.command: must be a string'],
    [{ type: 'exec', command: 'tr\0ue' }, 'health_check.command: must not contain NUL'],
    [{ type: 'exec', command: 'true', args: '-q' }, 'health_check.args: must be an array of strings'],
    [{ type: 'exec', command: 'true', args: ['-q', 1] }, 'health_check.args[1]: must be a string'],
    [{ type: 'exec', command: 'true', args: ['\0'] }, 'health_check.args[0]: must not contain NUL'],
    [
      { type: 'tcp', port: 80, initial_delay_ms: -1 },
      `health_check.initial_delay_ms: ${ms} 0 to 86400000 (a day)`,
    ],
    [{ type: 'tcp', port: 80, interval_ms: 0 }, `health_check.interval_ms: ${ms} 1 to 86400000 (a day)`],
    [
      { type: 'tcp', port: 80, interval_ms: 86_400_001 },
      `health_check.interval_ms: ${ms} 1 to 86400000 (a day)`,
    ],
    [{ type: 'tcp', port: 80, timeout_ms: 1.5 }, `health_check.timeout_ms: ${ms} 1 to 86400000 (a day)`],
    [{ type: 'tcp', port: 80, timeout_ms: '500' }, `health_check.timeout_ms: ${ms} 1 to 86400000 (a day)`],
    [
      { type: 'tcp', port: 80, timeout_ms: Number.NaN },
      `health_check.timeout_ms: ${ms} 1 to 86400000 (a day)`,
    ],
    [
      { type: 'tcp', port: 80, failure_threshold: 0 },
      'health_check.failure_threshold: must be an integer from 1 to 1000',
    ],
    [
      { type: 'tcp', port: 80, failure_threshold: 1001 },
      'health_check.failure_threshold: must be an integer from 1 to 1000',
    ],
  ];
  test('invalid: each field wrong names that field', () => {
    for (const [raw, message] of invalid) {
      assert.throws(
        () => normaliseHealthCheck(raw),
        (error: unknown) => {
          assert.ok(error instanceof SandboxError, `${JSON.stringify(raw)} throws a SandboxError`);
          assert.equal(error.kind, 'invalid_argument');
          assert.equal(error.message, message, JSON.stringify(raw));
          return true;
        },
      );
    }
  });
});

describe('health check: one probe', () => {
  test('http: 200 is healthy, the path and query are asked for, and the connection is not kept', async (t) => {
    const urls: string[] = [];
    const local = await httpServer((req, res) => {
      urls.push(req.url ?? '');
      res.end('ok');
    });
    t.after(() => local.close());
    assert.deepEqual(await probe(check({ type: 'http', port: local.port, path: '/health?deep=1' })), {
      ok: true,
    });
    assert.deepEqual(urls, ['/health?deep=1']);
    await within(Promise.all(local.sockets.map(closed)), 'the connection closes');
  });

  test('http: a redirect is healthy and not followed', async (t) => {
    const urls: string[] = [];
    const local = await httpServer((req, res) => {
      urls.push(req.url ?? '');
      res.writeHead(302, { location: '/elsewhere' }).end();
    });
    t.after(() => local.close());
    assert.deepEqual(await probe(check({ type: 'http', port: local.port })), { ok: true });
    assert.deepEqual(urls, ['/']);
  });

  test('http: 503 is unhealthy, and says so', async (t) => {
    const local = await httpServer((_req, res) => {
      res.statusCode = 503;
      res.end('not yet');
    });
    t.after(() => local.close());
    assert.deepEqual(await probe(check({ type: 'http', port: local.port, path: '/ready' })), {
      ok: false,
      reason: `http GET 127.0.0.1:${local.port}/ready answered 503`,
    });
  });

  test('http: no answer within the timeout fails, and the request is ended', async (t) => {
    const local = await httpServer(() => {});
    t.after(() => local.close());
    const started = performance.now();
    const result = await probe(check({ type: 'http', port: local.port, timeoutMs: 100 }));
    const elapsed = performance.now() - started;
    assert.deepEqual(result, {
      ok: false,
      reason: `http GET 127.0.0.1:${local.port}/ timed out after 100 ms`,
    });
    assert.ok(elapsed >= 95 && elapsed < 1000, `settled after ${elapsed} ms`);
    await within(Promise.all(local.sockets.map(closed)), 'the connection closes');
  });

  test('http: a body that never ends does not hold the outcome, and is cut at the timeout', async (t) => {
    const local = await httpServer((_req, res) => {
      res.writeHead(200);
      res.write('streaming…');
    });
    t.after(() => local.close());
    const started = performance.now();
    assert.deepEqual(await probe(check({ type: 'http', port: local.port, timeoutMs: 150 })), { ok: true });
    assert.ok(performance.now() - started < 150, 'known with the status line');
    await within(Promise.all(local.sockets.map(closed)), 'the connection closes at the timeout');
    assert.ok(performance.now() - started >= 140, 'the body is drained until the timeout');
  });

  test('http and tcp: a port nothing listens on is refused', async () => {
    const port = await refusedPort();
    assert.deepEqual(await probe(check({ type: 'http', port })), {
      ok: false,
      reason: `http GET 127.0.0.1:${port}/ refused`,
    });
    assert.deepEqual(await probe(check({ type: 'tcp', port })), {
      ok: false,
      reason: `tcp 127.0.0.1:${port} refused`,
    });
  });

  test('tcp: a listening port is healthy, and the connection is closed', async (t) => {
    const local = await listen(createTcpServer());
    t.after(() => local.close());
    assert.deepEqual(await probe(check({ type: 'tcp', port: local.port })), { ok: true });
    await within(
      (async () => {
        while (local.sockets.length === 0) await once(local.server, 'connection');
        await closed(local.sockets[0] as Socket);
      })(),
      'the connection is made and closed',
    );
  });

  test('an abort ends a probe at once', async (t) => {
    const local = await httpServer(() => {});
    t.after(() => local.close());
    const abort = new AbortController();
    local.server.once('request', () => abort.abort());
    const result = await within(
      probe(check({ type: 'http', port: local.port, timeoutMs: 60_000 }), { signal: abort.signal }),
      'the aborted probe settles',
    );
    assert.deepEqual(result, { ok: false, reason: 'aborted' });
    await within(Promise.all(local.sockets.map(closed)), 'the connection closes');
    assert.deepEqual(await probe(check({ type: 'tcp', port: local.port }), { signal: abort.signal }), {
      ok: false,
      reason: 'aborted',
    });
  });

  test('exec: exit 0 is healthy, another exit is not', async () => {
    const runCheck = spawnRunner();
    assert.deepEqual(await probe(check({ type: 'exec', command: 'true', args: [] }), { runCheck }), {
      ok: true,
    });
    assert.deepEqual(await probe(check({ type: 'exec', command: 'false', args: [] }), { runCheck }), {
      ok: false,
      reason: 'exec false exited 1',
    });
    assert.deepEqual(
      await probe(check({ type: 'exec', command: 'sh', args: ['-c', 'exit 7'] }), { runCheck }),
      {
        ok: false,
        reason: 'exec sh exited 7',
      },
    );
  });

  test('exec: a command that outlives the timeout fails, and is killed', async () => {
    const children: ChildProcess[] = [];
    const started = performance.now();
    const result = await probe(check({ type: 'exec', command: 'sleep', args: ['5'], timeoutMs: 100 }), {
      runCheck: spawnRunner(children),
    });
    assert.deepEqual(result, { ok: false, reason: 'exec sleep timed out after 100 ms' });
    assert.ok(performance.now() - started < 1000);
    const [child] = children;
    assert.ok(child);
    if (child.exitCode === null && child.signalCode === null)
      await within(once(child, 'exit'), 'sleep is killed');
    assert.equal(child.signalCode, 'SIGKILL');
  });

  test('exec: a command that cannot start, a runner that throws, and no runner', async () => {
    const missing = await probe(check({ type: 'exec', command: '/nonexistent/check', args: [] }), {
      runCheck: spawnRunner(),
    });
    assert.deepEqual(missing, { ok: false, reason: 'exec /nonexistent/check failed: ENOENT' });
    const throwing = await probe(check({ type: 'exec', command: 'x', args: [] }), {
      runCheck: () => {
        throw new Error('table full');
      },
    });
    assert.deepEqual(throwing, { ok: false, reason: 'exec x failed: table full' });
    assert.deepEqual(
      await probe(check({ type: 'exec', command: 'x', args: [] }), { runCheck: async () => false }),
      {
        ok: false,
        reason: 'exec x failed',
      },
    );
    assert.deepEqual(await probe(check({ type: 'exec', command: 'x', args: [] })), {
      ok: false,
      reason: 'exec x: no runner for exec checks',
    });
  });
});

describe('health monitor', () => {
  test('starting until the first success after the initial delay, then healthy', async (t) => {
    const local = await httpServer((_req, res) => res.end());
    t.after(() => local.close());
    let firstAt = 0;
    local.server.once('request', () => {
      firstAt = performance.now();
    });
    const { monitor, statuses, until } = watched(
      check({ type: 'http', port: local.port, initialDelayMs: 80 }),
    );
    const started = performance.now();
    monitor.start();
    assert.equal(monitor.status, 'starting');
    await until(() => monitor.probes >= 3, 'three probes');
    monitor.stop();
    assert.ok(firstAt - started >= 75, `the first probe waited the initial delay (${firstAt - started} ms)`);
    assert.deepEqual(statuses.slice(0, 3), ['healthy', 'healthy', 'healthy']);
    assert.deepEqual(monitor.state(), { status: 'healthy', consecutiveFailures: 0, probes: monitor.probes });
  });

  test('starting to unhealthy after the threshold, onUnhealthy called once with the reason', async (t) => {
    const local = await httpServer((_req, res) => {
      res.statusCode = 503;
      res.end();
    });
    t.after(() => local.close());
    const { monitor, statuses, unhealthy, until } = watched(check({ type: 'http', port: local.port }));
    monitor.start();
    await until(() => monitor.probes >= 5, 'five probes');
    monitor.stop();
    const reason = `http GET 127.0.0.1:${local.port}/ answered 503`;
    assert.deepEqual(statuses.slice(0, 5), ['starting', 'starting', 'unhealthy', 'unhealthy', 'unhealthy']);
    assert.deepEqual(unhealthy, [reason]);
    assert.equal(monitor.consecutiveFailures, monitor.probes);
    assert.equal(monitor.lastFailure, reason);
  });

  test('healthy, failures below and at the threshold, recovery, and a second crossing', async (t) => {
    let answer = 200;
    const local = await httpServer((_req, res) => {
      res.statusCode = answer;
      res.end();
    });
    t.after(() => local.close());
    const { monitor, statuses, unhealthy, until } = watched(
      check({ type: 'http', port: local.port, failureThreshold: 2 }),
    );
    monitor.start();
    await until(() => monitor.status === 'healthy', 'healthy');
    answer = 500;
    await until(() => monitor.consecutiveFailures === 1, 'one failure');
    assert.equal(monitor.status, 'healthy', 'one failure under the threshold leaves it healthy');
    await until(() => monitor.status === 'unhealthy', 'unhealthy');
    assert.equal(unhealthy.length, 1);
    answer = 204;
    await until(() => monitor.status === 'healthy', 'recovered');
    assert.equal(monitor.consecutiveFailures, 0, 'a success resets the count');
    assert.equal(
      monitor.lastFailure,
      `http GET 127.0.0.1:${local.port}/ answered 500`,
      'kept after recovery',
    );
    answer = 404;
    await until(() => monitor.status === 'unhealthy', 'unhealthy again');
    monitor.stop();
    assert.deepEqual(unhealthy, [
      `http GET 127.0.0.1:${local.port}/ answered 500`,
      `http GET 127.0.0.1:${local.port}/ answered 404`,
    ]);
    assert.ok(statuses.includes('unhealthy') && statuses.at(-1) === 'unhealthy');
  });

  test('probes never overlap: the next is due an interval after the previous finished', async () => {
    let running = 0;
    let most = 0;
    const spans: [number, number][] = [];
    const runCheck: RunCheck = async () => {
      running++;
      most = Math.max(most, running);
      const start = performance.now();
      await pause(30);
      spans.push([start, performance.now()]);
      running--;
      return true;
    };
    const { monitor, until } = watched(check({ type: 'exec', command: 'slow', intervalMs: 20 }), {
      runCheck,
    });
    monitor.start();
    await until(() => monitor.probes >= 4, 'four probes');
    monitor.stop();
    assert.equal(most, 1);
    for (let i = 1; i < spans.length; i++) {
      const gap = (spans[i] as [number, number])[0] - (spans[i - 1] as [number, number])[1];
      assert.ok(gap >= 10, `probe ${i} began ${gap} ms after the previous ended`);
    }
  });

  test('stop() aborts a probe under way and probes no more', async (t) => {
    const local = await httpServer(() => {});
    t.after(() => local.close());
    let requests = 0;
    local.server.on('request', () => requests++);
    const { monitor, results } = watched(check({ type: 'http', port: local.port, timeoutMs: 60_000 }));
    monitor.start();
    await within(once(local.server, 'request'), 'the first probe arrives');
    monitor.stop();
    await within(Promise.all(local.sockets.map(closed)), 'the probe is aborted');
    await pause(60);
    assert.equal(requests, 1);
    assert.deepEqual(results, [], 'an aborted probe is not recorded');
    assert.deepEqual(monitor.state(), { status: 'starting', consecutiveFailures: 0, probes: 0 });
    monitor.start();
    await pause(30);
    assert.equal(requests, 1, 'a stopped monitor does not start again');
  });

  test('stop() kills an exec probe under way; stop before the first probe probes nothing', async () => {
    const children: ChildProcess[] = [];
    const { monitor } = watched(check({ type: 'exec', command: 'sleep', args: ['5'], timeoutMs: 60_000 }), {
      runCheck: spawnRunner(children),
    });
    monitor.start();
    await within(
      (async () => {
        while (children.length === 0) await pause(5);
      })(),
      'the check starts',
    );
    monitor.stop();
    const [child] = children;
    assert.ok(child);
    if (child.exitCode === null && child.signalCode === null)
      await within(once(child, 'exit'), 'sleep is killed');
    assert.equal(child.signalCode, 'SIGKILL');

    let calls = 0;
    const early = new HealthMonitor(check({ type: 'exec', command: 'true', initialDelayMs: 20 }), {
      runCheck: async () => {
        calls++;
        return true;
      },
    }).start();
    early.stop();
    await pause(60);
    assert.equal(calls, 0);
  });

  test('an onUnhealthy that stops the monitor (a restart) ends its probing', async () => {
    let calls = 0;
    const { monitor, unhealthy } = watched(check({ type: 'exec', command: 'x', failureThreshold: 2 }), {
      runCheck: async () => {
        calls++;
        return 'exited 3';
      },
      onUnhealthy: () => monitor.stop(),
    });
    monitor.start();
    await within(
      (async () => {
        while (!monitor.isStopped) await pause(5);
      })(),
      'stopped by onUnhealthy',
    );
    await pause(40);
    assert.equal(calls, 2);
    assert.deepEqual(unhealthy, ['exec x exited 3']);
    assert.equal(monitor.status, 'unhealthy');
  });

  test('an exec check needs a runner', () => {
    assert.throws(() => new HealthMonitor(check({ type: 'exec', command: 'true' })), /needs a runCheck/);
  });
});
