// Managed processes through the official tensorlake SDK: health checks, waiting for health,
// names of any text. Prints what it observed as one JSON object; the assertions live in
// managed.test.ts. A wait goes to the daemon's REST route, which the SDK has no call for.
import { createServer } from 'node:net';
import { ProcessStatus } from 'tensorlake';
import { connectSandbox } from './sandbox.mjs';

const sandbox = await connectSandbox('managed-test');
const url = process.env.SANDBOXD_URL;
const headers = process.env.SANDBOXD_TOKEN ? { authorization: `Bearer ${process.env.SANDBOXD_TOKEN}` } : {};
const seen = {};
const names = [];

/** A port that nothing listens on now (bound, then closed). */
async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitFor(ref, until) {
  const response = await fetch(
    `${url}/api/v1/processes/${encodeURIComponent(ref)}/wait?until=${until}&timeout_ms=20000`,
    { headers },
  );
  return { status: response.status, body: await response.json() };
}

const managedView = (info) => ({
  status: info.managed?.status,
  healthStatus: info.managed?.healthStatus,
  healthCheck: info.managed?.healthCheck,
  restartCount: info.managed?.restartCount,
  lastError: info.managed?.lastError ?? null,
  lastExit: info.managed?.lastExit
    ? { signal: info.managed.lastExit.signal ?? null, oomKilled: info.managed.lastExit.oomKilled }
    : null,
});

try {
  // An http check on a server started through the SDK becomes healthy.
  const webPort = await freePort();
  const server = `require('http').createServer((q, r) => r.end('ok')).listen(${webPort}, '127.0.0.1')`;
  const web = await sandbox.startProcess(process.execPath, {
    args: ['-e', server],
    name: 'web server',
    healthCheck: { type: 'http', port: webPort, path: '/', initialDelayMs: 0, intervalMs: 50 },
  });
  names.push('web server');
  seen.webStarted = managedView(web);
  const webWait = await waitFor('web server', 'healthy');
  seen.webWait = { status: webWait.status, health: webWait.body.managed?.health_status };
  seen.webHealthy = managedView(await sandbox.getProcess('web server'));

  // A tcp check on a port nobody listens on turns unhealthy; the process is stopped and
  // restarted by its policy, and lastError says why.
  const deadPort = await freePort();
  const flaky = await sandbox.startProcess('sleep', {
    args: ['1000'],
    name: 'flaky',
    restart: { policy: 'on_failure', maxRestarts: 1, initialBackoffMs: 20 },
    healthCheck: { type: 'tcp', port: deadPort, initialDelayMs: 0, intervalMs: 20, failureThreshold: 2 },
  });
  names.push('flaky');
  const firstExit = await waitFor(String(flaky.pid), 'exited');
  seen.flakyFirstExit = { status: firstExit.status, processStatus: firstExit.body.status };
  const running = await waitFor('flaky', 'running');
  seen.flakyRestarted = { status: running.status, newPid: running.body.pid !== flaky.pid };
  seen.flakyInfo = managedView(await sandbox.getProcess('flaky'));
  seen.deadPort = deadPort;

  // A managed process the kernel kills for memory: the SDK reads oom_killed, and lastExit says so.
  // Limits are a sandboxd extension the SDK has no option for, so the start is a plain POST.
  const hogStart = await fetch(`${url}/api/v1/processes`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify({
      command: process.execPath,
      args: ['-e', 'Buffer.alloc(512 * 1024 * 1024, 1)'],
      name: 'hog',
      limits: { memory_mb: 64 },
    }),
  });
  names.push('hog');
  seen.hogStart = hogStart.status;
  await waitFor('hog', 'exited');
  const hog = await sandbox.getProcess('hog');
  seen.hog = {
    status: hog.status,
    isOomKilled: hog.status === ProcessStatus.OOM_KILLED,
    lastExit: hog.managed?.lastExit
      ? { oomKilled: hog.managed.lastExit.oomKilled, signal: hog.managed.lastExit.signal }
      : null,
    lastError: hog.managed?.lastError ?? null,
  };

  // Names of any text but '/', never all digits: start, get, signal and kill by name.
  seen.names = {};
  for (const name of ['web 1', 'café', 'a:b', '名前']) {
    const started = await sandbox.startProcess('sleep', { args: ['1000'], name });
    names.push(name);
    const got = await sandbox.getProcess(name);
    const signal = await sandbox.sendSignal(name, 15);
    await waitFor(name, 'exited');
    const afterSignal = await sandbox.getProcess(name);
    const again = await sandbox.startProcess('sleep', { args: ['1000'], name });
    await sandbox.killProcess(name);
    await waitFor(name, 'exited');
    seen.names[name] = {
      sameProcess: got.pid === started.pid,
      nameEchoed: got.managed?.name,
      signal: signal.success,
      signaled: afterSignal.signal,
      killed: (await sandbox.getProcess(String(again.pid))).signal,
    };
  }
  const refused = async (name) => {
    try {
      await sandbox.startProcess('true', { name });
      return null;
    } catch (error) {
      return { statusCode: error.statusCode ?? null, message: String(error.message) };
    }
  };
  seen.badNames = { digits: await refused('123'), slash: await refused('a/b') };
} catch (error) {
  seen.failure = String(error?.stack ?? error);
} finally {
  for (const name of names) await sandbox.killProcess(name).catch(() => {});
}
process.stdout.write(JSON.stringify(seen));
