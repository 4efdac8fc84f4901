// What a start costs under each way of tracking descendants: a short command end to end through
// REST run and Connect Start, against a bare spawn in this process. Prints medians of several
// rounds. Run: npm run build && node --import tsx bench/start-latency.ts [mode ...]
// (modes: auto, cgroup2, cgroup1, proc; none given: the daemon's default).
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { Process } from '../src/gen/process/process_pb.ts';
import { startDaemon } from '../test/helpers/daemon.ts';

const ROUNDS = 7;
const PER_ROUND = 100;

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

const modes = process.argv.slice(2);
console.log(`short command, median of ${ROUNDS} rounds x ${PER_ROUND}:`);
console.log(`  bare spawn in this process     ${(await timeRounds(bareSpawn)).toFixed(2)} ms`);
for (const mode of modes.length > 0 ? modes : [undefined]) {
  const daemon = await startDaemon(mode ? ['--containment', mode] : [], {}, { built: true });
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
    const label = (mode ?? 'default').padEnd(8);
    console.log(`  ${label} REST run             ${(await timeRounds(restRun)).toFixed(2)} ms`);
    console.log(`  ${label} Connect Start        ${(await timeRounds(connectStart)).toFixed(2)} ms`);
  } finally {
    await daemon.stop();
  }
}
