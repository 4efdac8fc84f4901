// Row 6: the round trip of a line through a process: a REST write of one line to a `cat`'s
// stdin, until that line arrives on a follow of its stdout opened beforehand. The baseline, per
// sample: Node writing the line to a `cat` of its own and reading it back from the pipe, plus
// one keep-alive round trip to /api/v1/health. p50 and p99 of each round, samples interleaved.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import {
  type BenchOptions,
  benchDaemon,
  call,
  elapsedMs,
  keepAliveAgent,
  killProcess,
  open,
  percentile,
  type Row,
  row,
  startProcess,
} from './common.ts';

export async function stdinFollow(options: BenchOptions): Promise<Row[]> {
  const samples = options.quick ? 30 : 500;
  const daemon = await benchDaemon(options, 'stdin-follow');
  const agent = keepAliveAgent();
  const local = spawn('cat', [], { stdio: ['pipe', 'pipe', 'inherit'] });
  const p50: { figure: number; baseline: number }[] = [];
  const p99: { figure: number; baseline: number }[] = [];
  const pid = await startProcess(daemon, { command: 'cat', stdin_mode: 'pipe' }, agent);
  const follow = await open(`${daemon.api}/processes/${pid}/stdout/follow`);
  try {
    const remote = lineWatcher(follow);
    const echoed = lineWatcher(local.stdout);
    for (let round = 0; round < options.rounds; round++) {
      const daemonMs: number[] = [];
      const floorMs: number[] = [];
      for (let i = 0; i < samples; i++) {
        const line = `r${round}-line-${i}`;

        let started = performance.now();
        const back = echoed.next(`${line}\n`);
        local.stdin.write(`${line}\n`);
        await back;
        const pipeMs = elapsedMs(started);

        started = performance.now();
        await call(`${daemon.api}/health`, { agent });
        floorMs.push(pipeMs + elapsedMs(started));

        started = performance.now();
        const seen = remote.next(`"line":"${line}"`);
        const written = call(`${daemon.api}/processes/${pid}/stdin`, {
          method: 'POST',
          body: `${line}\n`,
          headers: { 'content-type': 'application/octet-stream' },
          agent,
        });
        await seen;
        daemonMs.push(elapsedMs(started));
        await written;
      }
      p50.push({ figure: percentile(daemonMs, 0.5), baseline: percentile(floorMs, 0.5) });
      p99.push({ figure: percentile(daemonMs, 0.99), baseline: percentile(floorMs, 0.99) });
      options.log(
        `6: round ${round + 1}: p50 ${percentile(daemonMs, 0.5).toFixed(2)} ms, p99 ${percentile(daemonMs, 0.99).toFixed(2)} ms ` +
          `(floor ${percentile(floorMs, 0.5).toFixed(2)}, ${percentile(floorMs, 0.99).toFixed(2)})`,
      );
    }
  } finally {
    follow.destroy();
    local.stdin.end();
    await once(local, 'close');
    await killProcess(daemon, pid, agent);
    await daemon.stop();
  }
  return [
    row({ id: '6a', what: 'stdin → SSE follow, p50', unit: 'ms', baselineIs: 'pipe echo + health' }, p50),
    row({ id: '6b', what: 'stdin → SSE follow, p99', unit: 'ms', baselineIs: 'pipe echo + health' }, p99),
  ];
}

/** Waits for text on a stream; what came before it is dropped. */
function lineWatcher(stream: Readable) {
  stream.setEncoding('utf8');
  let seen = '';
  let waiting: { text: string; resolve: () => void; reject: (error: Error) => void } | undefined;
  stream.once('close', () => waiting?.reject(new Error(`the stream closed before ${waiting.text} came`)));
  const check = () => {
    if (!waiting) return;
    const at = seen.indexOf(waiting.text);
    if (at === -1) return;
    seen = seen.slice(at + waiting.text.length);
    const { resolve } = waiting;
    waiting = undefined;
    resolve();
  };
  stream.on('data', (chunk: string) => {
    seen += chunk;
    check();
  });
  return {
    next(text: string): Promise<void> {
      if (stream.closed) return Promise.reject(new Error('the stream has closed'));
      return new Promise((resolve, reject) => {
        waiting = { text, resolve, reject };
        check();
      });
    },
  };
}
