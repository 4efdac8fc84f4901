import { once } from 'node:events';
import type { FollowedLine, TruncatedEvent } from '../client/index.ts';

/**
 * Writes followed lines, each with its newline: stderr lines to stderr when `split`, the rest
 * to stdout. Waits while the reader is slow, so the daemon, not this process, holds the backlog.
 */
export async function writeLines(
  lines: readonly FollowedLine[],
  { split }: { split: boolean },
): Promise<void> {
  let run = '';
  let runToStderr = false;
  for (const line of lines) {
    const toStderr = split && line.stream === 'stderr';
    if (toStderr !== runToStderr && run !== '') {
      await write(runToStderr, run);
      run = '';
    }
    runToStderr = toStderr;
    run += `${line.line}\n`;
  }
  if (run !== '') await write(runToStderr, run);
}

async function write(toStderr: boolean, text: string): Promise<void> {
  const stream = toStderr ? process.stderr : process.stdout;
  if (!stream.write(text)) await once(stream, 'drain');
}

/** Output the daemon dropped before it was read here: said on stderr, where the lines would have been. */
export function reportTruncation({ truncated_bytes, stream }: TruncatedEvent): void {
  process.stderr.write(
    `sandboxd: [${truncated_bytes} bytes of ${stream} dropped by the daemon before they were read]\n`,
  );
}
