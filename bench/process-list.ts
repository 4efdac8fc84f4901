// What the console's once-a-second poll of the process table costs: the size and time of
// GET /api/v1/processes with a full table of retained processes.
import { restClient } from '../test/helpers/api.ts';
import { startDaemon } from '../test/helpers/daemon.ts';

const COUNT = Number(process.env.PROCESSES ?? 1000);
const daemon = await startDaemon([], {}, { built: true });
const client = restClient(daemon);
try {
  for (let started = 0; started < COUNT; started += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, COUNT - started) }, () => client.start({ command: 'true' })),
    );
    await Promise.all(batch.map((info) => client.waitForEnd(info.pid)));
  }
  const timings: number[] = [];
  let bytes = 0;
  for (let i = 0; i < 50; i++) {
    const began = performance.now();
    const response = await fetch(`${daemon.api}/processes`);
    bytes = (await response.arrayBuffer()).byteLength;
    timings.push(performance.now() - began);
  }
  timings.sort((a, b) => a - b);
  const median = timings[Math.floor(timings.length / 2)] as number;
  console.log(
    `GET /api/v1/processes with ${COUNT} processes: ${(bytes / 1024).toFixed(0)} KiB, median ${median.toFixed(2)} ms`,
  );
} finally {
  await daemon.stop();
}
