// Row 14: how fast output reaches the e2b SDK, the client most users have: `commands.run` of
// `head -c N` of the base64 source with an onStdout callback, against Node reading the same
// command's output from a pipe as UTF-8 text in this process (the SDK hands out text too).
// The SDK in debug mode talks Connect JSON to the daemon and makes no other call.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Sandbox } from 'e2b';
import {
  type BenchOptions,
  benchDaemon,
  elapsedMs,
  MiB,
  median,
  ownCpuSeconds,
  type Row,
  row,
  type Scratch,
} from './common.ts';

export async function sdkOutput(options: BenchOptions, scratch: Scratch): Promise<Row[]> {
  const bytes = (options.quick ? 8 : 60) * MiB;
  const source = await scratch.sourceFile(bytes);
  const daemon = await benchDaemon(options, 'e2b-sdk');
  const rounds: { figure: number; baseline: number }[] = [];
  const daemonCpu: number[] = [];
  const clientCpu: number[] = [];
  try {
    const sandbox = await Sandbox.create({ debug: true, sandboxUrl: daemon.url });
    for (let round = 0; round < options.rounds; round++) {
      const baseline = bytes / MiB / (await headThroughPipe(source, bytes));
      const [daemonBefore, clientBefore] = [await daemon.cpuSeconds(), ownCpuSeconds()];
      const seconds = await headThroughSdk(sandbox, source, bytes);
      clientCpu.push(ownCpuSeconds() - clientBefore);
      daemonCpu.push((await daemon.cpuSeconds()) - daemonBefore);
      const figure = bytes / MiB / seconds;
      rounds.push({ figure, baseline });
      options.log(
        `14: round ${round + 1}: ${figure.toFixed(0)} MiB/s in ${seconds.toFixed(2)} s (CPU: daemon ` +
          `${daemonCpu.at(-1)?.toFixed(2)} s, client ${clientCpu.at(-1)?.toFixed(2)} s), pipe ${baseline.toFixed(0)} MiB/s`,
      );
    }
  } finally {
    await daemon.stop();
  }
  return [
    row(
      {
        id: '14',
        what: `${bytes / MiB} MiB via the e2b SDK's commands.run`,
        unit: 'MiB/s',
        baselineIs: 'pipe, as text',
        note: `CPU per round: daemon ${median(daemonCpu).toFixed(2)} s, client ${median(clientCpu).toFixed(2)} s`,
      },
      rounds,
    ),
  ];
}

/** The baseline: `head -c` of the source from a pipe, decoded as UTF-8, characters counted. Seconds. */
async function headThroughPipe(source: string, bytes: number): Promise<number> {
  const started = performance.now();
  const child = spawn('head', ['-c', String(bytes), source], { stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout.setEncoding('utf8');
  let received = 0;
  child.stdout.on('data', (chunk: string) => {
    received += chunk.length;
  });
  await once(child, 'close');
  if (received !== bytes) throw new Error(`head through a pipe: ${received} of ${bytes} characters`);
  return elapsedMs(started) / 1000;
}

/** The same through the SDK: onStdout's text counted (the source is ASCII), the exit checked. Seconds. */
async function headThroughSdk(sandbox: Sandbox, source: string, bytes: number): Promise<number> {
  const started = performance.now();
  let received = 0;
  const result = await sandbox.commands.run(`head -c ${bytes} ${source}`, {
    onStdout: (text: string) => {
      received += text.length;
    },
    timeoutMs: 300_000,
  });
  const seconds = elapsedMs(started) / 1000;
  if (received !== bytes || result.exitCode !== 0) {
    throw new Error(`the SDK's run of head: ${received} of ${bytes} characters, exit ${result.exitCode}`);
  }
  return seconds;
}
