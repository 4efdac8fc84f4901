// The tensorlake SDK following the output of a process whose oldest output the daemon has
// already dropped: the stream starts with an `event: truncated` the SDK does not know, which it
// must skip. Prints what it saw as one JSON object; the assertions live in output-truncation.test.ts.
import { connectSandbox } from './sandbox.mjs';

const loud = JSON.parse(process.env.SANDBOXD_LOUD);
const sandbox = await connectSandbox('sdk-truncation');
const seen = {};
try {
  const started = await sandbox.startProcess(loud.command, { args: loud.args });
  // Wait for the end without reading the output, so that the daemon drops the oldest of it.
  for (;;) {
    const info = await sandbox.getProcess(started.pid);
    if (info.status !== 'running') {
      seen.exitCode = info.exitCode;
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  let lines = 0;
  let lastLine;
  for await (const event of sandbox.followStdout(started.pid)) {
    lines++;
    lastLine = event.line;
  }
  seen.lines = lines;
  seen.lastLine = lastLine;
} catch (error) {
  seen.failure = String(error?.stack ?? error);
}
process.stdout.write(JSON.stringify(seen));
