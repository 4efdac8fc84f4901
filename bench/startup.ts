// Start-up: what one daemon per sandbox costs before anyone uses it, and what its first user pays.
//   15  exec of the compiled daemon (`dist/cli.js serve --port 0`, as `npm start` runs it) until
//        the first 200 from /api/v1/health, against exec of `node -e 0` until it exits; the same
//        Node binary, runs interleaved, the median of at least 5 of each.
//   16  the daemon's resident memory once idle (after one health call and a pause), against a
//        bare Node's (`node -e "setInterval(()=>{},1e3)"`) after the same pause.
//   16b the same daemon's resident memory 5 s after 200 MiB of output went through it (a
//        Connect Start, JSON, of `head -c` from /dev/zero, read to its end), against the same
//        bare Node: what a sandbox costs once its burst of work is over.
//   17  the first call after start (once the daemon has answered its health check, and 200 ms
//        later, as a client that waited for it to be ready) against the median of the warm
//        calls that follow on the same daemon, one fresh daemon per kind:
//        POST /api/v1/processes, envd's Connect Start (JSON, read to its end) and
//        GET /api/v1/files?path= of a small file.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeEnvelope } from '@connectrpc/connect/protocol';
import { contentTypeStreamJson } from '@connectrpc/connect/protocol-connect';
import { ROOT } from '../test/helpers/daemon.ts';
import {
  type BenchDaemon,
  type BenchOptions,
  benchDaemon,
  call,
  elapsedMs,
  json,
  median,
  open,
  type Row,
  row,
  type Scratch,
} from './common.ts';

/** Exec until the daemon's health answers 200, ms; the daemon is stopped afterwards. */
async function readyMs(): Promise<number> {
  const started = performance.now();
  const child = spawn(process.execPath, ['dist/cli.js', 'serve', '--port', '0'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  try {
    const url = await listeningUrl(child);
    await call(`${url}/api/v1/health`);
    return elapsedMs(started);
  } finally {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  }
}

function listeningUrl(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let printed = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      printed += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(printed);
      if (match) resolve(match[1] as string);
    });
    child.once('exit', (code) =>
      reject(new Error(`the daemon exited (${code}) before listening: ${printed}`)),
    );
  });
}

/** Exec of `node -e 0` until it exits, ms. */
async function bareNodeMs(): Promise<number> {
  const started = performance.now();
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await once(child, 'exit');
  return elapsedMs(started);
}

async function rssMiBOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024;
}

/** Resident memory of an idle bare Node after `pauseMs`. */
async function bareNodeRss(pauseMs: number): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setInterval(()=>{},1e3)'], { stdio: 'ignore' });
  try {
    await sleep(pauseMs);
    return await rssMiBOf(child.pid as number);
  } finally {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  }
}

/** Connect Start (JSON) of a command, read to its end: the bytes received and the last 200. */
async function envdStart(daemon: BenchDaemon, cmd: string, args: string[] = []) {
  const start = { process: { cmd, args }, stdin: false };
  const response = await open(`${daemon.url}/process.Process/Start`, {
    method: 'POST',
    body: encodeEnvelope(0, Buffer.from(JSON.stringify(start))),
    headers: { 'content-type': contentTypeStreamJson },
  });
  if (response.statusCode !== 200) throw new Error(`Connect Start: ${response.statusCode}`);
  let received = 0;
  let tail = '';
  for await (const chunk of response as AsyncIterable<Buffer>) {
    received += chunk.length;
    tail = (tail + chunk.toString('latin1')).slice(-200);
  }
  if (!tail.includes('exit status 0')) throw new Error(`Connect Start of ${cmd}: ending ${tail}`);
  return received;
}

/** Connect Start (JSON) of `head -c BYTES /dev/zero`, its stream read to the end and dropped. */
async function envdBurst(daemon: BenchDaemon, bytes: number): Promise<void> {
  const received = await envdStart(daemon, 'head', ['-c', String(bytes), '/dev/zero']);
  if (received < bytes) throw new Error(`Connect Start of head: ${received} bytes`);
}

/** After the burst: long enough for the daemon to see it is over and hand memory back. */
const AFTER_BURST_MS = 5000;
const BURST_BYTES = 200 * 1024 * 1024;

type Kind = 'processes' | 'envd' | 'files';

/** Between the daemon's first health 200 and the first call: less than any readiness poll's period. */
const SETTLE_MS = 200;

export async function startup(options: BenchOptions, scratch: Scratch): Promise<Row[]> {
  const execs = Math.max(5, options.rounds * (options.quick ? 2 : 3));
  const warmCalls = options.quick ? 5 : 15;
  const pauseMs = options.quick ? 1000 : 3000;
  const file = join(await scratch.folder(), 'first-read.txt');
  await writeFile(file, 'a small file, read first\n'.repeat(40));

  const ready: { figure: number; baseline: number }[] = [];
  // One untimed pass of each: the first exec after a build reads the files from disk.
  await bareNodeMs();
  await readyMs();
  for (let i = 0; i < execs; i++) ready.push({ baseline: await bareNodeMs(), figure: await readyMs() });
  options.log(`15: ready ${ready.map((r) => r.figure.toFixed(0)).join(' ')} ms`);

  const idle: { figure: number; baseline: number }[] = [];
  const afterBurst: { figure: number; baseline: number }[] = [];
  const first: Record<Kind, { figure: number; baseline: number }[]> = { processes: [], envd: [], files: [] };
  const calls: Record<Kind, (daemon: BenchDaemon) => Promise<unknown>> = {
    processes: (daemon) =>
      call(`${daemon.api}/processes`, {
        method: 'POST',
        body: JSON.stringify({ command: 'true' }),
        headers: json,
      }),
    envd: (daemon) => envdStart(daemon, 'true'),
    files: (daemon) => call(`${daemon.api}/files?path=${encodeURIComponent(file)}`),
  };
  for (let round = 0; round < options.rounds; round++) {
    const daemon = await benchDaemon(options, `startup-idle-${round + 1}`);
    try {
      await call(`${daemon.api}/health`);
      await sleep(pauseMs);
      const bare = await bareNodeRss(pauseMs);
      idle.push({ figure: await daemon.rssMiB(), baseline: bare });
      await envdBurst(daemon, BURST_BYTES);
      await sleep(AFTER_BURST_MS);
      afterBurst.push({ figure: await daemon.rssMiB(), baseline: bare });
    } finally {
      await daemon.stop();
    }
    for (const kind of Object.keys(calls) as Kind[]) {
      const fresh = await benchDaemon(options, `startup-first-${kind}-${round + 1}`);
      try {
        const timed = async () => {
          const started = performance.now();
          await calls[kind](fresh);
          return elapsedMs(started);
        };
        // As a client starts work: once the daemon has answered its health check.
        await call(`${fresh.api}/health`);
        await sleep(SETTLE_MS);
        const firstMs = await timed();
        const warm: number[] = [];
        for (let i = 0; i < warmCalls; i++) warm.push(await timed());
        first[kind].push({ figure: firstMs, baseline: median(warm) });
      } finally {
        await fresh.stop();
      }
    }
  }
  const firstRow = (id: string, kind: Kind, what: string) =>
    row({ id, what: `first ${what}`, unit: 'ms', baselineIs: 'warm median, same daemon' }, first[kind]);
  return [
    // Each exec is a sample here, not each round: start-up time varies more than the rest.
    row(
      { id: '15', what: 'ready: exec to first health 200', unit: 'ms', baselineIs: '`node -e 0`' },
      ready.map((r) => ({ figure: r.figure, baseline: r.baseline })),
    ),
    withExcess(row({ id: '16', what: 'idle RSS', unit: 'MiB', baselineIs: 'bare idle node' }, idle)),
    withExcess(
      row(
        {
          id: '16b',
          what: 'idle RSS 5 s after 200 MiB of output',
          unit: 'MiB',
          baselineIs: 'bare idle node',
        },
        afterBurst,
      ),
    ),
    firstRow('17a', 'processes', 'POST /api/v1/processes (true)'),
    firstRow('17b', 'envd', 'envd Connect Start (true, JSON)'),
    firstRow('17c', 'files', 'GET /api/v1/files (1 KiB)'),
  ];
}

/** The target is a difference (bare Node + so many MiB), not a ratio: say it. */
function withExcess(done: Row): Row {
  return { ...done, note: `+${(done.figure - done.baseline).toFixed(1)} MiB` };
}
