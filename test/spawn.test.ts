import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { restClient } from './helpers/api.ts';
import { useDaemon } from './helpers/daemon.ts';
import { collect, processClient, started } from './helpers/envd.ts';

// Processes start with posix_spawn where they can: each must start as Node's spawn would have
// started it (signals, session, descriptors, lookup in PATH, errors).
let dir: string;
const daemon = useDaemon({
  afterStart: async () => {
    dir = await mkdtemp(join(tmpdir(), 'sandboxd-spawn-'));
  },
  afterStop: async () => {
    await rm(dir, { recursive: true, force: true });
  },
});

async function run(body: Record<string, unknown>): Promise<{ stdout: string[]; exitCode: number | null }> {
  const rest = restClient(daemon);
  const { pid } = await rest.start(body);
  const info = await rest.waitForEnd(pid);
  return { stdout: await rest.lines(pid, 'stdout'), exitCode: info.exit_code };
}

describe('how a process starts', () => {
  const cases: [
    string,
    Record<string, unknown>,
    (seen: { stdout: string[]; exitCode: number | null }) => void,
  ][] = [
    [
      'with every signal at its default and none blocked (Node ignores SIGPIPE; a child must not)',
      { command: 'grep', args: ['-E', '^Sig(Ign|Blk)', '/proc/self/status'] },
      ({ stdout }) => {
        const mask = (name: string) =>
          BigInt(`0x${stdout.find((line) => line.startsWith(name))?.split('\t')[1]}`);
        assert.equal(mask('SigBlk'), 0n);
        // glibc's posix_spawn leaves its own two internal signals (32 and 33) ignored; no
        // signal a program uses (1 to 31, and SIGRTMIN, 34, on) is.
        assert.equal(mask('SigIgn') & ~0x180000000n, 0n);
      },
    ],
    [
      'as the leader of its own session and process group',
      { command: 'sh', args: ['-c', 'echo $$ $(ps -o sid= -p $$) $(ps -o pgid= -p $$)'] },
      ({ stdout }) => {
        const [pid, sid, pgid] = (stdout[0] as string).trim().split(/\s+/);
        assert.equal(sid, pid);
        assert.equal(pgid, pid);
      },
    ],
    [
      'with its arguments, its environment and its working directory',
      {
        command: 'sh',
        args: ['-c', 'echo "$1|$GREETING|$(pwd)"', 'sh', 'a b'],
        env: { GREETING: 'hi' },
        working_dir: '/tmp',
      },
      ({ stdout }) => assert.deepEqual(stdout, ['a b|hi|/tmp']),
    ],
    [
      'looked up in the PATH it is given',
      { command: 'only-here', env: { PATH: `/nonexistent:${'__DIR__'}` } },
      ({ stdout }) => assert.deepEqual(stdout, ['found in PATH']),
    ],
    [
      'a script without #! runs with /bin/sh, as execvp does',
      { command: '__DIR__/no-shebang' },
      ({ stdout, exitCode }) => {
        assert.deepEqual(stdout, ['ran by sh']);
        assert.equal(exitCode, 0);
      },
    ],
    [
      'with stdin from /dev/null when it is not a pipe',
      { command: 'sh', args: ['-c', 'cat; echo "eof at once $?"'] },
      ({ stdout }) => assert.deepEqual(stdout, ['eof at once 0']),
    ],
  ];
  for (const [name, body, check] of cases) {
    test(name, async () => {
      await writeFile(join(dir, 'only-here'), '#!/bin/sh\necho found in PATH\n');
      await writeFile(join(dir, 'no-shebang'), 'echo ran by sh\n');
      await chmod(join(dir, 'only-here'), 0o755);
      await chmod(join(dir, 'no-shebang'), 0o755);
      const resolved = JSON.parse(JSON.stringify(body).replaceAll('__DIR__', dir));
      check(await run(resolved));
    });
  }

  test("with none of the daemon's own descriptors open", async () => {
    // ls lists its own descriptors: stdio, the directory it reads, and whatever the daemon was
    // itself given by its parent without close-on-exec (not the daemon's to close).
    const { stdout } = await run({ command: 'ls', args: ['-l', '/proc/self/fd'] });
    const daemonFds = `/proc/${daemon.child.pid}/fd`;
    const inherited = new Set<string>();
    for (const fd of await readdir(daemonFds)) {
      const flags = (await readFile(`/proc/${daemon.child.pid}/fdinfo/${fd}`, 'utf8')).match(
        /^flags:\s+(\d+)/m,
      )?.[1];
      if ((Number.parseInt(flags ?? '0', 8) & 0o2000000) === 0) inherited.add(fd);
    }
    const open = stdout.flatMap((line) => {
      const match = / (\d+) -> (.*)$/.exec(line);
      return match ? [{ fd: match[1] as string, target: match[2] as string }] : [];
    });
    assert.deepEqual(
      open.filter(({ fd }) => Number(fd) <= 2).map(({ fd }) => fd),
      ['0', '1', '2'],
    );
    for (const { fd, target } of open.filter((descriptor) => Number(descriptor.fd) > 2)) {
      assert.ok(
        target.startsWith('/proc/') || inherited.has(fd),
        `fd ${fd} -> ${target} came from the daemon`,
      );
    }
  });

  test("with no terminal's master open, though terminals are", async () => {
    const rest = restClient(daemon);
    const { status, body } = await rest.call('POST', '/pty', { command: 'sleep', args: ['1000'] });
    assert.equal(status, 201);
    const session = (body as { session_id: string }).session_id;
    try {
      const masters = (listing: string[]) => listing.filter((line) => line.endsWith(' -> /dev/ptmx'));
      // One started on pipes (posix_spawn), one in a terminal of its own (node-pty's fork).
      const { stdout } = await run({ command: 'ls', args: ['-l', '/proc/self/fd'] });
      assert.ok(
        stdout.some((line) => / 0 -> /.test(line)),
        stdout.join('\n'),
      );
      assert.deepEqual(masters(stdout), []);
      const { rest: events } = await started(
        processClient(daemon).start({
          process: { cmd: 'ls', args: ['-l', '/proc/self/fd'] },
          pty: { size: { cols: 200, rows: 24 } },
        }),
      );
      const { pty, end } = await collect(events);
      assert.equal(end?.exitCode, 0);
      assert.match(pty, / 0 -> \/dev\/pts\//);
      assert.deepEqual(masters(pty.split(/\r?\n/)), []);
    } finally {
      await rest.call('DELETE', `/pty/${session}`);
    }
  });

  test('a command that is not there, or not executable, is SPAWN_FAILED saying which', async () => {
    await writeFile(join(dir, 'not-executable'), 'echo no\n');
    for (const [command, says] of [
      ['no-such-command-anywhere', 'command not found'],
      [join(dir, 'not-executable'), 'permission denied'],
    ]) {
      const answer = await restClient(daemon).call('POST', '/processes', { command });
      assert.equal(answer.status, 400);
      assert.equal((answer.body as { code: string }).code, 'SPAWN_FAILED');
      assert.match((answer.body as { error: string }).error, new RegExp(says as string));
    }
  });

  test('exit codes and signals come back as they were', async () => {
    assert.equal((await run({ command: 'sh', args: ['-c', 'exit 42'] })).exitCode, 42);
    const rest = restClient(daemon);
    const { pid } = await rest.start({ command: 'sh', args: ['-c', 'kill -TERM $$'] });
    const info = await rest.waitForEnd(pid);
    assert.deepEqual([info.status, info.signal], ['signaled', 15]);
  });
});
