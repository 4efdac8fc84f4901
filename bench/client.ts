// The sandboxd client as a user runs it (the compiled CLI): how long `exec -- true` takes
// against Node's own start-up, how fast output lines and stdin bytes go through exec, and how
// fast cp moves a file each way. Prints medians. Run: npm run bench:client
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { ROOT, startDaemon } from '../test/helpers/daemon.ts';

const run = promisify(execFile);
const CLI = join(ROOT, 'dist', 'cli.js');
const LINES = 1_000_000;
const STDIN_BYTES = 64 * 1024 * 1024;
const FILE_BYTES = 64 * 1024 * 1024;

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

async function time(rounds: number, task: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const start = performance.now();
    await task();
    times.push(performance.now() - start);
  }
  return median(times);
}

/** Runs the CLI with its stdin fed from `input` bytes of zeros; resolves when it exits 0. */
async function withZeros(args: string[], cliEnv: NodeJS.ProcessEnv, bytes: number): Promise<void> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: cliEnv,
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  const chunk = Buffer.alloc(1024 * 1024);
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    if (!child.stdin.write(chunk)) await once(child.stdin, 'drain');
  }
  child.stdin.end();
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`${args.join(' ')} exited ${code}`);
}

const daemon = await startDaemon([], {}, { built: true });
const env = { ...process.env, SANDBOXD_URL: daemon.url };
const dir = await mkdtemp(join(tmpdir(), 'sandboxd-bench-'));
try {
  const nodeAlone = await time(10, () => run(process.execPath, ['-e', '']));
  const execTrue = await time(10, () => run(process.execPath, [CLI, 'exec', '--', 'true'], { env }));
  console.log(`exec -- true: ${execTrue.toFixed(0)} ms (node -e '' alone: ${nodeAlone.toFixed(0)} ms)`);

  const lines = await time(3, () =>
    run(process.execPath, [CLI, 'exec', '--', 'seq', '1', String(LINES)], {
      env,
      maxBuffer: 64 * 1024 * 1024,
    }),
  );
  console.log(`exec output: ${((LINES / lines) * 1000).toFixed(0)} lines/s (seq 1 ${LINES})`);

  const stdin = await time(3, () => withZeros(['exec', '--', 'wc', '-c'], env, STDIN_BYTES));
  console.log(
    `exec stdin: ${(STDIN_BYTES / 1024 / 1024 / (stdin / 1000)).toFixed(0)} MiB/s (${STDIN_BYTES >> 20} MiB)`,
  );

  const file = join(dir, 'file');
  await writeFile(file, Buffer.alloc(FILE_BYTES, 7));
  const remote = `:${join(dir, 'uploaded')}`;
  try {
    const up = await time(3, () => run(process.execPath, [CLI, 'cp', file, remote], { env }));
    const down = await time(3, () =>
      run(process.execPath, [CLI, 'cp', remote, join(dir, 'downloaded')], { env }),
    );
    const rate = (ms: number) => (FILE_BYTES / 1024 / 1024 / (ms / 1000)).toFixed(0);
    console.log(`cp: up ${rate(up)} MiB/s, down ${rate(down)} MiB/s (${FILE_BYTES >> 20} MiB)`);
  } catch (error) {
    console.log(`cp: not measured (${(error as { stderr?: string }).stderr?.trim() ?? error})`);
  }
} finally {
  await daemon.stop();
  await rm(dir, { recursive: true, force: true });
}
