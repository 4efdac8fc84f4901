import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cli } from './helpers/cli.ts';
import { useDaemon } from './helpers/daemon.ts';
import { runSdkScenario } from './helpers/tensorlake-sdk.ts';

// Managed processes as the SDK types them: health checks, waits, names, the last exit.

const daemon = useDaemon();

async function send(method: string, path: string, body?: unknown) {
  const response = await fetch(`${daemon.api}${path}`, {
    method,
    headers: { ...daemon.headers, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

const wait = (ref: string | number, until: string, timeoutMs = 20_000) =>
  send('GET', `/processes/${encodeURIComponent(ref)}/wait?until=${until}&timeout_ms=${timeoutMs}`);

test('through the tensorlake SDK: http and tcp health checks, waiting until healthy, an OOM kill in lastExit, names of any text', async () => {
  const seen = await runSdkScenario('tensorlake-managed-scenario.mjs', daemon);
  assert.equal(seen.failure, undefined, seen.failure);

  assert.deepEqual(seen.webStarted.healthCheck, {
    type: 'http',
    port: seen.webStarted.healthCheck.port,
    path: '/',
    initialDelayMs: 0,
    intervalMs: 50,
    timeoutMs: 500,
    failureThreshold: 3,
  });
  assert.equal(seen.webStarted.healthStatus, 'starting');
  assert.deepEqual(seen.webWait, { status: 200, health: 'healthy' });
  assert.equal(seen.webHealthy.healthStatus, 'healthy');
  assert.equal(seen.webHealthy.status, 'running');

  assert.deepEqual(seen.flakyFirstExit, { status: 200, processStatus: 'signaled' });
  assert.deepEqual(seen.flakyRestarted, { status: 200, newPid: true });
  assert.equal(seen.flakyInfo.restartCount, 1);
  assert.deepEqual(seen.flakyInfo.lastExit, { signal: 15, oomKilled: false });
  assert.match(
    seen.flakyInfo.lastError,
    new RegExp(`health check failed 2 times in a row: tcp 127.0.0.1:${seen.deadPort} refused`),
  );

  assert.equal(seen.hogStart, 201);
  assert.deepEqual(seen.hog, {
    status: 'oom_killed',
    isOomKilled: true,
    lastExit: { oomKilled: true, signal: 9 },
    lastError: 'killed by the kernel for memory (OOM)',
  });

  for (const name of ['web 1', 'café', 'a:b', '名前']) {
    assert.deepEqual(
      seen.names[name],
      { sameProcess: true, nameEchoed: name, signal: true, signaled: 15, killed: 9 },
      name,
    );
  }
  // The SDK refuses these itself, by the same rule, before asking (bad-input.test.ts sends them
  // to the daemon: 400 INVALID_REQUEST).
  assert.match(seen.badNames.digits.message, /must not be all digits/);
  assert.match(seen.badNames.slash.message, /must not contain '\/'/);
});

describe('health checks over REST', () => {
  test('an exec check: healthy once the command exits 0, and echoed with its defaults', async () => {
    const marker = `/tmp/sandboxd-exec-check-${process.pid}`;
    const started = await send('POST', '/processes', {
      command: 'sh',
      args: ['-c', `touch ${marker}; exec sleep 1000`],
      health_check: {
        type: 'exec',
        command: 'test',
        args: ['-e', marker],
        initial_delay_ms: 0,
        interval_ms: 20,
      },
    });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const { pid } = started.body;
    try {
      assert.deepEqual(started.body.managed.health_check, {
        type: 'exec',
        command: 'test',
        args: ['-e', marker],
        initial_delay_ms: 0,
        interval_ms: 20,
        timeout_ms: 500,
        failure_threshold: 3,
      });
      const healthy = await wait(pid, 'healthy');
      assert.equal(healthy.status, 200);
      assert.equal(healthy.body.managed.health_status, 'healthy');
      assert.equal(healthy.body.managed.consecutive_health_failures, 0);
    } finally {
      await send('DELETE', `/processes/${pid}`);
      await send('POST', '/processes', { command: 'rm', args: ['-f', marker] });
    }
  });

  test('under policy never an unhealthy process keeps running, marked unhealthy, with the reason', async () => {
    const started = await send('POST', '/processes', {
      command: 'sleep',
      args: ['1000'],
      health_check: {
        type: 'exec',
        command: 'false',
        initial_delay_ms: 0,
        interval_ms: 20,
        failure_threshold: 2,
      },
    });
    assert.equal(started.status, 201);
    const { pid } = started.body;
    try {
      // It never becomes healthy: the wait runs out.
      const waited = await wait(pid, 'healthy', 300);
      assert.equal(waited.status, 408);
      assert.equal(waited.body.code, 'REQUEST_TIMEOUT');
      const info = (await send('GET', `/processes/${pid}`)).body;
      assert.equal(info.status, 'running');
      assert.equal(info.managed.health_status, 'unhealthy');
      assert.ok(info.managed.consecutive_health_failures >= 2);
      assert.match(info.managed.last_error, /^health check failed 2 times in a row: exec false exited 1$/);
    } finally {
      await send('DELETE', `/processes/${pid}`);
    }
  });

  const invalid: [what: string, check: unknown, message: RegExp][] = [
    ['an unknown type', { type: 'udp', port: 1 }, /health_check/],
    ['no port for http', { type: 'http' }, /health_check\.port: required for http checks/],
    ['a port out of range', { type: 'tcp', port: 70000 }, /health_check\.port/],
    ['a path without /', { type: 'http', port: 80, path: 'x' }, /health_check\.path/],
    ['exec without a command', { type: 'exec' }, /health_check\.command/],
    ['a threshold of 0', { type: 'tcp', port: 80, failure_threshold: 0 }, /health_check\.failure_threshold/],
  ];
  for (const [what, check, message] of invalid) {
    test(`400 INVALID_REQUEST for ${what}, and nothing starts`, async () => {
      const before = (await send('GET', '/processes')).body.processes.length;
      const response = await send('POST', '/processes', {
        command: 'sleep',
        args: ['1000'],
        health_check: check,
      });
      assert.equal(response.status, 400);
      assert.equal(response.body.code, 'INVALID_REQUEST');
      assert.match(response.body.error, message);
      assert.equal((await send('GET', '/processes')).body.processes.length, before);
    });
  }
});

describe('waiting for a process', () => {
  test('until exited answers with the ended process; until running at once for a running one', async () => {
    const started = await send('POST', '/processes', {
      command: 'sh',
      args: ['-c', 'read line; exit 3'],
      stdin_mode: 'pipe',
    });
    const { pid } = started.body;
    const running = await wait(pid, 'running');
    assert.equal(running.status, 200);
    assert.equal(running.body.status, 'running');
    const exited = wait(pid, 'exited');
    await send('POST', `/processes/${pid}/stdin/close`);
    const ended = await exited;
    assert.equal(ended.status, 200);
    assert.deepEqual([ended.body.status, ended.body.exit_code], ['exited', 3]);
  });

  test('a state that cannot come is 400; healthy without a check is 400; bad queries are 400; unknown is 404', async () => {
    const started = await send('POST', '/processes', { command: 'true' });
    const { pid } = started.body;
    await wait(pid, 'exited');
    const never = await wait(pid, 'running');
    assert.deepEqual([never.status, never.body.code], [400, 'PROCESS_NOT_RUNNING']);
    const noCheck = await wait(pid, 'healthy');
    assert.deepEqual([noCheck.status, noCheck.body.code], [400, 'INVALID_REQUEST']);
    const badUntil = await send('GET', `/processes/${pid}/wait?until=asleep`);
    assert.deepEqual([badUntil.status, badUntil.body.code], [400, 'INVALID_REQUEST']);
    const badTimeout = await send('GET', `/processes/${pid}/wait?timeout_ms=-1`);
    assert.deepEqual([badTimeout.status, badTimeout.body.code], [400, 'INVALID_REQUEST']);
    const unknown = await wait('no such name', 'exited');
    assert.deepEqual([unknown.status, unknown.body.code], [404, 'NOT_FOUND']);
  });
});

describe('the CLI', () => {
  test('sandboxd wait NAME --healthy: 0 once healthy; --timeout ran out: 1; ps shows managed status and health', async () => {
    const started = await send('POST', '/processes', {
      command: 'sleep',
      args: ['1000'],
      name: 'cli db',
      health_check: { type: 'exec', command: 'true', initial_delay_ms: 0, interval_ms: 20 },
    });
    const never = await send('POST', '/processes', {
      command: 'sleep',
      args: ['1000'],
      health_check: { type: 'exec', command: 'false', initial_delay_ms: 0, interval_ms: 20 },
    });
    try {
      const healthy = await cli(['wait', 'cli db', '--healthy'], { daemon });
      assert.deepEqual(
        [healthy.code, healthy.stdout],
        [0, `process ${started.body.pid} (cli db) is healthy\n`],
      );
      const late = await cli(['wait', String(never.body.pid), '--healthy', '--timeout', '200'], { daemon });
      assert.equal(late.code, 1);
      assert.match(late.stderr, new RegExp(`process ${never.body.pid} was not healthy within 200 ms`));
      const table = await cli(['ps'], { daemon });
      const row = table.stdout.split('\n').find((line) => line.startsWith(`${started.body.pid} `));
      assert.match(row ?? '', /cli db\s+running\s+-\s+running\s+healthy\s/);
    } finally {
      await send('DELETE', `/processes/${started.body.pid}`);
      await send('DELETE', `/processes/${never.body.pid}`);
    }
  });
});
