// A bounded soak on loopback: mixed load against one daemon for a while, printing the daemon's
// RSS and open descriptors every 5 s and the health round trip measured from another process.
//   16 clients: start a `cat` with a stdin pipe, write to it, follow its output to the lines
//               written, kill it; again and again
//   a restart storm: a managed process that exits at once, restarted after 1 ms each time
//   a paused follower: a loud process followed by a client that stops reading
//   500 idle connections, held open (opened again when the daemon times them out)
// Run: npm run soak [-- --seconds 60]
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { get, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { restClient } from '../test/helpers/api.ts';
import { startDaemon } from '../test/helpers/daemon.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    clients: { type: 'string', default: '16' },
    idle: { type: 'string', default: '500' },
    quick: { type: 'boolean', default: false },
    // A folder for a CPU profile of the daemon (node --cpu-prof).
    profile: { type: 'string' },
  },
});
const seconds = values.quick ? 10 : Number(values.seconds);
const clients = Number(values.clients);
const idleCount = values.quick ? 50 : Number(values.idle);

const nodeArgs = values.profile ? ['--cpu-prof', `--cpu-prof-dir=${values.profile}`] : [];
const daemon = await startDaemon([], {}, { built: true, nodeArgs });
const pid = daemon.child.pid as number;
const rest = restClient(daemon);
const deadline = Date.now() + seconds * 1000;
const running = () => Date.now() < deadline;
const counts = { cycles: 0, errors: 0 };

const rssMiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
const descriptors = () => readdirSync(`/proc/${pid}/fd`).length;

// The health prober runs in a process of its own, so that this one's load does not count.
const prober = spawn(
  process.execPath,
  [
    '-e',
    `
    const url = ${JSON.stringify(`${daemon.api}/health`)};
    let times = [];
    setInterval(() => {
      const sorted = times.sort((a, b) => a - b);
      const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
      process.stdout.write(JSON.stringify({ n: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted.at(-1) }) + '\\n');
      times = [];
    }, 5000);
    (async () => {
      for (;;) {
        const start = performance.now();
        try { await (await fetch(url)).text(); times.push(performance.now() - start); } catch { times.push(Infinity); }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    `,
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
let latestHealth = { n: 0, p50: Number.NaN, p99: Number.NaN, max: Number.NaN };
prober.stdout.setEncoding('utf8');
prober.stdout.on('data', (text: string) => {
  for (const line of text.trim().split('\n')) latestHealth = JSON.parse(line);
});

async function client(): Promise<void> {
  while (running()) {
    try {
      const { pid: cat } = await rest.start({ command: 'cat', stdin_mode: 'pipe' });
      for (let i = 0; i < 5; i++) {
        await rest.call('POST', `/processes/${cat}/stdin`, `line ${i}\n`, {
          'content-type': 'application/octet-stream',
        });
      }
      await rest.follow(cat, { view: 'stdout', stopAfter: 5 });
      await rest.kill(cat);
      counts.cycles++;
    } catch {
      counts.errors++;
    }
  }
}

async function restartStorm(): Promise<void> {
  await rest.start({
    command: 'sh',
    args: ['-c', 'exit 1'],
    name: 'storm',
    restart: { policy: 'always', initial_backoff_ms: 1, max_backoff_ms: 1 },
  });
}

async function pausedFollower(): Promise<IncomingMessage> {
  const { pid: loud } = await rest.start({ command: 'sh', args: ['-c', 'while :; do seq 1 100000; done'] });
  return new Promise((resolve) =>
    get(`${daemon.api}/processes/${loud}/output/follow`, (response) => {
      response.once('data', () => response.pause());
      resolve(response);
    }),
  );
}

const idle = new Set<Socket>();
function holdIdle(): void {
  const { hostname, port } = new URL(daemon.url);
  while (running() && idle.size < idleCount) {
    const socket = connect(Number(port), hostname);
    idle.add(socket);
    socket.on('error', () => {});
    // Read, so that the daemon's 408 and close after its header timeout reach us: the
    // connection is then opened again.
    socket.resume();
    socket.once('close', () => {
      idle.delete(socket);
      if (running()) setImmediate(holdIdle);
    });
  }
}

console.log(
  `soak: ${seconds} s, ${clients} clients, a restart storm, a paused follower on a loud process, ${idleCount} idle connections`,
);
console.log('  t(s)  RSS(MiB)  fds   health p50/p99/max (ms)  cycles  errors');
const started = Date.now();
const report = () =>
  console.log(
    `  ${String(Math.round((Date.now() - started) / 1000)).padStart(4)}  ${rssMiB().toFixed(1).padStart(8)}  ${String(descriptors()).padStart(4)}   ` +
      `${[latestHealth.p50, latestHealth.p99, latestHealth.max]
        .map((v) => v.toFixed(1))
        .join('/')
        .padStart(22)}  ${String(counts.cycles).padStart(6)}  ${String(counts.errors).padStart(6)}`,
  );
report();
const reporter = setInterval(report, 5000);
try {
  await restartStorm();
  const follower = await pausedFollower();
  holdIdle();
  await Promise.all(Array.from({ length: clients }, client));
  clearInterval(reporter);
  report();
  follower.destroy();
} finally {
  clearInterval(reporter);
  for (const socket of idle) socket.destroy();
  prober.kill();
  await rest.kill('storm').catch(() => {});
  await daemon.stop();
}
