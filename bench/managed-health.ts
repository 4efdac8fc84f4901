// Row 13: a daemon with 1000 managed processes (`sleep`), each with an http health check of a
// small app every second (their first probes spread over that second, as starts would spread
// them). The p99 of health round trips taken meanwhile by a process of its own
// (health-probe.ts), against the same probe of the same daemon before the processes started.
// The goal is 20 ms at most.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import {
  appListening,
  type BenchOptions,
  benchDaemon,
  call,
  freePort,
  inBatches,
  killProcess,
  percentile,
  probeFor,
  type Row,
  row,
  startProcess,
} from './common.ts';

const PROBE = fileURLToPath(new URL('./health-probe.ts', import.meta.url));

const APP = `
require('node:http')
  .createServer((req, res) => res.end('ok'))
  .listen(Number(process.argv[1]), '127.0.0.1', () => console.log('listening'));
`;

export async function managedHealth(options: BenchOptions): Promise<Row[]> {
  const count = options.quick ? 50 : 1000;
  const windowMs = options.quick ? 1000 : 5000;
  const rounds: { figure: number; baseline: number }[] = [];
  for (let round = 0; round < options.rounds; round++) {
    const daemon = await benchDaemon(options, `managed-health-${round + 1}`);
    const prober = fork(PROBE, [`${daemon.api}/health`], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const port = await freePort();
    const app = await startProcess(daemon, { command: process.execPath, args: ['-e', APP, String(port)] });
    let pids: number[] = [];
    try {
      await once(prober, 'message');
      await appListening(daemon.api, app);
      await probeFor(prober, windowMs / 5); // Compiles the daemon's code: not what it idles at.
      const idleP99 = percentile(await probeFor(prober, windowMs), 0.99);
      pids = await inBatches(
        Array.from({ length: count }, (_, i) => i),
        50,
        (i) =>
          startProcess(daemon, {
            command: 'sleep',
            args: ['3600'],
            health_check: {
              type: 'http',
              port,
              initial_delay_ms: Math.floor((i * 1000) / count),
              interval_ms: 1000,
            },
          }),
      );
      // Every check has passed once: all of them are probing.
      for (const pid of pids)
        await call(`${daemon.api}/processes/${pid}/wait?until=healthy&timeout_ms=60000`);
      const loadedP99 = percentile(await probeFor(prober, windowMs), 0.99);
      rounds.push({ figure: loadedP99, baseline: idleP99 });
      options.log(
        `13: round ${round + 1}: health p99 ${loadedP99.toFixed(2)} ms (idle ${idleP99.toFixed(2)})`,
      );
    } finally {
      await inBatches(pids, 50, (pid) => killProcess(daemon, pid));
      await killProcess(daemon, app);
      prober.disconnect();
      await daemon.stop();
    }
  }
  const done = row(
    {
      id: '13',
      what: `health p99, ${count} health-checked processes`,
      unit: 'ms',
      baselineIs: 'idle daemon',
    },
    rounds,
  );
  return [{ ...done, note: `${done.figure.toFixed(1)} ms (goal ≤ 20 ms)` }];
}
