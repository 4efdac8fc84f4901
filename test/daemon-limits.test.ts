import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { restClient } from './helpers/api.ts';
import { diskBytes, eventually, ROOT, startDaemon } from './helpers/daemon.ts';

/** Opens a TCP connection that sends nothing. */
async function idleConnection(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await once(socket, 'connect');
  return socket;
}

/** Everything a connection receives until the daemon closes it. */
async function received(socket: Socket): Promise<string> {
  let text = '';
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  await once(socket, 'close');
  return text;
}

describe('retention', () => {
  test('finished processes are capped by count, the newest kept, whatever their age', async () => {
    const daemon = await startDaemon(['--max-finished', '5']);
    try {
      const rest = restClient(daemon);
      const pids: number[] = [];
      for (let i = 0; i < 12; i++) {
        const { pid } = await rest.start({ command: 'true' });
        await rest.waitForEnd(pid);
        pids.push(pid);
      }
      const { processes } = (await rest.call('GET', '/processes')).body as { processes: { pid: number }[] };
      assert.deepEqual(
        processes.map((p) => p.pid),
        pids.slice(-5),
      );
      assert.equal((await rest.call('GET', `/processes/${pids[0]}`)).status, 404);
    } finally {
      await daemon.stop();
    }
  });

  test('a managed process restarting in a loop keeps a bounded history', async () => {
    const daemon = await startDaemon();
    const rest = restClient(daemon);
    try {
      await rest.start({
        command: 'sh',
        args: ['-c', 'exit 3'],
        name: 'flapping',
        restart: { policy: 'always', initial_backoff_ms: 1, max_backoff_ms: 1 },
      });
      await eventually(async () => ((await rest.get('flapping')).managed?.restart_count ?? 0) >= 40, 20_000);
      const { processes } = (await rest.call('GET', '/processes')).body as {
        processes: { name?: string; started_at: number }[];
      };
      const kept = processes.filter((p) => p.name === 'flapping');
      const incarnations = kept.length;
      // However small the backoff asked for, starts come at least 20 ms apart.
      const starts = kept.map((p) => p.started_at).sort((a, b) => a - b);
      for (let i = 1; i < starts.length; i++)
        assert.ok((starts[i] as number) - (starts[i - 1] as number) >= 20);
      // The current one, the last ten finished, and the few that exited a moment ago and whose
      // output is still draining: not the 40 and more it went through.
      assert.ok(incarnations <= 15, `${incarnations} incarnations are kept`);
    } finally {
      await rest.kill('flapping');
      await daemon.stop();
    }
  });

  test('spill files are capped daemon-wide: finished processes go first, oldest first', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'sandboxd-spill-cap-'));
    const MiB = 1024 * 1024;
    const daemon = await startDaemon([
      '--data-dir',
      dataDir,
      '--output-memory-bytes',
      '65536',
      '--output-max-bytes',
      String(MiB),
      '--spill-max-bytes',
      String(2 * MiB),
    ]);
    try {
      const rest = restClient(daemon);
      const pids: number[] = [];
      for (let i = 0; i < 5; i++) {
        const { pid } = await rest.start({
          command: 'sh',
          args: ['-c', 'head -c 900000 /dev/zero | tr "\\0" x'],
        });
        await rest.waitForEnd(pid);
        pids.push(pid);
      }
      await eventually(async () => (await diskBytes(dataDir)) <= 2 * MiB);
      assert.equal((await rest.call('GET', `/processes/${pids[0]}`)).status, 404, 'the oldest went');
      assert.equal((await rest.get(pids[4] as number)).status, 'exited', 'the newest stayed');
    } finally {
      await daemon.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('connections', () => {
  test('a connection that sends no whole request head in --headers-timeout-ms gets 408 and is closed', async () => {
    const daemon = await startDaemon(['--headers-timeout-ms', '300']);
    try {
      const silent = await idleConnection(daemon.url);
      const half = await idleConnection(daemon.url);
      half.write('GET /api/v1/health HTTP/1.1\r\nhost: x\r\n');
      const [silentText, halfText] = await Promise.all([received(silent), received(half)]);
      assert.match(silentText, /^HTTP\/1\.1 408/);
      assert.match(halfText, /^HTTP\/1\.1 408/);
      assert.equal((await fetch(`${daemon.api}/health`)).status, 200);
    } finally {
      await daemon.stop();
    }
  });

  test('beyond --max-connections a new connection is answered 503; freed ones make room', async () => {
    const daemon = await startDaemon(['--max-connections', '8', '--headers-timeout-ms', '60000']);
    try {
      const held = await Promise.all(Array.from({ length: 8 }, () => idleConnection(daemon.url)));
      const refused = await fetch(`${daemon.api}/health`, { headers: { connection: 'close' } });
      assert.equal(refused.status, 503);
      assert.equal(((await refused.json()) as { code: string }).code, 'UNAVAILABLE');
      for (const socket of held) socket.destroy();
      await eventually(
        async () =>
          (await fetch(`${daemon.api}/health`, { headers: { connection: 'close' } })).status === 200,
      );
    } finally {
      await daemon.stop();
    }
  });
});

describe('the token', () => {
  test('given on the command line, it is hidden from the process list, even from other users', async () => {
    const daemon = await startDaemon(['--token', 'argv-secret-4242']);
    try {
      const pid = daemon.child.pid as number;
      assert.ok(!(await readFile(`/proc/${pid}/cmdline`, 'utf8')).includes('argv-secret-4242'));
      const rest = restClient(daemon);
      // A process of another user reads the daemon's command line.
      const reader = await rest.start({ command: 'cat', args: [`/proc/${pid}/cmdline`], user: 'nobody' });
      await rest.waitForEnd(reader.pid);
      const seen = (await rest.lines(reader.pid, 'stdout')).join('\n');
      assert.ok(seen.includes('serve'), seen);
      assert.ok(!seen.includes('argv-secret-4242'));
    } finally {
      await daemon.stop();
    }
  });

  test('--token-file reads it from a file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sandboxd-token-'));
    await writeFile(join(dir, 'token'), 'file-secret-77\n', { mode: 0o600 });
    const daemon = await startDaemon(['--token-file', join(dir, 'token')]);
    try {
      assert.equal((await fetch(`${daemon.api}/processes`)).status, 401);
      const ok = await fetch(`${daemon.api}/processes`, {
        headers: { authorization: 'Bearer file-secret-77' },
      });
      assert.equal(ok.status, 200);
      assert.ok(!(await readFile(`/proc/${daemon.child.pid}/cmdline`, 'utf8')).includes('file-secret-77'));
    } finally {
      await daemon.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

test('a port that is taken: one line that says so, exit code 1, and nothing left in the temporary directory', async () => {
  const taken = createServer().listen(0, '127.0.0.1');
  await once(taken, 'listening');
  const port = (taken.address() as { port: number }).port;
  // Its own temporary directory, where the daemon would make its data directory.
  const temporary = await mkdtemp(join(tmpdir(), 'sandboxd-port-taken-'));
  try {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', 'serve', '--port', '0', '--envd', '--envd-port', String(port)],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: temporary } },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const [code] = await once(child, 'exit');
    assert.equal(code, 1);
    assert.equal(stderr.trim().split('\n').length, 1, stderr);
    assert.match(stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE`));
    // (tsx, which runs the daemon's source here, keeps its cache there too, and so does Node
    // its compile cache, from 22 on.)
    assert.deepEqual(
      (await readdir(temporary)).filter((name) => !name.startsWith('tsx-') && name !== 'node-compile-cache'),
      [],
    );
  } finally {
    taken.close();
    await rm(temporary, { recursive: true, force: true });
  }
});
