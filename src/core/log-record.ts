export type StreamName = 'stdout' | 'stderr' | 'pty';

/** Every stream, in a fixed order: a stream's index is its code on disk. */
export const STREAM_NAMES: readonly StreamName[] = ['stdout', 'stderr', 'pty'];

/** How much a read takes at once, from memory or from disk. */
export const READ_BLOCK_BYTES = 256 * 1024;

/**
 * One piece of captured output: a chunk of one stream as it was read from the pipe (cut where
 * a line passes the length cap). A record holds any number of lines; each line end in it has
 * its own sequence number, so that a reader can name any line and resume after it.
 */
export interface LogRecord {
  /**
   * Per-process sequence number across all streams, in the order bytes were read: the id of
   * the first line end in the record. The record takes one number per line end (one at least).
   */
  readonly seq: number;
  /** Line ends in the record: each '\n', and the end of a record that `endsLine` without one. */
  readonly lines: number;
  readonly stream: StreamName;
  /** Byte offset of `data` within its stream. */
  readonly offset: number;
  /** Milliseconds since the epoch when the bytes were read. */
  readonly timestamp: number;
  readonly data: Buffer;
  /**
   * The record ends exactly at a line end: after a '\n', or where a line was cut at the length
   * cap or left unterminated when the output ended (then the record has no '\n' at its end; an
   * empty record ends a line that earlier records hold).
   */
  readonly endsLine: boolean;
  /** The record begins a line: the one before it on its stream, if any, ended one. */
  readonly startsLine: boolean;
  /**
   * Where a line reader resuming after any line of this record must start reading so that the
   * partial lines still open on every stream are rebuilt whole.
   */
  readonly replayFrom: number;
}

/** The last sequence number a record takes. */
export const lastSeqOf = (record: LogRecord): number => record.seq + Math.max(record.lines, 1) - 1;
