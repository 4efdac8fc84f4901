import { Transform } from 'node:stream';

const MiB = 1024 * 1024;
/** Smaller transfers finish before a bar would tell anyone anything. */
const WORTH_A_BAR = MiB;
const WIDTH = 24;

/**
 * Passes bytes through, drawing a progress bar on stderr when it is a terminal and the
 * transfer is large enough to wait for; otherwise it only counts.
 */
export function progress(label: string, total: number | undefined): Transform {
  const draw = process.stderr.isTTY === true && (total === undefined || total >= WORTH_A_BAR);
  const started = Date.now();
  let done = 0;
  let drawnAt = 0;
  const render = (final: boolean) => {
    const seconds = Math.max((Date.now() - started) / 1000, 0.001);
    const rate = `${(done / MiB / seconds).toFixed(1)} MiB/s`;
    let line: string;
    if (total === undefined || total === 0) {
      line = `${label}  ${(done / MiB).toFixed(1)} MiB  ${rate}`;
    } else {
      const fraction = Math.min(done / total, 1);
      const filled = Math.round(fraction * WIDTH);
      const bar = `${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}`;
      const amounts = `${(done / MiB).toFixed(1)}/${(total / MiB).toFixed(1)} MiB`;
      line = `${label}  [${bar}] ${String(Math.floor(fraction * 100)).padStart(3)}%  ${amounts}  ${rate}`;
    }
    process.stderr.write(`\r${line.slice(0, (process.stderr.columns ?? 80) - 1)}\x1b[K${final ? '\n' : ''}`);
  };
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      done += chunk.length;
      if (draw && Date.now() - drawnAt >= 100) {
        drawnAt = Date.now();
        render(false);
      }
      callback(null, chunk);
    },
    flush(callback) {
      if (draw) render(true);
      callback();
    },
  });
}
