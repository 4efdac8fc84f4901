// What the bench's groups share: how a run is configured, a row of the table, the compiled
// daemon (optionally under the CPU profiler), a keep-alive HTTP client, the source data and
// the statistics.

import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent, createServer, type IncomingMessage, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDaemon, type TestDaemon } from '../test/helpers/daemon.ts';

export const MiB = 1024 * 1024;

export interface BenchOptions {
  /** Small sizes and one round: proves the bench works, measures little. */
  quick: boolean;
  rounds: number;
  /** Where the daemons write CPU profiles (node --cpu-prof), if anywhere. */
  profileDir?: string;
  /** Progress, on stderr. */
  log(message: string): void;
}

/** One line of the table: a figure and its baseline, each the median of the rounds. */
export interface Row {
  id: string;
  what: string;
  unit: string;
  figure: number;
  baseline: number;
  /** A few words on the baseline; the legend says it in full. */
  baselineIs: string;
  /** figure ÷ baseline */
  ratio: number;
  rounds: { figure: number; baseline: number }[];
  note?: string;
}

export function row(
  fields: Omit<Row, 'figure' | 'baseline' | 'ratio' | 'rounds'>,
  rounds: { figure: number; baseline: number }[],
): Row {
  const figure = median(rounds.map((r) => r.figure));
  const baseline = median(rounds.map((r) => r.baseline));
  return { ...fields, figure, baseline, ratio: figure / baseline, rounds };
}

export const median = (values: readonly number[]): number => percentile(values, 0.5);

/** Nearest rank: the smallest value with at least q of the values at or below it. */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new Error('no values');
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] as number;
}

export const elapsedMs = (since: number): number => performance.now() - since;

/**
 * When each profiled daemon was listening, by profile file, in µs of the monotonic clock (as
 * V8 stamps its samples): what came before is start-up, not the path being measured.
 */
export const profiledSince = new Map<string, number>();

/**
 * The compiled daemon, as `npm start` runs it (`npm run bench` builds it first). Under
 * --profile, node writes its CPU profile to DIR/NAME.cpuprofile when it exits.
 */
export async function benchDaemon(options: BenchOptions, name: string, args: string[] = []) {
  const profile = options.profileDir && join(options.profileDir, `${name}.cpuprofile`);
  const nodeArgs = profile
    ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`, `--cpu-prof-name=${name}.cpuprofile`]
    : [];
  const daemon = await startDaemon(args, {}, { built: true, nodeArgs });
  if (profile) profiledSince.set(profile, Number(process.hrtime.bigint() / 1000n));
  return Object.assign(daemon, {
    /** Resident memory now (VmRSS), MiB. */
    rssMiB: () => memoryMiB(daemon, 'VmRSS'),
    /** The most resident memory so far (VmHWM), MiB. */
    peakRssMiB: () => memoryMiB(daemon, 'VmHWM'),
    /** CPU time the daemon has used so far, user and system, all its threads, seconds. */
    cpuSeconds: () => cpuSecondsOf(daemon.child.pid as number),
  });
}

export type BenchDaemon = Awaited<ReturnType<typeof benchDaemon>>;

async function memoryMiB(daemon: TestDaemon, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${daemon.child.pid}/status`, 'utf8');
  const kib = new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1];
  if (kib === undefined) throw new Error(`no ${field} for the daemon`);
  return Number(kib) / 1024;
}

/** utime + stime from /proc/PID/stat (fields 14 and 15, in clock ticks of 1/100 s). */
async function cpuSecondsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // The command name, in parentheses, may hold spaces: fields are counted after it.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU time this process has used so far, user and system, seconds. */
export const ownCpuSeconds = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};

/** One connection, kept open between requests: what a client that cares about latency does. */
export const keepAliveAgent = () => new Agent({ keepAlive: true, maxSockets: 1 });

export interface CallOptions {
  method?: string;
  body?: string | Uint8Array;
  headers?: Record<string, string>;
  /** A keep-alive agent; without one the request gets a connection of its own. */
  agent?: Agent;
}

/** A request whose response is read as it streams. */
export function open(url: string, { method = 'GET', body, headers = {}, agent }: CallOptions = {}) {
  return new Promise<IncomingMessage>((resolve, reject) => {
    const req = request(url, { method, headers, agent: agent ?? false }, resolve);
    req.once('error', reject);
    req.end(body);
  });
}

/** A request and its whole response as text; anything but 2xx is an error. */
export async function call(url: string, options: CallOptions = {}): Promise<string> {
  const response = await open(url, options);
  response.setEncoding('utf8');
  let text = '';
  for await (const chunk of response) text += chunk;
  const status = response.statusCode ?? 0;
  if (status < 200 || status > 299) throw new Error(`${options.method ?? 'GET'} ${url}: ${status} ${text}`);
  return text;
}

export const json = { 'content-type': 'application/json' };

/** POST /api/v1/processes; the new process's pid. */
export async function startProcess(daemon: TestDaemon, body: object, agent?: Agent): Promise<number> {
  const text = await call(`${daemon.api}/processes`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: json,
    agent,
  });
  return (JSON.parse(text) as { pid: number }).pid;
}

/** Resolves once the process has ended and its output is complete: the end of a follow of its stderr. */
export async function processEnded(daemon: TestDaemon, pid: number, agent?: Agent): Promise<void> {
  const response = await open(`${daemon.api}/processes/${pid}/stderr/follow`, { agent });
  response.resume();
  await once(response, 'end');
}

export async function killProcess(daemon: TestDaemon, pid: number, agent?: Agent): Promise<void> {
  await call(`${daemon.api}/processes/${pid}`, { method: 'DELETE', agent });
}

/**
 * A scratch folder for the run, and in it the source data of the byte rows: base64 text of
 * random bytes, 76 characters and a newline a line (what `base64` prints), so output is not
 * runs of zeros and comes in lines as most output does. Made once, as large as the largest use.
 */
export class Scratch {
  private dir?: string;
  private source?: { path: string; bytes: number };

  async folder(): Promise<string> {
    this.dir ??= await mkdtemp(join(tmpdir(), 'sandboxd-bench-'));
    return this.dir;
  }

  async sourceFile(bytes: number): Promise<string> {
    if (this.source && this.source.bytes >= bytes) return this.source.path;
    const path = join(await this.folder(), `source-${bytes}.txt`);
    const out = createWriteStream(path);
    const linesPerPiece = 16 * 1024;
    for (let written = 0; written < bytes; ) {
      // 57 random bytes are 76 base64 characters.
      const text = Buffer.from(randomBytes(57 * linesPerPiece).toString('base64'), 'latin1');
      const piece = Buffer.allocUnsafe(77 * linesPerPiece);
      for (let line = 0; line < linesPerPiece; line++) {
        text.copy(piece, line * 77, line * 76, line * 76 + 76);
        piece[line * 77 + 76] = 0x0a;
      }
      if (!out.write(piece)) await once(out, 'drain');
      written += piece.length;
    }
    out.end();
    await once(out, 'close');
    this.source = { path, bytes };
    return path;
  }

  async remove(): Promise<void> {
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}

/** Runs `task` for each item, at most `width` at a time. */
export async function inBatches<T, R>(items: readonly T[], width: number, task: (item: T) => Promise<R>) {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += width) {
    results.push(...(await Promise.all(items.slice(i, i + width).map(task))));
  }
  return results;
}

/** Health round trips the prober takes over the next `ms`. */
export async function probeFor(prober: ChildProcess, ms: number): Promise<number[]> {
  prober.send('start');
  await sleep(ms);
  const answer = Promise.race([
    once(prober, 'message'),
    once(prober, 'exit').then(() => Promise.reject(new Error('the health prober died'))),
  ]);
  prober.send('stop');
  const [{ samples }] = (await answer) as [{ samples: number[] }];
  return samples;
}

/** A port nothing listens on, for the app to take. */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** Resolves once the app has said it listens (on its stdout, followed through the daemon). */
export async function appListening(api: string, pid: number): Promise<void> {
  const follow = await open(`${api}/processes/${pid}/stdout/follow`);
  follow.setEncoding('utf8');
  let seen = '';
  for await (const chunk of follow) {
    seen += chunk as string;
    if (seen.includes('listening')) break;
  }
  follow.destroy();
  if (!seen.includes('listening')) throw new Error(`the bench app did not start: ${seen}`);
}
