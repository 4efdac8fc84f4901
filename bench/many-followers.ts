// Row 7: a daemon with 1000 running `cat`s (stdin a pipe), each followed by one SSE client
// (GET …/output/follow, a connection each). Its resident memory then, against the same
// daemon's idle, and the p99 of health round trips taken meanwhile by a process of its own
// (health-probe.ts), against the same probe of the idle daemon. A fresh daemon each round.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { fileURLToPath } from 'node:url';
import {
  type BenchOptions,
  benchDaemon,
  inBatches,
  killProcess,
  open,
  percentile,
  probeFor,
  type Row,
  row,
  startProcess,
} from './common.ts';

const PROBE = fileURLToPath(new URL('./health-probe.ts', import.meta.url));

export async function manyFollowers(options: BenchOptions): Promise<Row[]> {
  const count = options.quick ? 50 : 1000;
  const windowMs = options.quick ? 1000 : 5000;
  const rss: { figure: number; baseline: number }[] = [];
  const health: { figure: number; baseline: number }[] = [];
  for (let round = 0; round < options.rounds; round++) {
    const daemon = await benchDaemon(options, `many-followers-${round + 1}`);
    const prober = fork(PROBE, [`${daemon.api}/health`], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let followed: { pid: number; follower: IncomingMessage }[] = [];
    try {
      await once(prober, 'message');
      // A new daemon's first requests compile its code: not what an idle daemon answers in.
      await probeFor(prober, windowMs / 5);
      const idleRss = await daemon.rssMiB();
      const idleP99 = percentile(await probeFor(prober, windowMs), 0.99);
      followed = await inBatches(Array.from({ length: count }), 50, async () => {
        const pid = await startProcess(daemon, { command: 'cat', stdin_mode: 'pipe' });
        const follower = await open(`${daemon.api}/processes/${pid}/output/follow`);
        if (follower.statusCode !== 200) throw new Error(`follow: ${follower.statusCode}`);
        follower.resume();
        return { pid, follower };
      });
      const loadedP99 = percentile(await probeFor(prober, windowMs), 0.99);
      const loadedRss = await daemon.rssMiB();
      rss.push({ figure: loadedRss, baseline: idleRss });
      health.push({ figure: loadedP99, baseline: idleP99 });
      options.log(
        `7: round ${round + 1}: RSS ${loadedRss.toFixed(0)} MiB (idle ${idleRss.toFixed(0)}), ` +
          `health p99 ${loadedP99.toFixed(2)} ms (idle ${idleP99.toFixed(2)})`,
      );
    } finally {
      // Each follower ends once its process has: then nothing of this round is left.
      await inBatches(followed, 50, async ({ pid, follower }) => {
        const ended = once(follower, 'end');
        await killProcess(daemon, pid);
        await ended;
      });
      prober.disconnect();
      await daemon.stop();
    }
  }
  return [
    row({ id: '7a', what: `RSS, ${count} followed processes`, unit: 'MiB', baselineIs: 'idle daemon' }, rss),
    row(
      {
        id: '7b',
        what: `health p99, ${count} followed processes`,
        unit: 'ms',
        baselineIs: 'idle daemon',
      },
      health,
    ),
  ];
}
