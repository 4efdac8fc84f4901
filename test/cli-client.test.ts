import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ProcessInfo, SandboxClient } from '../src/client/index.ts';
import { sandboxClient } from './helpers/api.ts';
import { CLI, cli, cliEnv, startCli, unusedPort } from './helpers/cli.ts';
import { CuttingProxy } from './helpers/cutting-proxy.ts';
import { eventually, isAlive, startDaemon, useDaemon } from './helpers/daemon.ts';

let client: SandboxClient;
const daemon = useDaemon({
  afterStart: () => {
    client = sandboxClient(daemon);
  },
});

/** The daemon's record of the one process started with exactly these arguments. */
async function processWithArgs(args: string[]): Promise<ProcessInfo | undefined> {
  return (await client.list()).find((p) => JSON.stringify(p.args) === JSON.stringify(args));
}

describe('sandboxd exec', () => {
  test("exec -- sh -c 'echo out; echo err >&2; exit 4': out on stdout, err on stderr, exit code 4", async () => {
    const result = await cli(['exec', '--', 'sh', '-c', 'echo out; echo err >&2; exit 4'], { daemon });
    assert.deepEqual(result, { code: 4, signal: null, stdout: 'out\n', stderr: 'err\n' });
  });

  test("printf 'a\\nb\\n' | exec -- cat prints both lines; stdin's EOF ends cat", async () => {
    const result = await cli(['exec', '--', 'cat'], { daemon, input: 'a\nb\n' });
    assert.deepEqual(result, { code: 0, signal: null, stdout: 'a\nb\n', stderr: '' });
  });

  test('several MiB through stdin and back arrive whole, in order', async () => {
    const lines = Array.from({ length: 100_000 }, (_, i) => `line ${i} ${'x'.repeat(i % 50)}`);
    const input = `${lines.join('\n')}\n`;
    const result = await cli(['exec', '--', 'cat'], { daemon, input });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.length, input.length);
    assert.ok(result.stdout === input, 'the output differs from the input');
  });

  test('SIGINT to exec of a sleep: it exits 130 and no remote process is left', async () => {
    const marker = ['1001.25'];
    const running = startCli(['exec', '--', 'sleep', ...marker], { daemon });
    let remote: ProcessInfo | undefined;
    // The remote start sends no event this side can wait for: poll the daemon's table.
    await eventually(async () => {
      remote = await processWithArgs(marker);
      return remote?.status === 'running';
    });
    running.child.kill('SIGINT');
    const result = await running.result;
    assert.equal(result.code, 130, result.stderr);
    const pid = (remote as ProcessInfo).pid;
    const info = await client.get(pid);
    assert.deepEqual([info.status, info.signal], ['signaled', 2]);
    assert.equal(isAlive(pid), false);
  });

  test('SIGTERM is passed on too, to the whole group: a child of the shell goes with it', async () => {
    const marker = ['-c', 'sleep 1002.5 & echo child=$!; wait'];
    const running = startCli(['exec', '--', 'sh', ...marker], { daemon });
    await running.waitFor('child=');
    const child = Number(/child=(\d+)/.exec(running.stdout)?.[1]);
    running.child.kill('SIGTERM');
    const result = await running.result;
    assert.equal(result.code, 128 + 15, result.stderr);
    await eventually(() => !isAlive(child));
  });

  test('-e, -w and --timeout: the environment and directory apply; a timeout is exit code 124', async () => {
    const result = await cli(
      ['exec', '-e', 'GREETING=hi there', '-w', '/tmp', '--', 'sh', '-c', 'echo "$GREETING" "$PWD"'],
      {
        daemon,
      },
    );
    assert.deepEqual([result.code, result.stdout], [0, 'hi there /tmp\n']);
    const timedOut = await cli(['exec', '--timeout', '0.3', '--', 'sleep', '1003.5'], { daemon });
    assert.equal(timedOut.code, 124);
    assert.match(timedOut.stderr, /sleep timed out after 0\.3 s and was killed/);
    const info = await processWithArgs(['1003.5']);
    assert.deepEqual([info?.status, info?.signal, info?.timed_out], ['signaled', 9, true]);
  });

  test('options after the command belong to it: exec ls -d /tmp', async () => {
    const result = await cli(['exec', 'ls', '-d', '/tmp'], { daemon });
    assert.deepEqual([result.code, result.stdout], [0, '/tmp\n']);
  });

  test('a command that is not found: exit code 127 and the reason', async () => {
    const result = await cli(['exec', '--', 'no-such-command-here'], { daemon });
    assert.equal(result.code, 127);
    assert.equal(result.stdout, '');
    assert.equal(result.stderr, "sandboxd: cannot start 'no-such-command-here': command not found\n");
  });

  test('exec | head: the remote command gets SIGPIPE, and exec exits 141 as a local one would', async () => {
    const command = [...CLI, 'exec', '--', 'yes', 'marker-1007'].map((word) => `'${word}'`).join(' ');
    const shell = spawn('bash', ['-c', `${command} | head -2; echo "exec exited \${PIPESTATUS[0]}"`], {
      env: cliEnv(daemon),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    shell.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    await once(shell, 'close');
    assert.equal(output, 'marker-1007\nmarker-1007\nexec exited 141\n');
    const info = await processWithArgs(['marker-1007']);
    await eventually(async () => (await client.get(info?.pid as number)).status !== 'running');
    assert.deepEqual(
      [(await client.get(info?.pid as number)).status, (await client.get(info?.pid as number)).signal],
      ['signaled', 13],
    );
  });
});

describe('sandboxd ps', () => {
  test('ps --json parses and lists a started process; ps shows it as a table row', async () => {
    const started = await client.start({ command: 'sleep', args: ['1004.5'] });
    try {
      const json = await cli(['ps', '--json'], { daemon });
      assert.equal(json.code, 0, json.stderr);
      const listed = (JSON.parse(json.stdout) as ProcessInfo[]).find((p) => p.pid === started.pid);
      assert.deepEqual([listed?.status, listed?.command, listed?.args], ['running', 'sleep', ['1004.5']]);

      const table = await cli(['ps'], { daemon });
      const [header, ...rows] = table.stdout.trimEnd().split('\n');
      assert.match(header as string, /^PID\s+NAME\s+STATUS\s+EXIT\s+MANAGED\s+HEALTH\s+AGE\s+COMMAND$/);
      const row = rows.find((r) => r.startsWith(`${started.pid} `));
      assert.match(row as string, /^\d+\s+-\s+running\s+-\s+-\s+-\s+\d+s\s+sleep 1004\.5$/);
    } finally {
      await client.kill(started.pid);
    }
  });
});

describe('sandboxd logs, signal, kill', () => {
  test('logs -f follows a process and ends when it ends', async () => {
    const started = await client.start({
      command: 'sh',
      args: ['-c', 'echo one; read x; echo two >&2'],
      stdin_mode: 'pipe',
    });
    const following = startCli(['logs', '-f', String(started.pid)], { daemon });
    await following.waitFor('one\n');
    await client.closeStdin(started.pid);
    const result = await following.result;
    assert.deepEqual(result, { code: 0, signal: null, stdout: 'one\ntwo\n', stderr: '' });
  });

  test('logs without -f prints the lines so far and returns; --after skips up to a line id', async () => {
    const started = await client.start({
      command: 'sh',
      args: ['-c', 'echo a; echo b; echo c'],
      name: 'abc',
    });
    let ids: number[] = [];
    for await (const lines of client.follow(started.pid)) ids = [...ids, ...lines.map((l) => l.id)];
    const all = await cli(['logs', 'abc'], { daemon });
    assert.deepEqual([all.code, all.stdout], [0, 'a\nb\nc\n']);
    const rest = await cli(['logs', '--after', String(ids[0]), 'abc'], { daemon });
    assert.equal(rest.stdout, 'b\nc\n');
    const followed = await cli(['logs', '-f', '--after', String(ids[1]), String(started.pid)], { daemon });
    assert.equal(followed.stdout, 'c\n');
    await client.kill('abc');
  });

  test('logs -f whose connection is cut mid-stream resumes: every line exactly once', async () => {
    const script =
      'for i in $(seq 1 100); do echo line-$i; done; read x; for i in $(seq 101 200); do echo line-$i; done';
    const started = await client.start({ command: 'sh', args: ['-c', script], stdin_mode: 'pipe' });
    const proxy = await CuttingProxy.start(daemon.url, '"line-30"');
    try {
      const following = startCli(['logs', '-f', String(started.pid)], {
        daemon,
        env: { SANDBOXD_URL: proxy.url },
      });
      await proxy.cut;
      await following.waitFor('line-100\n');
      await client.closeStdin(started.pid);
      const result = await following.result;
      assert.equal(result.code, 0, result.stderr);
      const expected = Array.from({ length: 200 }, (_, i) => `line-${i + 1}`);
      assert.deepEqual(result.stdout.trimEnd().split('\n'), expected);
      assert.ok(proxy.requests.length >= 2, 'the follow never reconnected');
      assert.match(proxy.requests[1] as string, /^last-event-id: \d+\r$/im);
    } finally {
      await proxy.close();
      await client.kill(started.pid);
    }
  });

  test('signal by name takes TERM, SIGTERM and 15 alike; kill takes the group down', async () => {
    for (const spelling of ['TERM', 'SIGTERM', 'term', '15']) {
      const started = await client.start({ command: 'sleep', args: ['1005.5'], name: 'sleeper' });
      const result = await cli(['signal', 'sleeper', spelling], { daemon });
      assert.deepEqual([result.code, result.stderr], [0, ''], spelling);
      for await (const _ of client.follow(started.pid)) {
        // Until the end of its output: it has ended.
      }
      const info = await client.get(started.pid);
      assert.deepEqual([info.status, info.signal], ['signaled', 15], spelling);
    }
    const started = await client.start({ command: 'sleep', args: ['1006.5'] });
    const killed = await cli(['kill', String(started.pid)], { daemon });
    assert.equal(killed.code, 0, killed.stderr);
    for await (const _ of client.follow(started.pid)) {
      // Until it has ended.
    }
    assert.equal((await client.get(started.pid)).signal, 9);
  });
});

describe('sandboxd cp', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sandboxd-cp-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('several MiB up and back down arrive byte for byte', async () => {
    const original = randomBytes(7 * 1024 * 1024 + 123);
    await writeFile(join(dir, 'original.bin'), original);
    const remote = join(dir, 'sandbox', 'deeper', 'copy.bin');
    const up = await cli(['cp', join(dir, 'original.bin'), `:${remote}`], { daemon });
    assert.deepEqual([up.code, up.stdout, up.stderr], [0, '', '']);
    assert.ok((await readFile(remote)).equals(original), 'the upload differs');

    const down = await cli(['cp', `:${remote}`, join(dir, 'back.bin')], { daemon });
    assert.deepEqual([down.code, down.stderr], [0, '']);
    assert.ok((await readFile(join(dir, 'back.bin'))).equals(original), 'the download differs');
    // Nothing half-written is left beside it.
    assert.deepEqual((await readdir(dir)).sort(), ['back.bin', 'original.bin', 'sandbox']);
  });

  test('a directory destination gets the source name; - is stdin and stdout', async () => {
    await mkdir(join(dir, 'into'), { recursive: true });
    await writeFile(join(dir, 'named.txt'), 'named\n');
    assert.equal((await cli(['cp', join(dir, 'named.txt'), `:${join(dir, 'into')}`], { daemon })).code, 0);
    assert.equal(await readFile(join(dir, 'into', 'named.txt'), 'utf8'), 'named\n');
    assert.equal(
      (await cli(['cp', '-', `:${join(dir, 'piped.txt')}`], { daemon, input: 'from stdin\n' })).code,
      0,
    );
    const out = await cli(['cp', `:${join(dir, 'piped.txt')}`, '-'], { daemon });
    assert.deepEqual([out.code, out.stdout], [0, 'from stdin\n']);
  });

  test('a file missing on either side, or no side in the sandbox: said so', async () => {
    const missing = join(dir, 'no-such-file');
    const down = await cli(['cp', `:${missing}`, join(dir, 'x')], { daemon });
    assert.equal(down.code, 1);
    assert.equal(down.stderr, `sandboxd: no file ':${missing}' on the daemon at ${daemon.url}\n`);
    const up = await cli(['cp', missing, `:${join(dir, 'y')}`], { daemon });
    assert.deepEqual([up.code, up.stderr], [1, `sandboxd: no such file here: ${missing}\n`]);
    const local = await cli(['cp', missing, join(dir, 'z')], { daemon });
    assert.equal(local.code, 2);
    assert.match(local.stderr, /one side must be in the sandbox \(a path starting with :\)/);
  });
});

describe('errors a person can act on', () => {
  test('the daemon unreachable: the URL tried and what to set, exit code 1 (exec: 125)', async () => {
    const url = `http://127.0.0.1:${await unusedPort()}`;
    const ps = await cli(['ps', '--url', url]);
    assert.equal(ps.code, 1);
    assert.equal(
      ps.stderr,
      `sandboxd: cannot reach the daemon at ${url}: connection refused (is the daemon running, and on this port?)\n` +
        '  (set --url or SANDBOXD_URL to where the daemon listens)\n',
    );
    const exec = await cli(['exec', '--', 'true'], { env: { SANDBOXD_URL: url } });
    assert.equal(exec.code, 125);
    assert.match(exec.stderr, new RegExp(`cannot reach the daemon at ${url}`));
  });

  test('a daemon with a token: none given, or a wrong one, each said so', async () => {
    const guarded = await startDaemon(['--token', 'right-token']);
    try {
      const none = await cli(['ps'], { env: { SANDBOXD_URL: guarded.url } });
      assert.equal(none.code, 1);
      assert.equal(
        none.stderr,
        `sandboxd: the daemon at ${guarded.url} needs a token: pass --token or set SANDBOXD_TOKEN\n`,
      );
      const wrong = await cli(['exec', '--token', 'wrong-token', '--', 'true'], {
        env: { SANDBOXD_URL: guarded.url },
      });
      assert.equal(wrong.code, 125);
      assert.equal(
        wrong.stderr,
        `sandboxd: the daemon at ${guarded.url} refused the token: check --token or SANDBOXD_TOKEN\n`,
      );
      const right = await cli(['exec', '--', 'echo', 'in'], { daemon: guarded });
      assert.deepEqual([right.code, right.stdout], [0, 'in\n']);
    } finally {
      await guarded.stop();
    }
  });

  test('an unknown pid or name: which one, and where to look', async () => {
    for (const args of [
      ['logs', 'no-such-name'],
      ['logs', '-f', 'no-such-name'],
      ['signal', 'no-such-name', 'TERM'],
      ['kill', 'no-such-name'],
    ]) {
      const result = await cli(args, { daemon });
      assert.equal(result.code, 1, args.join(' '));
      assert.equal(
        result.stderr,
        `sandboxd: no process 'no-such-name' on the daemon at ${daemon.url} (\`sandboxd ps\` lists them)\n`,
        args.join(' '),
      );
    }
    const attach = await cli(['attach', '999999'], { daemon });
    assert.equal(attach.code, 1);
    assert.match(attach.stderr, /^sandboxd: no terminal session '999999' on the daemon at /);
  });

  test('bad arguments: an unknown signal name, a bad --url', async () => {
    const signal = await cli(['signal', '1', 'BOGUS'], { daemon });
    assert.notEqual(signal.code, 0);
    assert.match(signal.stderr, /'BOGUS' is not a signal: use a name such as TERM/);
    const url = await cli(['ps', '--url', 'localhost:9501']);
    assert.equal(url.code, 2);
    assert.match(url.stderr, /--url: 'localhost:9501' must start with http:\/\/ or https:\/\//);
  });
});

describe('help', () => {
  for (const command of [
    'serve',
    'exec',
    'ps',
    'ports',
    'wait',
    'wait-port',
    'logs',
    'signal',
    'kill',
    'attach',
    'cp',
    'openapi',
  ]) {
    test(`${command} --help describes it and gives an example`, async () => {
      const result = await cli([command, '--help']);
      assert.equal(result.code, 0);
      assert.match(result.stdout, new RegExp(`^Usage: sandboxd ${command} `));
      assert.match(result.stdout, new RegExp(`\\nExamples?:\\n  \\$ (\\S+=\\S+ )*sandboxd ${command}`));
    });
  }
});
