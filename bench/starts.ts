// Starting processes.
//   4   POST /api/v1/processes of /bin/true, until its answer, against the floor of doing that by
//       hand: Node's spawn (until its 'spawn' event, in a lean process: spawn-probe.mjs) plus one
//       keep-alive round trip to /api/v1/health. p50s, samples interleaved.
//   5   row 4's ratio on a daemon that retains 1 GiB of output of finished processes, against the
//       same ratio on an empty daemon measured alongside it.
//   9   `true` start to end through REST run-and-wait and Connect Start, against Node spawning
//       `true` and reading its (empty) output to the end (in the same lean process).
// Every request goes over a node:http keep-alive connection of its own daemon.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import type { Agent } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { create, toBinary } from '@bufbuild/protobuf';
import { encodeEnvelope } from '@connectrpc/connect/protocol';
import { contentTypeStreamProto } from '@connectrpc/connect/protocol-connect';
import { StartRequestSchema } from '../src/gen/process/process_pb.ts';
import { diskBytes } from '../test/helpers/daemon.ts';
import {
  type BenchDaemon,
  type BenchOptions,
  benchDaemon,
  call,
  elapsedMs,
  json,
  keepAliveAgent,
  killProcess,
  MiB,
  median,
  processEnded,
  type Row,
  row,
  type Scratch,
  startProcess,
} from './common.ts';

const TRUE = { command: '/bin/true' };

/** Node's spawn timed in a lean process of its own (see spawn-probe.mjs). */
async function spawnProbe() {
  const probe = fork(fileURLToPath(new URL('./spawn-probe.mjs', import.meta.url)), [], { execArgv: [] });
  await once(probe, 'message');
  return {
    async time(what: 'start' | 'run'): Promise<number> {
      const answer = once(probe, 'message');
      probe.send(what);
      return (await answer)[0] as number;
    },
    stop: () => probe.disconnect(),
  };
}

type SpawnProbe = Awaited<ReturnType<typeof spawnProbe>>;

/** A daemon under measurement, its connection and what was started on it this round. */
interface Side {
  daemon: BenchDaemon;
  agent: Agent;
  healthMs: number[];
  postMs: number[];
  pids: number[];
}

/** Rows 4 and 5. */
export async function startLatency(options: BenchOptions, scratch: Scratch): Promise<Row[]> {
  const samples = options.quick ? 20 : 150;
  const retainedEach = (options.quick ? 4 : 128) * MiB;
  const retainedCount = 8;
  const dataDir = join(await scratch.folder(), 'retaining-daemon');
  await mkdir(dataDir);
  const empty = side(await benchDaemon(options, 'start-empty'));
  const retaining = side(await benchDaemon(options, 'start-retaining', ['--data-dir', dataDir]));
  const probe = await spawnProbe();
  const startRounds: { figure: number; baseline: number }[] = [];
  const retainedRounds: { figure: number; baseline: number }[] = [];
  let note = '';
  try {
    const source = await scratch.sourceFile(retainedEach);
    const retained = await Promise.all(
      Array.from({ length: retainedCount }, () =>
        startProcess(retaining.daemon, { command: 'head', args: ['-c', String(retainedEach), source] }),
      ),
    );
    await Promise.all(retained.map((pid) => processEnded(retaining.daemon, pid)));
    const onDisk = await diskBytes(dataDir);
    options.log(
      `4, 5: ${retainedCount} finished processes retain ${((retainedCount * retainedEach) / MiB).toFixed(0)} MiB of output (${(onDisk / MiB).toFixed(0)} MiB on disk)`,
    );

    await sampleRound(probe, [empty, retaining], 10);
    for (let round = 0; round < options.rounds; round++) {
      const spawnMs = await sampleRound(probe, [empty, retaining], samples);
      const floor = (s: Side) => median(spawnMs) + median(s.healthMs);
      const ratio = (s: Side) => median(s.postMs) / floor(s);
      startRounds.push({ figure: median(empty.postMs), baseline: floor(empty) });
      retainedRounds.push({ figure: ratio(retaining), baseline: ratio(empty) });
      options.log(
        `4, 5: round ${round + 1}: start ${median(empty.postMs).toFixed(2)} ms (spawn ${median(spawnMs).toFixed(2)} + health ${median(empty.healthMs).toFixed(2)}), ` +
          `retaining ${median(retaining.postMs).toFixed(2)} ms (health ${median(retaining.healthMs).toFixed(2)})`,
      );
    }
    // Both daemons' size beside the ratio: what a start costs may grow with the daemon.
    note = `daemon RSS ${(await retaining.daemon.rssMiB()).toFixed(0)} MiB retaining, ${(await empty.daemon.rssMiB()).toFixed(0)} MiB empty`;
    // Retention is bounded: this row means nothing if any of that output was dropped meanwhile.
    for (const pid of retained) {
      const text = await call(`${retaining.daemon.api}/processes/${pid}/stdout?limit=0`, {
        agent: retaining.agent,
      });
      const { truncated_bytes } = JSON.parse(text) as { truncated_bytes: number };
      if (truncated_bytes !== 0) throw new Error(`process ${pid} lost ${truncated_bytes} bytes of output`);
    }
  } finally {
    probe.stop();
    await Promise.all([empty.daemon.stop(), retaining.daemon.stop()]);
  }
  return [
    row(
      {
        id: '4',
        what: 'start: POST /processes /bin/true p50',
        unit: 'ms',
        baselineIs: 'spawn + health RTT',
      },
      startRounds,
    ),
    row(
      {
        id: '5',
        what: `start ratio, ${(retainedCount * retainedEach) / MiB} MiB retained`,
        unit: '×',
        baselineIs: 'empty daemon',
        note,
      },
      retainedRounds,
    ),
  ];
}

function side(daemon: BenchDaemon): Side {
  return { daemon, agent: keepAliveAgent(), healthMs: [], postMs: [], pids: [] };
}

/**
 * `samples` times, in turn: a spawn by the probe, then for each daemon (first one, then the
 * other, so neither always follows the other's work) a health round trip and a start. A
 * started process is waited for to its end, untimed, so that no exit overlaps the next sample.
 * Resets the sides' samples; returns the spawn times. Afterwards every process started is
 * killed (they have ended: this leaves nothing behind).
 */
async function sampleRound(probe: SpawnProbe, sides: Side[], samples: number): Promise<number[]> {
  const spawnMs: number[] = [];
  for (const s of sides) Object.assign(s, { healthMs: [], postMs: [], pids: [] });
  for (let i = 0; i < samples; i++) {
    spawnMs.push(await probe.time('start'));
    for (const s of i % 2 === 0 ? sides : [...sides].reverse()) {
      let started = performance.now();
      await call(`${s.daemon.api}/health`, { agent: s.agent });
      s.healthMs.push(elapsedMs(started));
      started = performance.now();
      const pid = await startProcess(s.daemon, TRUE, s.agent);
      s.postMs.push(elapsedMs(started));
      s.pids.push(pid);
      await processEnded(s.daemon, pid, s.agent);
    }
  }
  for (const s of sides) {
    for (const pid of s.pids) await killProcess(s.daemon, pid, s.agent);
  }
  return spawnMs;
}

/** Rows 9a and 9b. */
export async function shortCommands(options: BenchOptions): Promise<Row[]> {
  const samples = options.quick ? 10 : 100;
  const daemon = await benchDaemon(options, 'short-commands');
  const probe = await spawnProbe();
  const agent = keepAliveAgent();
  const connectStart = encodeEnvelope(
    0,
    toBinary(StartRequestSchema, create(StartRequestSchema, { process: { cmd: 'true' }, stdin: false })),
  );
  const restRounds: { figure: number; baseline: number }[] = [];
  const connectRounds: { figure: number; baseline: number }[] = [];
  try {
    for (let round = 0; round < options.rounds; round++) {
      const spawnMs: number[] = [];
      const restMs: number[] = [];
      const connectMs: number[] = [];
      for (let i = 0; i < samples; i++) {
        spawnMs.push(await probe.time('run'));

        let started = performance.now();
        const run = await call(`${daemon.api}/processes/run`, {
          method: 'POST',
          body: JSON.stringify({ command: 'true' }),
          headers: json,
          agent,
        });
        restMs.push(elapsedMs(started));
        if (!run.includes('"exit_code":0')) throw new Error(`REST run of true: ${run}`);

        started = performance.now();
        const stream = await call(`${daemon.url}/process.Process/Start`, {
          method: 'POST',
          body: connectStart,
          headers: { 'content-type': contentTypeStreamProto },
          agent,
        });
        connectMs.push(elapsedMs(started));
        if (!stream.includes('exit status 0')) throw new Error('Connect Start of true did not end with 0');
      }
      restRounds.push({ figure: median(restMs), baseline: median(spawnMs) });
      connectRounds.push({ figure: median(connectMs), baseline: median(spawnMs) });
      options.log(
        `9: round ${round + 1}: REST run ${median(restMs).toFixed(2)} ms, Connect Start ${median(connectMs).toFixed(2)} ms, spawn ${median(spawnMs).toFixed(2)} ms`,
      );
    }
  } finally {
    probe.stop();
    await daemon.stop();
  }
  return [
    row(
      { id: '9a', what: '`true` end to end, REST run, p50', unit: 'ms', baselineIs: 'spawn to close' },
      restRounds,
    ),
    row(
      { id: '9b', what: '`true` end to end, Connect Start, p50', unit: 'ms', baselineIs: 'spawn to close' },
      connectRounds,
    ),
  ];
}
