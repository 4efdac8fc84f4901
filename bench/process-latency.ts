// How long a short command takes end to end through each dialect, against the cost of a bare
// spawn in this process; how fast lines and bytes flow to a follower; the daemon's memory.
// Prints medians of several rounds. Run: npm run bench
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { Process } from '../src/gen/process/process_pb.ts';
import { startDaemon } from '../test/helpers/daemon.ts';

const ROUNDS = 5;
const PER_ROUND = 100;
const OUTPUT_BYTES = 200 * 1024 * 1024;
const LINES = 1_000_000;

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
};

async function timeRounds(task: () => Promise<void>): Promise<number> {
  const medians: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const times: number[] = [];
    for (let i = 0; i < PER_ROUND; i++) {
      const start = performance.now();
      await task();
      times.push(performance.now() - start);
    }
    medians.push(median(times));
  }
  return median(medians);
}

const bareSpawn = () =>
  new Promise<void>((resolve, reject) => {
    const child = spawn('true', { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', () => resolve());
  });

// The compiled daemon, as `npm start` runs it: `npm run bench` builds it first.
const daemon = await startDaemon([], {}, { built: true });
const rss = () =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${daemon.child.pid}/status`, 'utf8'))?.[1]) / 1024;
try {
  const rpc = createClient(
    Process,
    createConnectTransport({ baseUrl: daemon.url, httpVersion: '1.1', useBinaryFormat: true }),
  );
  const restRun = async () => {
    const response = await fetch(`${daemon.api}/processes/run`, {
      method: 'POST',
      body: JSON.stringify({ command: 'true' }),
    });
    await response.text();
  };
  const connectStart = async () => {
    for await (const _ of rpc.start({ process: { cmd: 'true' }, stdin: false })) {
      // Drain to the end event.
    }
  };

  const idleRss = rss();
  const spawnMs = await timeRounds(bareSpawn);
  const restMs = await timeRounds(restRun);
  const connectMs = await timeRounds(connectStart);
  console.log(`short command, median of ${ROUNDS} rounds x ${PER_ROUND}:`);
  console.log(`  bare spawn in this process   ${spawnMs.toFixed(2)} ms`);
  console.log(
    `  REST run (start to end)      ${restMs.toFixed(2)} ms  (${(restMs / spawnMs).toFixed(2)}x bare spawn)`,
  );
  console.log(
    `  Connect Start (start to end) ${connectMs.toFixed(2)} ms  (${(connectMs / spawnMs).toFixed(2)}x bare spawn)`,
  );

  const afterShortRss = rss();
  const lineRates: number[] = [];
  for (let round = 0; round < 3; round++) {
    const start = performance.now();
    const response = await fetch(`${daemon.api}/processes/run`, {
      method: 'POST',
      body: JSON.stringify({ command: 'seq', args: ['1', String(LINES)] }),
    });
    const text = await response.text();
    if (!text.includes(`"line":"${LINES}"`)) throw new Error('the last line did not arrive');
    lineRates.push(LINES / ((performance.now() - start) / 1000));
  }
  console.log(
    `lines through REST run (SSE), ${LINES} lines: ${(median(lineRates) / 1000).toFixed(0)}k lines/s (median of 3)`,
  );

  const throughput: number[] = [];
  for (let round = 0; round < 3; round++) {
    const start = performance.now();
    let received = 0;
    for await (const { event } of rpc.start({
      process: { cmd: 'head', args: ['-c', String(OUTPUT_BYTES), '/dev/zero'] },
    })) {
      if (event?.event.case === 'data') received += event.event.value.output.value?.length ?? 0;
    }
    if (received !== OUTPUT_BYTES) throw new Error(`received ${received} of ${OUTPUT_BYTES} bytes`);
    throughput.push(OUTPUT_BYTES / 1024 / 1024 / ((performance.now() - start) / 1000));
  }
  console.log(
    `output to one Connect watcher, ${OUTPUT_BYTES / 1024 / 1024} MiB: ${median(throughput).toFixed(0)} MiB/s (median of 3)`,
  );
  const afterOutputRss = rss();
  // V8 gives its grown heap back only after a while idle; this shows what stays.
  await new Promise((resolve) => setTimeout(resolve, 40_000));
  console.log(
    `daemon resident memory: ${idleRss.toFixed(0)} MiB idle, ${afterShortRss.toFixed(0)} MiB after the short commands, ` +
      `${afterOutputRss.toFixed(0)} MiB after the output runs, ${rss().toFixed(0)} MiB 40 s later`,
  );
} finally {
  await daemon.stop();
}
