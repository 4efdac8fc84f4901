// Reaches services inside the sandbox through the daemon's TCP tunnel with the official
// tensorlake SDK (Node >= 22.19, run by tunnel.test.ts in a child process): services started
// through the SDK, reached through `createTunnel` (TUNNEL_SCENARIO=tunnel) or a VNC desktop
// through `connectDesktop` (TUNNEL_SCENARIO=desktop). Prints what it observed as one JSON object.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { connectSandbox } from './sandbox.mjs';

const sandbox = await connectSandbox('tunnel-test');
const seen = {};
const started = [];

/** Starts a process through the SDK and returns it with the first stdout line that matches. */
async function startAndRead(command, args, pattern) {
  const service = await sandbox.startProcess(command, { args });
  started.push(service.pid);
  for await (const event of sandbox.followStdout(service.pid)) {
    const match = pattern.exec(event.line);
    if (match) return { pid: service.pid, match };
  }
  const output = await sandbox.getOutput(service.pid);
  throw new Error(`${command} ended before printing ${pattern}: ${output.lines.join('\n')}`);
}

/** A Node service in the sandbox that prints its port once it listens. */
function nodeService(source) {
  return startAndRead(process.execPath, ['-e', source], /^port (\d+)$/).then(({ match }) => Number(match[1]));
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** Sends `bytes` through a local tunnel port to an echo service and reads as many back. */
async function echoThrough(localPort, bytes) {
  const socket = connect({ host: '127.0.0.1', port: localPort });
  await once(socket, 'connect');
  const received = [];
  let length = 0;
  const done = new Promise((resolve, reject) => {
    socket.on('data', (chunk) => {
      received.push(chunk);
      length += chunk.length;
      if (length >= bytes.length) resolve();
    });
    socket.once('close', () => reject(new Error(`closed after ${length} of ${bytes.length} bytes`)));
    socket.once('error', reject);
  });
  // No half-close in a tunnel: the socket stays open until every byte has come back.
  socket.write(bytes);
  await done;
  socket.destroy();
  return Buffer.concat(received);
}

async function tunnelScenario() {
  // An HTTP server started through the SDK, reached through a tunnel with fetch.
  const httpPort = await nodeService(
    "const s=require('http').createServer((q,r)=>r.end('hello from '+q.url));" +
      "s.listen(0,'127.0.0.1',()=>console.log('port '+s.address().port))",
  );
  const web = await sandbox.createTunnel(httpPort, { localPort: 0 });
  try {
    const response = await fetch(`http://127.0.0.1:${web.address().port}/through/the/tunnel`);
    seen.http = { status: response.status, body: await response.text() };
  } finally {
    await web.close();
  }

  const echoPort = await nodeService(
    "const s=require('net').createServer((c)=>c.pipe(c));" +
      "s.listen(0,'127.0.0.1',()=>console.log('port '+s.address().port))",
  );
  const echo = await sandbox.createTunnel(echoPort, { localPort: 0 });
  try {
    const big = randomBytes(64 * 1024 * 1024);
    const back = await echoThrough(echo.address().port, big);
    seen.big = { sent: big.length, received: back.length, exact: sha256(back) === sha256(big) };

    const pieces = Array.from({ length: 32 }, () =>
      randomBytes(1024 * 1024 + Math.floor(Math.random() * 4096)),
    );
    const results = await Promise.all(pieces.map((piece) => echoThrough(echo.address().port, piece)));
    seen.parallel = results.map((echoed, index) => sha256(echoed) === sha256(pieces[index]));
  } finally {
    await echo.close();
  }
}

async function desktopScenario() {
  // Xvfb picks a free display and prints its number; x11vnc serves it on the loopback.
  const display = await startAndRead(
    'Xvfb',
    ['-displayfd', '1', '-screen', '0', '640x480x24', '-nolisten', 'tcp'],
    /^(\d+)$/,
  ).then(({ match }) => match[1]);
  const vncPort = await startAndRead(
    'x11vnc',
    ['-display', `:${display}`, '-localhost', '-nopw', '-forever', '-shared', '-autoport', '25900'],
    /^PORT=(\d+)$/,
  ).then(({ match }) => Number(match[1]));
  // xev reports clicks on the root window: the proof that a click went all the way through.
  const xev = await sandbox.startProcess('xev', {
    args: ['-display', `:${display}`, '-root', '-event', 'button'],
  });
  started.push(xev.pid);

  const desktop = await sandbox.connectDesktop({ port: vncPort });
  try {
    seen.size = { width: desktop.width, height: desktop.height };
    const png = Buffer.from(await desktop.screenshot());
    seen.png = {
      signature: png.subarray(0, 8).toString('hex'),
      width: png.readUInt32BE(16),
      height: png.readUInt32BE(20),
    };
    await desktop.click({ x: 123, y: 45 });
    for await (const event of sandbox.followStdout(xev.pid)) {
      if (/ButtonRelease/.test(event.line)) seen.released = true;
      const at = /root:\((\d+),(\d+)\)/.exec(event.line);
      if (at) seen.clickedAt = [Number(at[1]), Number(at[2])];
      if (seen.released && seen.clickedAt) break;
    }
  } finally {
    await desktop.close();
  }
}

try {
  if (process.env.TUNNEL_SCENARIO === 'desktop') await desktopScenario();
  else await tunnelScenario();
} catch (error) {
  seen.failure = String(error?.stack ?? error);
} finally {
  for (const pid of started.reverse()) await sandbox.killProcess(pid).catch(() => {});
}
process.stdout.write(JSON.stringify(seen));
process.exit(0);
