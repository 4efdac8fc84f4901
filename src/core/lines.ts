import type { LogRecord, OutputLog, StreamName } from './output-log.ts';

export interface OutputLine {
  /** Sequence number of the record that completed the line: resume after it to get the next. */
  readonly id: number;
  readonly stream: StreamName;
  readonly text: string;
  /** Milliseconds since the epoch when the line's last byte was read. */
  readonly timestamp: number;
}

/** Joins records back into lines, per stream; a stream filter keeps only that stream's lines. */
export class LineCutter {
  /** Per stream, the parts of a line not complete yet. */
  private readonly open = new Map<StreamName, Buffer[]>();

  constructor(private readonly only?: StreamName) {}

  /** The line this record completes, if any. */
  push(record: LogRecord): OutputLine | undefined {
    if (this.only && record.stream !== this.only) return undefined;
    const parts = this.open.get(record.stream);
    if (!record.lineEnd) {
      if (parts) parts.push(record.data);
      else this.open.set(record.stream, [record.data]);
      return undefined;
    }
    let bytes = record.data;
    if (parts) {
      this.open.delete(record.stream);
      bytes = Buffer.concat([...parts, record.data]);
    }
    if (bytes.at(-1) === 10) bytes = bytes.subarray(0, -1);
    if (bytes.at(-1) === 13) bytes = bytes.subarray(0, -1);
    // Buffer decoding replaces invalid UTF-8 with U+FFFD instead of failing.
    return {
      id: record.seq,
      stream: record.stream,
      text: bytes.toString('utf8'),
      timestamp: record.timestamp,
    };
  }
}

export interface LineQuery {
  /** Only this stream's lines; all streams in read order when absent. */
  stream?: StreamName;
  /** Continue after the line with this id. */
  after?: number;
}

/** Where reading must start so that the lines after `after` are rebuilt whole. */
async function replayStart(log: OutputLog, after: number | undefined): Promise<number> {
  if (after === undefined || after < log.startSeq) return log.startSeq;
  const record = await log.record(after);
  return record ? record.replayFrom : after + 1;
}

/** Lines cut from batches of records; those up to `after` are left out. */
async function* cutLines(
  batches: AsyncIterable<LogRecord[]>,
  query: LineQuery,
): AsyncGenerator<OutputLine[]> {
  const after = query.after ?? 0;
  const cutter = new LineCutter(query.stream);
  for await (const batch of batches) {
    const lines: OutputLine[] = [];
    for (const record of batch) {
      const line = cutter.push(record);
      if (line && line.id > after) lines.push(line);
    }
    if (lines.length > 0) yield lines;
  }
}

/**
 * The lines of a log, live: those captured so far, then new ones as they are read, ending
 * when the log closes or the signal aborts.
 */
export async function* followLines(
  log: OutputLog,
  query: LineQuery,
  signal?: AbortSignal,
): AsyncGenerator<OutputLine[]> {
  yield* cutLines(log.follow(await replayStart(log, query.after), signal), query);
}

/**
 * The lines captured so far, in batches. An unterminated last line is not a line until the
 * output ends (the log then completes it): until then it may still grow.
 */
export async function* linesSoFar(log: OutputLog, query: LineQuery): AsyncGenerator<OutputLine[]> {
  yield* cutLines(log.span(await replayStart(log, query.after), log.endSeq), query);
}
