import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CommandExitError, Sandbox, TimeoutError } from 'e2b';
import { restClient } from './helpers/api.ts';
import { eventually, isAlive, useDaemon } from './helpers/daemon.ts';

// The official e2b SDK in debug mode makes no cloud call and talks Connect-JSON to sandboxUrl.
let sandbox: Sandbox;
let home: string;
const daemon = useDaemon({
  // The SDK runs every command in a login shell, which reads the user's profile: an empty home
  // keeps the machine's profile out of the test. (This machine's runs pyenv's rehash, which
  // takes a lock; a shell killed meanwhile, as the timeout test kills one, leaves it behind,
  // and every login shell after it waits a minute for it.)
  beforeStart: async () => {
    home = await mkdtemp(join(tmpdir(), 'sandboxd-e2b-home-'));
  },
  env: () => ({ HOME: home }),
  afterStart: async () => {
    sandbox = await Sandbox.create({ debug: true, sandboxUrl: daemon.url });
  },
  afterStop: () => rm(home, { recursive: true, force: true }),
});

/** Resolves when `text` (growing through onData) contains the needle. */
function screen() {
  let text = '';
  const waiters: { needle: string; resolve: () => void }[] = [];
  return {
    onData(data: Uint8Array) {
      text += Buffer.from(data).toString();
      for (const waiter of waiters.filter((w) => text.includes(w.needle))) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    },
    waitFor(needle: string): Promise<void> {
      if (text.includes(needle)) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ needle, resolve }));
    },
  };
}

describe('the e2b SDK against the daemon', () => {
  test('commands.run gives stdout and exit code 0', async () => {
    const result = await sandbox.commands.run('echo hello');
    assert.equal(result.stdout, 'hello\n');
    assert.equal(result.stderr, '');
    assert.equal(result.exitCode, 0);
  });

  test('a failing command raises CommandExitError with its exit code and stderr', async () => {
    await assert.rejects(sandbox.commands.run('echo oops >&2; exit 3'), (error: unknown) => {
      assert.ok(error instanceof CommandExitError);
      assert.equal(error.exitCode, 3);
      assert.equal(error.stderr, 'oops\n');
      assert.equal(error.error, 'exit status 3');
      return true;
    });
  });

  test('envs and cwd are honoured', async () => {
    const result = await sandbox.commands.run('echo "$GREETING"; pwd', {
      envs: { GREETING: 'hi there' },
      cwd: '/tmp',
    });
    assert.equal(result.stdout, 'hi there\n/tmp\n');
  });

  test('a background command with stdin: sendStdin twice, list, connect from a second handle, closeStdin, wait', async () => {
    const handle = await sandbox.commands.run('cat', { background: true, stdin: true });
    try {
      await sandbox.commands.sendStdin(handle.pid, 'first\n');
      await handle.sendStdin('second\n');
      const running = await sandbox.commands.list();
      const listed = running.find((p) => p.pid === handle.pid);
      assert.equal(listed?.cmd, '/bin/bash');
      assert.deepEqual(listed?.args, ['-l', '-c', 'cat']);

      const watched = screen();
      const second = await sandbox.commands.connect(handle.pid, {
        onStdout: (data) => watched.onData(Buffer.from(data)),
      });
      // The second handle gets what was printed before it attached.
      await watched.waitFor('first\nsecond\n');
      await sandbox.commands.closeStdin(handle.pid);
      const result = await handle.wait();
      assert.equal(result.stdout, 'first\nsecond\n');
      assert.equal(result.exitCode, 0);
      assert.equal((await second.wait()).stdout, 'first\nsecond\n');
      assert.equal(
        (await sandbox.commands.list()).some((p) => p.pid === handle.pid),
        false,
      );
    } finally {
      await sandbox.commands.kill(handle.pid);
    }
  });

  test('commands.kill ends a background command and its children', async () => {
    const handle = await sandbox.commands.run('sleep 1000 & echo $!; wait', { background: true });
    const printed = screen();
    const connected = await sandbox.commands.connect(handle.pid, {
      onStdout: (data) => printed.onData(Buffer.from(data)),
    });
    await printed.waitFor('\n');
    const child = Number((await restClient(daemon).lines(handle.pid, 'stdout'))[0]);
    assert.equal(await sandbox.commands.kill(handle.pid), true);
    await assert.rejects(
      handle.wait(),
      (error: unknown) => error instanceof CommandExitError && error.exitCode === -1,
    );
    await assert.rejects(connected.wait(), CommandExitError);
    await eventually(() => !isAlive(child));
    // Killing it again: the SDK says there was nothing to kill.
    assert.equal(await sandbox.commands.kill(handle.pid), false);
  });

  test('timeoutMs: a command that outlives it is killed and reported as a timeout', async () => {
    const start = Date.now();
    await assert.rejects(sandbox.commands.run('echo begun; sleep 30', { timeoutMs: 1000 }), TimeoutError);
    assert.ok(Date.now() - start < 30_000);
    const rest = restClient(daemon);
    const { processes } = (await rest.call('GET', '/processes')).body as {
      processes: { pid: number; args: string[]; status: string; signal: number | null }[];
    };
    const timedOut = processes.find((p) => p.args.includes('echo begun; sleep 30'));
    assert.ok(timedOut, 'the command is in the table');
    await eventually(async () => (await rest.get(timedOut.pid)).status === 'signaled');
    assert.equal((await rest.get(timedOut.pid)).signal, 9);
  });

  test('pty: create, input, resize then stty size, kill', async () => {
    const terminal = screen();
    const pty = await sandbox.pty.create({ cols: 80, rows: 24, onData: terminal.onData, timeoutMs: 0 });
    try {
      await sandbox.pty.sendInput(pty.pid, new TextEncoder().encode('echo $((6*7))\n'));
      await terminal.waitFor('42');
      await sandbox.pty.resize(pty.pid, { cols: 100, rows: 40 });
      await sandbox.pty.sendInput(pty.pid, new TextEncoder().encode('stty size\n'));
      await terminal.waitFor('40 100');
    } finally {
      assert.equal(await sandbox.pty.kill(pty.pid), true);
    }
    await assert.rejects(pty.wait(), CommandExitError);
  });
});
