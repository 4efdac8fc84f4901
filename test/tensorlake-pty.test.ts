import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useDaemon } from './helpers/daemon.ts';
import { runSdkScenario } from './helpers/tensorlake-sdk.ts';

const TOKEN = 'pty-daemon-token';

const daemon = useDaemon(['--token', TOKEN]);

test('the tensorlake SDK: create a terminal, type, resize, Ctrl-C, reattach with scrollback, exit', async () => {
  const seen = await runSdkScenario('tensorlake-pty-scenario.mjs', daemon);
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
