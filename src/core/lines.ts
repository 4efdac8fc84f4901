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

/**
 * The lines of a log, live: those captured so far, then new ones as they are read, ending
 * when the log closes or the signal aborts.
 */
export async function* followLines(
  log: OutputLog,
  query: LineQuery,
  signal?: AbortSignal,
): AsyncGenerator<OutputLine[]> {
  const after = query.after ?? 0;
  const cutter = new LineCutter(query.stream);
  for await (const batch of log.follow(await replayStart(log, query.after), signal)) {
    const lines: OutputLine[] = [];
    for (const record of batch) {
      const line = cutter.push(record);
      if (line && line.id > after) lines.push(line);
    }
    if (lines.length > 0) yield lines;
  }
}

export interface LinePage {
  lines: OutputLine[];
  /** True when the page stopped at the limit and more lines follow. */
  more: boolean;
}

/**
 * The lines captured so far (after `after`, at most `limit`). An unterminated last line is
 * not a line until the output ends (the log then completes it): until then it may still grow.
 */
export async function readLines(log: OutputLog, query: LineQuery, limit = Infinity): Promise<LinePage> {
  const after = query.after ?? 0;
  const end = log.endSeq;
  const cutter = new LineCutter(query.stream);
  const lines: OutputLine[] = [];
  let next = await replayStart(log, query.after);
  while (next < end) {
    const batch = await log.read(next);
    if (batch.length === 0) break;
    for (const record of batch) {
      if (record.seq >= end) break;
      const line = cutter.push(record);
      if (line && line.id > after) {
        if (lines.length === limit) return { lines, more: true };
        lines.push(line);
      }
    }
    next = (batch.at(-1) as LogRecord).seq + 1;
  }
  return { lines, more: false };
}
