// Row 8: a process writes 300 MiB to stdout (more than the 256 MiB a stream keeps) while its
// one follower has stopped reading after its first event. The daemon's peak resident memory
// over all that (VmHWM), against its idle; then the follower reads on to the end and must
// find an explicit `event: truncated` for what was dropped, with what came and what was
// reported lost adding up to all of it. A fresh daemon each round.
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import {
  type BenchOptions,
  benchDaemon,
  MiB,
  open,
  processEnded,
  type Row,
  row,
  type Scratch,
  startProcess,
} from './common.ts';

export async function pausedFollower(options: BenchOptions, scratch: Scratch): Promise<Row[]> {
  const bytes = (options.quick ? 16 : 300) * MiB;
  // Quick: a small cap, so that the same loss happens with a fraction of the output.
  const args = options.quick ? ['--output-max-bytes', String(4 * MiB)] : [];
  const source = await scratch.sourceFile(bytes);
  const rounds: { figure: number; baseline: number }[] = [];
  let note = '';
  for (let round = 0; round < options.rounds; round++) {
    const daemon = await benchDaemon(options, `paused-follower-${round + 1}`, args);
    try {
      const idleRss = await daemon.rssMiB();
      const pid = await startProcess(daemon, { command: 'head', args: ['-c', String(bytes), source] });
      const follower = await open(`${daemon.api}/processes/${pid}/stdout/follow`);
      const stream = sseCounter(follower);
      await once(follower, 'data');
      follower.pause();
      await processEnded(daemon, pid);
      const peakRss = await daemon.peakRssMiB();
      follower.resume();
      await once(follower, 'end');
      const { received, lost, truncatedEvents } = stream.totals();
      // The last line has no newline when the cut falls inside it.
      if (truncatedEvents === 0 || Math.abs(received + lost - bytes) > 1) {
        throw new Error(
          `paused follower: ${received} bytes came, ${lost} reported lost in ${truncatedEvents} truncated events, of ${bytes}`,
        );
      }
      rounds.push({ figure: peakRss, baseline: idleRss });
      note = `${truncatedEvents} truncated event(s), ${(lost / MiB).toFixed(1)} MiB reported lost, the rest came`;
      options.log(
        `8: round ${round + 1}: peak RSS ${peakRss.toFixed(0)} MiB (idle ${idleRss.toFixed(0)}); ${note}`,
      );
    } finally {
      await daemon.stop();
    }
  }
  return [
    row(
      {
        id: '8',
        what: `RSS peak, paused follower of ${bytes / MiB} MiB`,
        unit: 'MiB',
        baselineIs: 'idle daemon',
        note,
      },
      rounds,
    ),
  ];
}

/** Adds up, from a follow's SSE frames, the bytes of the lines that came and the bytes reported lost. */
function sseCounter(response: IncomingMessage) {
  response.setEncoding('utf8');
  let carry = '';
  let received = 0;
  let lost = 0;
  let truncatedEvents = 0;
  response.on('data', (chunk: string) => {
    const text = carry + chunk;
    let from = 0;
    for (let end = text.indexOf('\n\n'); end !== -1; end = text.indexOf('\n\n', from)) {
      const frame = text.slice(from, end);
      from = end + 2;
      const data = frame.slice(frame.indexOf('\ndata: ') + 7);
      if (frame.includes('\nevent: output\n')) {
        received += Buffer.byteLength((JSON.parse(data) as { line: string }).line) + 1;
      } else if (frame.includes('\nevent: truncated\n')) {
        lost += (JSON.parse(data) as { truncated_bytes: number }).truncated_bytes;
        truncatedEvents++;
      }
    }
    carry = text.slice(from);
  });
  return { totals: () => ({ received, lost, truncatedEvents }) };
}
