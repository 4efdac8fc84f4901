// Upload and download speed of one large file through each dialect, against `cp` of the same
// file on the same disk, and the daemon's memory sampled throughout each transfer.
// Run: npm run bench:files [-- --size-mib 1024 --rounds 3]   (--quick: 64 MiB, 1 round)
import { execFile } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs, promisify } from 'node:util';
import { startDaemon } from '../test/helpers/daemon.ts';

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '1024' },
    rounds: { type: 'string', default: '3' },
    quick: { type: 'boolean', default: false },
  },
});
const MiB = 1024 * 1024;
const sizeMiB = values.quick ? 64 : Number(values['size-mib']);
const rounds = values.quick ? 1 : Number(values.rounds);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const dir = await mkdtemp(join(tmpdir(), 'sandboxd-bench-files-'));
const source = join(dir, 'source.bin');
// Incompressible and not all zeros, written in chunks so the bench itself stays small.
{
  const out = createWriteStream(source);
  const chunk = Buffer.alloc(MiB);
  for (let i = 0; i < sizeMiB; i++) {
    for (let j = 0; j < MiB; j += 4) chunk.writeUInt32LE(((i * MiB + j) ^ 0x9e3779b9) >>> 0, j);
    if (!out.write(chunk)) await new Promise((resolve) => out.once('drain', () => resolve(undefined)));
  }
  await new Promise((resolve) => out.end(resolve));
}

const daemon = await startDaemon([], {}, { built: true });
const rssMiB = () =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${daemon.child.pid}/status`, 'utf8'))?.[1]) / 1024;

/** Runs a transfer while sampling the daemon's RSS every 20 ms; returns seconds and the peak. */
async function measured(transfer: () => Promise<void>): Promise<{ seconds: number; peakMiB: number }> {
  let peakMiB = rssMiB();
  const sampler = setInterval(() => {
    peakMiB = Math.max(peakMiB, rssMiB());
  }, 20);
  const start = performance.now();
  try {
    await transfer();
  } finally {
    clearInterval(sampler);
  }
  const seconds = (performance.now() - start) / 1000;
  return { seconds, peakMiB: Math.max(peakMiB, rssMiB()) };
}

// curl is the client: the fastest one a person would use, so the numbers are the daemon's.
const run = promisify(execFile);

async function upload(method: 'PUT' | 'POST', url: string, file: string): Promise<void> {
  await run('curl', [
    '-sSf',
    '-X',
    method,
    '-H',
    'content-type: application/octet-stream',
    '-T',
    file,
    '-o',
    '/dev/null',
    url,
  ]);
}

async function download(url: string, file: string): Promise<void> {
  await run('curl', ['-sSf', '-o', file, url]);
}

const q = (path: string) => encodeURIComponent(path);
const target = (round: number) => join(dir, `copy-${round}.bin`);
const rows: { name: string; mibps: number; peakOverIdle: number }[] = [];

async function bench(name: string, transfer: (round: number) => Promise<void>, check?: () => Promise<void>) {
  const speeds: number[] = [];
  let peakOverIdle = 0;
  for (let round = 0; round < rounds; round++) {
    // Each round starts with no copy and nothing waiting to be written back.
    await rm(target(round), { force: true });
    await run('sync');
    const idle = rssMiB();
    const { seconds, peakMiB } = await measured(() => transfer(round));
    await check?.();
    speeds.push(sizeMiB / seconds);
    peakOverIdle = Math.max(peakOverIdle, peakMiB - idle);
  }
  rows.push({ name, mibps: median(speeds), peakOverIdle });
}

const sameSize = async () => {
  const copies = await Promise.all(
    Array.from({ length: rounds }, (_, i) => stat(target(i)).catch(() => undefined)),
  );
  for (const copy of copies)
    if (copy && copy.size !== sizeMiB * MiB) throw new Error('a copy has the wrong size');
};
try {
  await bench('cp', async (round) => {
    await run('cp', [source, target(round)]);
  });
  await bench('cp, then fsync (as the daemon writes)', async (round) => {
    await run('cp', [source, target(round)]);
    await run('sync', ['--data', target(round)]);
  });
  await bench('REST upload (PUT /api/v1/files)', (round) =>
    upload('PUT', `${daemon.api}/files?path=${q(target(round))}`, source),
  );
  await bench('envd upload (POST /files, octet-stream)', (round) =>
    upload('POST', `${daemon.url}/files?path=${q(target(round))}`, source),
  );
  await bench('REST download (GET /api/v1/files)', (round) =>
    download(`${daemon.api}/files?path=${q(source)}`, target(round)),
  );
  await bench(
    'envd download (GET /files)',
    (round) => download(`${daemon.url}/files?path=${q(source)}`, target(round)),
    sameSize,
  );
  const cp = rows[0]?.mibps as number;
  const cpSynced = rows[1]?.mibps as number;
  console.log(
    `files: ${sizeMiB} MiB, median of ${rounds} round(s); daemon RSS idle ${rssMiB().toFixed(0)} MiB`,
  );
  for (const { name, mibps, peakOverIdle } of rows) {
    const synced = name.includes('upload') ? `, ${(mibps / cpSynced).toFixed(2)}× cp+fsync` : '';
    const memory = name.startsWith('cp') ? '' : `; daemon RSS peak +${peakOverIdle.toFixed(1)} MiB over idle`;
    console.log(
      `  ${name.padEnd(40)} ${mibps.toFixed(0).padStart(6)} MiB/s  ${(mibps / cp).toFixed(2)}× cp${synced}${memory}`,
    );
  }
} finally {
  await daemon.stop();
  await rm(dir, { recursive: true, force: true });
}
