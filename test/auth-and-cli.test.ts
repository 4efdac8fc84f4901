import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { type ProcessInfo, restClient } from './helpers/api.ts';
import { eventually, isAlive, ROOT, startDaemon, type TestDaemon, useDaemon } from './helpers/daemon.ts';

const TOKEN = 'secret';

interface Answer {
  status: number;
  text: string;
}

/** One request straight to the daemon, with exactly the headers given (no token unless given). */
async function request(
  daemon: TestDaemon,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<Answer> {
  const response = await fetch(`${daemon.url}${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, text: await response.text() };
}

/** 401 with the REST dialect's error shape, and nothing in it that helps a guesser. */
function assertUnauthorized(answer: Answer, token: string): void {
  assert.equal(answer.status, 401, answer.text);
  const body = JSON.parse(answer.text) as { error?: unknown; code?: unknown };
  assert.equal(body.code, 'UNAUTHORIZED');
  assert.equal(typeof body.error, 'string');
  assert.notEqual(body.error, '');
  assert.ok(!answer.text.includes(token), 'the answer must not echo the token');
}

/** Starts `body`, follows its output to the end, deletes it; returns the lines. */
async function runToEnd(daemon: TestDaemon, body: Record<string, unknown>): Promise<string[]> {
  const client = restClient(daemon);
  const { pid } = await client.start(body);
  try {
    const { lines, eof } = await client.follow(pid);
    assert.equal(eof, true);
    return lines.map((l) => l.line);
  } finally {
    await client.kill(pid);
  }
}

/**
 * Stops the daemon the way an operator would (SIGTERM) and returns its exit code; a daemon that
 * has not exited after `ms` is SIGKILLed (exit code null), so that a hang fails instead of blocking.
 */
async function stopWithin(daemon: TestDaemon, ms = 10_000): Promise<number | null> {
  const hung = setTimeout(() => daemon.child.kill('SIGKILL'), ms);
  try {
    return await daemon.stop();
  } finally {
    clearTimeout(hung);
  }
}

describe('a daemon started with --token secret', () => {
  const daemon = useDaemon({ args: ['--token', TOKEN], stop: stopWithin });

  test('a request without a token is 401 UNAUTHORIZED', async () => {
    assertUnauthorized(await request(daemon, 'GET', '/api/v1/processes'), TOKEN);
  });

  test('without a token no route answers, and refused requests start nothing', async () => {
    const refused: [string, string, unknown][] = [
      ['GET', '/api/v1/info', undefined],
      ['GET', '/api/v1/processes/1', undefined],
      ['GET', '/api/v1/processes/1/output/follow', undefined],
      ['GET', '/api/v1/no-such-route', undefined],
      ['POST', '/api/v1/health', undefined],
      ['POST', '/api/v1/processes', { command: 'sleep', args: ['4321'] }],
      ['POST', '/api/v1/processes/run', { command: 'sleep', args: ['4322'] }],
    ];
    for (const [method, path, body] of refused) {
      assertUnauthorized(await request(daemon, method, path, {}, body), TOKEN);
    }
    const { processes } = (await restClient(daemon).call('GET', '/processes')).body as {
      processes: ProcessInfo[];
    };
    assert.deepEqual(
      processes.filter((p) => p.command === 'sleep'),
      [],
    );
  });

  const wrongCredentials: [string, Record<string, string>][] = [
    ['a wrong Bearer token', { authorization: 'Bearer wrong' }],
    ['a Bearer token with the right prefix', { authorization: `Bearer ${TOKEN.slice(0, -1)}` }],
    ['a Bearer token with extra characters', { authorization: `Bearer ${TOKEN}x` }],
    ['the token without the Bearer scheme', { authorization: TOKEN }],
    ['the token as Basic credentials', { authorization: `Basic ${Buffer.from(TOKEN).toString('base64')}` }],
    ['a wrong X-Access-Token', { 'x-access-token': 'wrong' }],
    ['an empty X-Access-Token', { 'x-access-token': '' }],
  ];
  for (const [what, headers] of wrongCredentials) {
    test(`${what} is 401 UNAUTHORIZED`, async () => {
      assertUnauthorized(await request(daemon, 'GET', '/api/v1/processes', headers), TOKEN);
    });
  }

  test('X-Access-Token: secret is accepted (200), for JSON routes and SSE alike', async () => {
    const headers = { 'x-access-token': TOKEN };
    const list = await request(daemon, 'GET', '/api/v1/processes', headers);
    assert.equal(list.status, 200, list.text);
    const started = await request(daemon, 'POST', '/api/v1/processes', headers, {
      command: 'echo',
      args: ['via x-access-token'],
    });
    assert.equal(started.status, 201, started.text);
    const { pid } = JSON.parse(started.text) as ProcessInfo;
    try {
      const follow = await request(daemon, 'GET', `/api/v1/processes/${pid}/output/follow`, headers);
      assert.equal(follow.status, 200);
      assert.match(follow.text, /via x-access-token/);
    } finally {
      assert.equal((await request(daemon, 'DELETE', `/api/v1/processes/${pid}`, headers)).status, 204);
    }
  });

  test('Authorization: Bearer secret is accepted (200)', async () => {
    const answer = await request(daemon, 'GET', '/api/v1/processes', { authorization: `Bearer ${TOKEN}` });
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(await runToEnd(daemon, { command: 'echo', args: ['via bearer'] }), ['via bearer']);
  });

  test('GET /api/v1/health needs no token', async () => {
    const answer = await request(daemon, 'GET', '/api/v1/health');
    assert.equal(answer.status, 200);
    assert.deepEqual(JSON.parse(answer.text), { healthy: true });
  });

  test("GET /health (envd's health check) needs no token either", async () => {
    const answer = await request(daemon, 'GET', '/health');
    assert.ok(answer.status >= 200 && answer.status < 300, `got ${answer.status}`);
  });
});

describe('a daemon given its token in SANDBOXD_TOKEN', () => {
  const envToken = 'env-token-5f3a9c';
  const marker = 'inherited-from-the-daemon';
  const daemon = useDaemon({
    env: { SANDBOXD_TOKEN: envToken, SANDBOXD_TEST_MARKER: marker },
    stop: stopWithin,
  });

  test('works like --token: 401 without it, 200 with either header', async () => {
    assertUnauthorized(await request(daemon, 'GET', '/api/v1/processes'), envToken);
    assertUnauthorized(
      await request(daemon, 'GET', '/api/v1/processes', { authorization: 'Bearer wrong' }),
      envToken,
    );
    const bearer = await request(daemon, 'GET', '/api/v1/processes', { authorization: `Bearer ${envToken}` });
    assert.equal(bearer.status, 200);
    const access = await request(daemon, 'GET', '/api/v1/processes', { 'x-access-token': envToken });
    assert.equal(access.status, 200);
    assert.equal((await request(daemon, 'GET', '/api/v1/health')).status, 200);
  });

  test('a started process does not see SANDBOXD_TOKEN in its environment', async () => {
    const lines = await runToEnd(daemon, { command: 'env' });
    // The rest of the daemon's environment does reach it: this is the daemon's env, minus the secret.
    assert.ok(lines.includes(`SANDBOXD_TEST_MARKER=${marker}`), lines.join('\n'));
    assert.deepEqual(
      lines.filter((line) => line.startsWith('SANDBOXD_TOKEN=')),
      [],
    );
    assert.deepEqual(
      lines.filter((line) => line.includes(envToken)),
      [],
    );
  });

  test("envd's GET /envs (the processes' base environment) does not reveal it either", async () => {
    const answer = await request(daemon, 'GET', '/envs', { authorization: `Bearer ${envToken}` });
    assert.equal(answer.status, 200);
    const env = JSON.parse(answer.text) as Record<string, string>;
    assert.equal(env.SANDBOXD_TEST_MARKER, marker);
    assert.equal(env.SANDBOXD_TOKEN, undefined);
    assert.ok(!answer.text.includes(envToken));
  });
});

interface CliOutcome {
  code: number | null;
  output: string;
  listened: boolean;
}

/**
 * Runs the CLI until it exits. Should it start listening instead, it is stopped (SIGTERM)
 * and reported as `listened`, so that a test expecting a refusal fails instead of hanging.
 */
function runCli(args: string[], env: Record<string, string | undefined>): Promise<CliOutcome> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let listened = false;
  // Neither refusing nor listening within this long is a failure too (the exit code is then null).
  const hung = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const onOutput = (chunk: Buffer) => {
    output += chunk.toString();
    if (!listened && /listening on/.test(output)) {
      listened = true;
      child.kill('SIGTERM');
    }
  };
  child.stdout.on('data', onOutput);
  child.stderr.on('data', onOutput);
  // 'close' comes after the exit and after both output streams have ended.
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(hung);
      resolve({ code, output, listened });
    }),
  );
}

/** This process's environment without a token, whatever the shell running the tests had set. */
function envWithoutToken(): Record<string, string | undefined> {
  const { SANDBOXD_TOKEN: _ignored, ...rest } = process.env;
  return rest;
}

describe('CLI: listening beyond loopback', () => {
  test('serve --host 0.0.0.0 without a token exits non-zero, saying a token is needed', async () => {
    const outcome = await runCli(['serve', '--host', '0.0.0.0', '--port', '0'], envWithoutToken());
    assert.equal(outcome.listened, false, `it must not start listening:\n${outcome.output}`);
    assert.notEqual(outcome.code, 0);
    assert.notEqual(outcome.code, null);
    assert.match(outcome.output, /token/i);
  });

  test('an empty SANDBOXD_TOKEN counts as no token: serve --host 0.0.0.0 is still refused', async () => {
    const env = { ...envWithoutToken(), SANDBOXD_TOKEN: '' };
    const outcome = await runCli(['serve', '--host', '0.0.0.0', '--port', '0'], env);
    assert.equal(outcome.listened, false, `it must not start listening:\n${outcome.output}`);
    assert.notEqual(outcome.code, 0);
    assert.match(outcome.output, /token/i);
  });

  test('serve --host 0.0.0.0 --insecure starts, serves without a token, and stops with 0', async () => {
    const daemon = await startDaemon(['--host', '0.0.0.0', '--insecure']);
    try {
      const { port, hostname } = new URL(daemon.url);
      assert.equal(hostname, '0.0.0.0');
      const response = await fetch(`http://127.0.0.1:${port}/api/v1/health`);
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { healthy: true });
    } finally {
      assert.equal(await stopWithin(daemon), 0);
    }
  });
});

/** SIGKILLs whatever of `pids` is still alive: cleanup for when the daemon failed to. */
function killLeftovers(pids: number[]): void {
  for (const pid of pids) {
    if (!isAlive(pid)) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
}

/** Starts a shell script through the API and waits until it has printed `lines` lines (pids). */
async function startAndRead(
  daemon: TestDaemon,
  script: string[],
  lines: number,
): Promise<[number, number[]]> {
  const client = restClient(daemon);
  const { pid } = await client.start({ command: 'sh', args: ['-c', ...script] });
  const printed = await client.follow(pid, { stopAfter: lines });
  assert.equal(printed.lines.length, lines, JSON.stringify(printed));
  return [pid, printed.lines.map((l) => Number(l.line))];
}

describe('graceful shutdown', () => {
  test('SIGTERM to the daemon: exit code 0, and neither the shell nor its children survive', async () => {
    const daemon = await startDaemon();
    const pids: number[] = [];
    try {
      const script = 'sleep 1000 & echo $!; sleep 1000 & echo $!; wait';
      const [shell, children] = await startAndRead(daemon, [script], 2);
      pids.push(shell, ...children);
      for (const pid of pids) assert.equal(isAlive(pid), true, `pid ${pid} should run before the stop`);

      assert.equal(await stopWithin(daemon), 0);
      await eventually(() => pids.every((pid) => !isAlive(pid)), 2000);
    } finally {
      await stopWithin(daemon);
      killLeftovers(pids);
    }
  });

  test('SIGTERM to the daemon also ends what a finished process left running in its group', async () => {
    const daemon = await startDaemon();
    const pids: number[] = [];
    try {
      const client = restClient(daemon);
      const { pid } = await client.start({ command: 'sh', args: ['-c', 'sleep 1000 & echo $!'] });
      const { lines } = await client.follow(pid);
      const orphan = Number(lines[0]?.line);
      pids.push(orphan);
      assert.equal((await client.get(pid)).status, 'exited');
      assert.equal(isAlive(orphan), true);

      assert.equal(await stopWithin(daemon), 0);
      await eventually(() => !isAlive(orphan), 2000);
    } finally {
      await stopWithin(daemon);
      killLeftovers(pids);
    }
  });

  test('shutdown sends SIGTERM first: a TERM handler runs, and the grace is not waited out', async () => {
    const daemon = await startDaemon();
    const dir = await mkdtemp(join(tmpdir(), 'sandboxd-shutdown-'));
    const markerFile = join(dir, 'terminated');
    const pids: number[] = [];
    try {
      // $0 is the marker file; the trap runs when TERM interrupts `wait`.
      const script = 'trap \'echo TERM > "$0"; exit 0\' TERM; sleep 1000 & echo $!; wait';
      const [shell, children] = await startAndRead(daemon, [script, markerFile], 1);
      pids.push(shell, ...children);

      const stoppingAt = Date.now();
      assert.equal(await stopWithin(daemon), 0);
      const took = Date.now() - stoppingAt;
      assert.equal((await readFile(markerFile, 'utf8')).trim(), 'TERM');
      // The default grace is 10 s; processes that end on TERM must not make shutdown wait for it.
      assert.ok(took < 5000, `shutdown took ${took} ms`);
      await eventually(() => pids.every((pid) => !isAlive(pid)), 2000);
    } finally {
      await stopWithin(daemon);
      killLeftovers(pids);
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a process group that ignores SIGTERM is SIGKILLed after --shutdown-grace-ms', async () => {
    const graceMs = 300;
    const daemon = await startDaemon(['--shutdown-grace-ms', String(graceMs)]);
    const pids: number[] = [];
    try {
      // The ignored TERM is inherited by the background sleep too.
      const [shell, children] = await startAndRead(daemon, ['trap "" TERM; sleep 1000 & echo $!; wait'], 1);
      pids.push(shell, ...children);
      for (const pid of pids) assert.equal(isAlive(pid), true);

      const stoppingAt = Date.now();
      assert.equal(await stopWithin(daemon), 0);
      const took = Date.now() - stoppingAt;
      // It waited for the grace (TERM did nothing), and not for the 10 s default.
      assert.ok(took >= graceMs - 50, `shutdown took only ${took} ms`);
      assert.ok(took < 5000, `shutdown took ${took} ms`);
      await eventually(() => pids.every((pid) => !isAlive(pid)), 2000);
    } finally {
      await stopWithin(daemon);
      killLeftovers(pids);
    }
  });
});
