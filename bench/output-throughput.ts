// Rows 1-3: how fast output reaches a client, against Node reading the same command's output
// from a pipe in this process. Each round runs the baseline, then the daemon, back to back.
//   1  `seq 1 1000000` through REST run-and-wait (SSE), lines/s
//   2  200 MiB of text through Connect Start, binary envelopes, MiB/s
//   3  the same through Connect JSON (what the e2b SDK speaks)
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { encodeEnvelope, pipe, transformSplitEnvelope } from '@connectrpc/connect/protocol';
import {
  contentTypeStreamJson,
  contentTypeStreamProto,
  endStreamFlag,
  endStreamFromJson,
} from '@connectrpc/connect/protocol-connect';
import { StartRequestSchema, StartResponseSchema } from '../src/gen/process/process_pb.ts';
import {
  type BenchDaemon,
  type BenchOptions,
  benchDaemon,
  elapsedMs,
  json,
  MiB,
  median,
  open,
  ownCpuSeconds,
  type Row,
  row,
  type Scratch,
} from './common.ts';

/** Row 1. */
export async function sseLines(options: BenchOptions): Promise<Row[]> {
  const lines = options.quick ? 100_000 : 1_000_000;
  const daemon = await benchDaemon(options, 'sse-lines');
  const rounds: { figure: number; baseline: number }[] = [];
  try {
    for (let round = 0; round < options.rounds; round++) {
      const baseline = lines / (await seqThroughPipe(lines));
      const figure = lines / (await seqThroughRun(daemon, lines));
      rounds.push({ figure, baseline });
      options.log(`1: round ${round + 1}: ${kilo(figure)} lines/s, pipe ${kilo(baseline)} lines/s`);
    }
  } finally {
    await daemon.stop();
  }
  return [
    row(
      {
        id: '1',
        what: `${lines / 1000}k lines via REST run (SSE)`,
        unit: 'lines/s',
        baselineIs: 'pipe + split',
      },
      rounds,
    ),
  ];
}

const kilo = (perSecond: number) => `${(perSecond / 1000).toFixed(0)}k`;

/**
 * The baseline of row 1: `seq` read from a pipe in this process as UTF-8 text and split into
 * lines with String.split('\n'), carrying an unfinished line over to the next chunk. Seconds.
 */
async function seqThroughPipe(lines: number): Promise<number> {
  const started = performance.now();
  const child = spawn('seq', ['1', String(lines)], { stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout.setEncoding('utf8');
  let rest = '';
  let count = 0;
  let last = '';
  child.stdout.on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop() as string;
    count += parts.length;
    last = parts.at(-1) ?? last;
  });
  await once(child, 'close');
  if (count !== lines || last !== String(lines)) throw new Error(`seq through a pipe: ${count} lines`);
  return elapsedMs(started) / 1000;
}

/**
 * Row 1 through the daemon: POST /api/v1/processes/run, its SSE answer read to the end and its
 * frames counted (one for the pid, one a line, one for the exit). Seconds.
 */
async function seqThroughRun(daemon: BenchDaemon, lines: number): Promise<number> {
  const started = performance.now();
  const response = await open(`${daemon.api}/processes/run`, {
    method: 'POST',
    body: JSON.stringify({ command: 'seq', args: ['1', String(lines)] }),
    headers: json,
  });
  response.setEncoding('latin1');
  let carry = '';
  let frames = 0;
  let tail = '';
  response.on('data', (chunk: string) => {
    const text = carry + chunk;
    let from = 0;
    for (let end = text.indexOf('\n\n'); end !== -1; end = text.indexOf('\n\n', from)) {
      if (text.startsWith('data:', from)) frames++;
      from = end + 2;
    }
    carry = text.slice(from);
    tail = (tail + text.slice(Math.max(0, from - 200), from)).slice(-200);
  });
  await once(response, 'end');
  const seconds = elapsedMs(started) / 1000;
  const [lastLine, exit] = tail
    .split('\n\n')
    .filter((frame) => frame.startsWith('data:'))
    .slice(-2)
    .map((frame) => JSON.parse(frame.slice(5)) as { line?: string; exit_code?: number });
  if (frames !== lines + 2 || lastLine?.line !== String(lines) || exit?.exit_code !== 0) {
    throw new Error(`REST run of seq: ${frames} frames, ending ${tail}`);
  }
  return seconds;
}

/** Rows 2 and 3. */
export async function connectBytes(
  options: BenchOptions,
  scratch: Scratch,
  format: 'binary' | 'json',
): Promise<Row[]> {
  const bytes = (options.quick ? 16 : 200) * MiB;
  const source = await scratch.sourceFile(bytes);
  const id = format === 'binary' ? '2' : '3';
  const daemon = await benchDaemon(options, `connect-${format}`);
  const rounds: { figure: number; baseline: number }[] = [];
  // CPU seconds of each side per round: with two CPUs for the daemon, the client and `head`,
  // they show which side sets the pace.
  const daemonCpu: number[] = [];
  const clientCpu: number[] = [];
  try {
    for (let round = 0; round < options.rounds; round++) {
      const baseline = bytes / MiB / (await headThroughPipe(source, bytes));
      const [daemonBefore, clientBefore] = [await daemon.cpuSeconds(), ownCpuSeconds()];
      const seconds = await headThroughConnect(daemon, source, bytes, format);
      clientCpu.push(ownCpuSeconds() - clientBefore);
      daemonCpu.push((await daemon.cpuSeconds()) - daemonBefore);
      const figure = bytes / MiB / seconds;
      rounds.push({ figure, baseline });
      options.log(
        `${id}: round ${round + 1}: ${figure.toFixed(0)} MiB/s in ${seconds.toFixed(2)} s (CPU: daemon ` +
          `${daemonCpu.at(-1)?.toFixed(2)} s, client ${clientCpu.at(-1)?.toFixed(2)} s), pipe ${baseline.toFixed(0)} MiB/s`,
      );
    }
  } finally {
    await daemon.stop();
  }
  return [
    row(
      {
        id,
        what: `${bytes / MiB} MiB via Connect Start, ${format === 'binary' ? 'binary' : 'JSON'}`,
        unit: 'MiB/s',
        baselineIs: 'pipe',
        note: `CPU per round: daemon ${median(daemonCpu).toFixed(2)} s, client ${median(clientCpu).toFixed(2)} s`,
      },
      rounds,
    ),
  ];
}

/** The baseline of rows 2 and 3: `head -c` of the source read from a pipe, bytes counted. Seconds. */
async function headThroughPipe(source: string, bytes: number): Promise<number> {
  const started = performance.now();
  const child = spawn('head', ['-c', String(bytes), source], { stdio: ['ignore', 'pipe', 'inherit'] });
  let received = 0;
  child.stdout.on('data', (chunk: Buffer) => {
    received += chunk.length;
  });
  await once(child, 'close');
  if (received !== bytes) throw new Error(`head through a pipe: ${received} of ${bytes} bytes`);
  return elapsedMs(started) / 1000;
}

/**
 * Rows 2 and 3 through the daemon: the Connect server stream split into messages by Connect's
 * own envelope reader, each message decoded to its bytes. Not the Connect client: on Node 20,
 * protobuf-es decodes JSON's base64 a character at a time (about 200 MiB/s here), which would
 * measure the client; this decodes base64 with Buffer. Seconds.
 */
async function headThroughConnect(
  daemon: BenchDaemon,
  source: string,
  bytes: number,
  format: 'binary' | 'json',
): Promise<number> {
  const start = { process: { cmd: 'head', args: ['-c', String(bytes), source] }, stdin: false };
  const body =
    format === 'binary'
      ? toBinary(StartRequestSchema, create(StartRequestSchema, start))
      : Buffer.from(JSON.stringify(start));
  const started = performance.now();
  const response = await open(`${daemon.url}/process.Process/Start`, {
    method: 'POST',
    body: encodeEnvelope(0, body),
    headers: { 'content-type': format === 'binary' ? contentTypeStreamProto : contentTypeStreamJson },
  });
  if (response.statusCode !== 200) throw new Error(`Connect Start: ${response.statusCode}`);
  let received = 0;
  let exited: string | undefined;
  let other: string | undefined;
  for await (const { flags, data } of pipe(response, transformSplitEnvelope(0xffffffff))) {
    if (flags & endStreamFlag) {
      const { error } = endStreamFromJson(data);
      if (error) other = `error ${error.message}`;
    } else if (format === 'binary') {
      const event = fromBinary(StartResponseSchema, data).event?.event;
      if (event?.case === 'data') received += event.value.output.value?.length ?? 0;
      else if (event?.case === 'end') exited = event.value.status;
      else if (event?.case === 'truncated') other = 'output was truncated';
    } else {
      const { event } = JSON.parse(Buffer.from(data).toString()) as { event?: ConnectJsonEvent };
      if (event?.data) received += Buffer.from(event.data.stdout ?? '', 'base64').length;
      else if (event?.end) exited = event.end.status;
      else if (event?.truncated) other = 'output was truncated';
    }
  }
  const seconds = elapsedMs(started) / 1000;
  if (received !== bytes || exited !== 'exit status 0' || other) {
    throw new Error(`Connect Start of head: ${received} of ${bytes} bytes, ${exited}, ${other ?? ''}`);
  }
  return seconds;
}

interface ConnectJsonEvent {
  data?: { stdout?: string };
  end?: { status?: string };
  truncated?: unknown;
}
