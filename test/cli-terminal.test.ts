import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { SandboxClient } from '../src/client/index.ts';
import { sandboxClient } from './helpers/api.ts';
import { CLI } from './helpers/cli.ts';
import { eventually, isAlive, startDaemon, useDaemon } from './helpers/daemon.ts';
import { Tmux, terminalModes } from './helpers/tmux.ts';
import { needs, tmux as tmuxTool } from './helpers/tools.ts';

// Through tmux: a real terminal, typed into and read from the screen.
const TOKEN = 'terminal-test-token';
const REMOTE_SHELL = ['bash', '--norc', '--noprofile'];
let client: SandboxClient;
let tmux: Tmux;

const cli = CLI.join(' ');

/**
 * Runs a client command in the pane the way a person would, saving the terminal's modes
 * (`stty -a`) before and after it; resolves with the three once it has exited.
 */
async function inPane(command: string, name: string) {
  const [beforeFile, afterFile] = [join(tmux.dir, `${name}.before`), join(tmux.dir, `${name}.after`)];
  const done = tmux.waitForChannel(name);
  await tmux.type(
    `stty -a > ${beforeFile}; ${command}; echo "${name} exited $?"; stty -a > ${afterFile}; ${tmux.signalCommand(name)}`,
  );
  return {
    exited: done.then(async () => ({
      modesBefore: stripSize(await readFile(beforeFile, 'utf8')),
      modesAfter: stripSize(await readFile(afterFile, 'utf8')),
    })),
  };
}

function stripSize(modes: string): string {
  return modes.replace(/rows \d+; columns \d+;/, '');
}

/**
 * Waits until the resize has reached the daemon (polled: no event tells), so that the keys typed
 * next cannot overtake it on their way from the client.
 */
async function remoteSize(cols: number, rows: number): Promise<void> {
  await eventually(async () =>
    (await client.terminals()).some((s) => s.is_alive && s.cols === cols && s.rows === rows),
  );
}

/** Raw mode as stty shows it: no canonical input, no echo, no signals from keys. */
function assertRaw(modes: string): void {
  for (const flag of ['-icanon', '-echo', '-isig'])
    assert.match(modes, new RegExp(`(^|\\s)${flag}(\\s|$)`), flag);
}

describe('a terminal through sandboxd, driven in tmux', { skip: await needs([tmuxTool]) }, () => {
  useDaemon({
    args: ['--token', TOKEN],
    afterStart: async (started) => {
      client = sandboxClient(started);
      tmux = await Tmux.start({ SANDBOXD_URL: started.url, SANDBOXD_TOKEN: TOKEN });
    },
    beforeStop: async () => {
      await tmux.stop();
    },
  });

  test('exec -t -- bash: a prompt, 6*7 is 42, a resize reaches stty size, the terminal is restored', async () => {
    await tmux.resize(100, 30);
    await tmux.clear();
    const run = await inPane(`${cli} exec -t -e 'PS1=remote$ ' -- ${REMOTE_SHELL.join(' ')}`, 'exec');
    await tmux.waitForScreen(/^remote\$/m);
    // While it runs, the local terminal is raw: keys go to the remote terminal as they are.
    assertRaw(await terminalModes(await tmux.paneTty()));

    await tmux.type('echo $((6*7))');
    await tmux.waitForScreen(/^42$/m);
    await tmux.type('stty size');
    await tmux.waitForScreen(/^30 100$/m);
    await tmux.resize(120, 40);
    await remoteSize(120, 40);
    await tmux.type('stty size');
    await tmux.waitForScreen(/^40 120$/m);
    await tmux.type('exit 5');

    const { modesBefore, modesAfter } = await run.exited;
    await tmux.waitForScreen('exec exited 5');
    assert.equal(modesAfter, modesBefore);
    assert.doesNotMatch(modesBefore, /(^|\s)-icanon(\s|$)/);
  });

  test('attach: to a running terminal by id; detach keys leave it running; attach by pid until it exits', async () => {
    await tmux.resize(100, 30);
    await tmux.clear();
    const created = await client.createTerminal({
      command: REMOTE_SHELL[0] as string,
      args: REMOTE_SHELL.slice(1),
      env: { PS1: 'remote$ ' },
    });
    const { pid } = await client.terminal(created.session_id);
    try {
      const first = await inPane(`${cli} attach ${created.session_id}`, 'attach1');
      await tmux.waitForScreen(/^remote\$/m);
      assertRaw(await terminalModes(await tmux.paneTty()));
      await tmux.type('echo $((6*7))');
      await tmux.waitForScreen(/^42$/m);
      await tmux.resize(90, 25);
      await remoteSize(90, 25);
      await tmux.type('stty size');
      await tmux.waitForScreen(/^25 90$/m);

      // Ctrl-P Ctrl-Q: this side leaves, the session stays.
      await tmux.keys('C-p', 'C-q');
      const detached = await first.exited;
      await tmux.waitForScreen('attach1 exited 0');
      assert.match(await tmux.screen(), /sandboxd: detached; `sandboxd attach \S+` returns to it/);
      assert.equal(detached.modesAfter, detached.modesBefore);
      assert.equal((await client.terminal(created.session_id)).is_alive, true);
      assert.equal(isAlive(pid), true);

      await tmux.clear();
      const second = await inPane(`${cli} attach ${pid}`, 'attach2');
      // The scrollback comes first; what is typed now shows after it.
      await tmux.waitForScreen(/^42$/m);
      await tmux.type('echo $((6*9))');
      await tmux.waitForScreen(/^54$/m);
      await tmux.type('exit 3');
      const ended = await second.exited;
      await tmux.waitForScreen('attach2 exited 3');
      assert.equal(ended.modesAfter, ended.modesBefore);
      const info = await client.terminal(created.session_id);
      assert.deepEqual([info.is_alive, info.exit_code], [false, 3]);
    } finally {
      await client.deleteTerminal(created.session_id).catch(() => {});
    }
  });

  test('a daemon that dies mid-session: exec -t says the connection was lost, and the terminal is restored', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'sandboxd-doomed-'));
    const doomed = await startDaemon(['--data-dir', dataDir]);
    await tmux.clear();
    const run = await inPane(
      `SANDBOXD_URL=${doomed.url} ${cli} exec -t -e 'PS1=doomed$ ' -- ${REMOTE_SHELL.join(' ')}`,
      'lost',
    );
    await tmux.waitForScreen(/^doomed\$/m);
    const [session] = await sandboxClient(doomed).terminals();
    doomed.child.kill('SIGKILL');
    const { modesBefore, modesAfter } = await run.exited;
    await tmux.waitForScreen('lost exited 125');
    assert.match(
      await tmux.screen(),
      /sandboxd: lost the connection to terminal session \S+; it may still run/,
    );
    assert.equal(modesAfter, modesBefore);
    // Its terminal's master went with the daemon: the shell got SIGHUP.
    await eventually(() => !isAlive(session?.pid as number));
    await rm(dataDir, { recursive: true, force: true });
  });

  test('cp of a large file draws a progress bar on a terminal, and ends it with a newline', async () => {
    const big = join(tmux.dir, 'big.bin');
    await writeFile(big, Buffer.alloc(8 * 1024 * 1024, 1));
    await tmux.clear();
    const run = await inPane(`${cli} cp ${big} :${join(tmux.dir, 'uploaded.bin')}`, 'cp');
    await run.exited;
    await tmux.waitForScreen('cp exited 0');
    assert.match(await tmux.screen(), /^big\.bin {2}\[#{24}\] 100% {2}8\.0\/8\.0 MiB {2}[\d.]+ MiB\/s$/m);
    assert.equal((await readFile(join(tmux.dir, 'uploaded.bin'))).length, 8 * 1024 * 1024);
  });
});
