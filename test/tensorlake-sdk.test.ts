import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isAlive, useDaemon } from './helpers/daemon.ts';
import { runSdkScenario } from './helpers/tensorlake-sdk.ts';

const TOKEN = 'sdk-token-1234';

const daemon = useDaemon(['--token', TOKEN]);

test('the official tensorlake SDK drives the daemon end to end', async () => {
  const seen = await runSdkScenario('tensorlake-scenario.mjs', daemon);
  assert.equal(seen.failure, undefined, seen.failure);

  assert.deepEqual(seen.health, { healthy: true, traceId: seen.health.traceId });
  assert.deepEqual(seen.catStarted, { status: 'running', stdinWritable: true });
  assert.deepEqual(seen.catFollowed, [
    { line: 'first line', stream: 'stdout' },
    { line: 'second line', stream: 'stdout' },
  ]);
  assert.deepEqual(seen.catInfo, { status: 'exited', exitCode: 0, endedAt: true });

  assert.deepEqual(seen.stdout, ['out']);
  assert.deepEqual(seen.stderr, ['err']);
  assert.deepEqual(seen.output, { lines: ['err', 'out'], lineCount: 2 });

  assert.equal(seen.signalResult.success, true);
  assert.deepEqual(seen.termed, { status: 'signaled', signal: 15 });
  assert.deepEqual(seen.killed, { status: 'signaled', signal: 9 });
  for (const pid of seen.startedPids) assert.ok(seen.listedPids.includes(pid), `pid ${pid} not listed`);

  assert.deepEqual(seen.run, { stdout: 'to-out', stderr: 'to-err', exitCode: 7 });
  assert.equal(seen.runEnv, 'hi there');
  assert.equal(seen.runCwd, '/tmp');
  // The SDK reports a kill by signal 9 as exit code -9.
  assert.equal(seen.runTimeout.exitCode, -9);
  assert.ok(seen.runTimeout.ms < 30_000);
  assert.equal(seen.runMissing, 127);

  assert.deepEqual(seen.unknownPid, { name: 'RemoteAPIError', statusCode: 404 });
  assert.deepEqual(seen.unknownKill, { name: 'RemoteAPIError', statusCode: 404 });
  for (const pid of seen.startedPids) assert.equal(isAlive(pid), false, `pid ${pid} still running`);
});
