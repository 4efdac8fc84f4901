import type { LogRecord, OutputLog, StreamName } from './output-log.ts';

export interface OutputLine {
  readonly kind: 'line';
  /** Sequence number of the record that completed the line: resume after it to get the next. */
  readonly id: number;
  readonly stream: StreamName;
  readonly text: string;
  /** Milliseconds since the epoch when the line's last byte was read. */
  readonly timestamp: number;
}

/**
 * Output of a stream that a reader will not get: dropped past the retention cap before it
 * read it, and the rest of a line whose start or end went with it. Lines resume after it at
 * a whole line.
 */
export interface Truncation {
  readonly kind: 'truncated';
  /** Resume after this id to go on with the first whole line after the loss. */
  readonly id: number;
  readonly stream: StreamName;
  readonly bytes: number;
}

export type LineItem = OutputLine | Truncation;

/**
 * Joins records back into lines, per stream; a stream filter keeps only that stream's lines.
 * It notices lost output by the stream offsets (a record that does not start where the last
 * one ended): the broken line is dropped, never spliced to another, and once a record starts
 * a whole line again the loss is reported, with every byte of the stream not handed out as a
 * line since the last one that was.
 */
export class LineCutter {
  /** Per stream, the parts of a line not complete yet. */
  private readonly open = new Map<StreamName, Buffer[]>();
  /** Per stream, the offset just past the last line handed out (or where reading it began). */
  private readonly handedOut = new Map<StreamName, number>();
  /** Per stream, the offset the next record has when nothing was lost. */
  private readonly expected = new Map<StreamName, number>();
  /** Streams that lost output: their records are skipped up to the next line start. */
  private readonly lost = new Set<StreamName>();
  private lastSeq = 0;

  /**
   * `origin`: 'start' when reading from the log's beginning (every stream at offset 0), or
   * how much of each stream was dropped after the point a reader resumes from.
   */
  constructor(
    private readonly only?: StreamName,
    private readonly origin: 'start' | ((stream: StreamName) => number) = 'start',
  ) {}

  /** The items this record brings: a line it completes, after a loss it ends. */
  push(record: LogRecord): LineItem[] {
    if (this.only && record.stream !== this.only) return [];
    const { stream } = record;
    this.lastSeq = record.seq;
    const items: LineItem[] = [];
    const expected = this.expected.get(stream) ?? this.firstOffset(record);
    if (record.offset > expected) {
      this.lost.add(stream);
      this.open.delete(stream);
    }
    this.expected.set(stream, record.offset + record.data.length);
    if (this.lost.has(stream)) {
      if (!record.startsLine) return items;
      this.lost.delete(stream);
      items.push(this.truncation(stream, record.seq - 1, record.offset));
      this.handedOut.set(stream, record.offset);
    }
    const parts = this.open.get(stream);
    if (!record.lineEnd) {
      if (parts) parts.push(record.data);
      else this.open.set(stream, [record.data]);
      return items;
    }
    let bytes = record.data;
    if (parts) {
      this.open.delete(stream);
      bytes = Buffer.concat([...parts, record.data]);
    }
    this.handedOut.set(stream, record.offset + record.data.length);
    if (bytes.at(-1) === 10) bytes = bytes.subarray(0, -1);
    if (bytes.at(-1) === 13) bytes = bytes.subarray(0, -1);
    // Buffer decoding replaces invalid UTF-8 with U+FFFD instead of failing.
    items.push({
      kind: 'line',
      id: record.seq,
      stream,
      text: bytes.toString('utf8'),
      timestamp: record.timestamp,
    });
    return items;
  }

  /** At the end of the output: losses not yet followed by a whole line. */
  finish(): Truncation[] {
    const items = [...this.lost].map((stream) =>
      this.truncation(stream, this.lastSeq, this.expected.get(stream) as number),
    );
    this.lost.clear();
    return items;
  }

  /**
   * Where a stream's first record is expected to start. From the log's beginning that is 0;
   * when resuming, where it is, unless output after the resume point was dropped, or the
   * record is the middle of a line whose start is gone.
   */
  private firstOffset(record: LogRecord): number {
    if (this.origin === 'start') {
      this.handedOut.set(record.stream, 0);
      return 0;
    }
    const missed = this.origin(record.stream);
    this.handedOut.set(record.stream, record.offset - missed);
    if (missed === 0 && !record.startsLine) this.lost.add(record.stream);
    return record.offset - missed;
  }

  private truncation(stream: StreamName, id: number, resumeOffset: number): Truncation {
    return { kind: 'truncated', id, stream, bytes: resumeOffset - (this.handedOut.get(stream) ?? 0) };
  }
}

export interface LineQuery {
  /** Only this stream's lines; all streams in read order when absent. */
  stream?: StreamName;
  /** Continue after the line with this id. */
  after?: number;
}

/** Where reading must start so that the lines after `after` are rebuilt whole, and a cutter for it. */
async function startReading(log: OutputLog, query: LineQuery): Promise<{ from: number; cutter: LineCutter }> {
  const { after, stream } = query;
  if (after === undefined) return { from: log.startSeq, cutter: new LineCutter(stream, 'start') };
  const record = after < log.startSeq ? undefined : await log.record(after);
  const cutter = new LineCutter(stream, (each) => log.droppedAfter(each, after));
  return { from: record ? record.replayFrom : Math.max(after + 1, log.startSeq), cutter };
}

/** Lines (and losses) cut from batches of records; those up to `after` are left out. */
async function* cutLines(
  batches: AsyncIterable<LogRecord[]>,
  cutter: LineCutter,
  after: number,
  signal?: AbortSignal,
): AsyncGenerator<LineItem[]> {
  for await (const batch of batches) {
    const items: LineItem[] = [];
    for (const record of batch) {
      for (const item of cutter.push(record)) if (item.id > after) items.push(item);
    }
    if (items.length > 0) yield items;
  }
  if (signal?.aborted) return;
  const rest = cutter.finish().filter((item) => item.id > after);
  if (rest.length > 0) yield rest;
}

/**
 * The lines of a log, live: those captured so far, then new ones as they are read, ending
 * when the log closes or the signal aborts. Output lost to the retention cap before it was
 * read shows as a Truncation where it was.
 */
export async function* followLines(
  log: OutputLog,
  query: LineQuery,
  signal?: AbortSignal,
): AsyncGenerator<LineItem[]> {
  const { from, cutter } = await startReading(log, query);
  yield* cutLines(log.follow(from, signal), cutter, query.after ?? 0, signal);
}

/**
 * The lines captured so far, in batches. An unterminated last line is not a line until the
 * output ends (the log then completes it): until then it may still grow.
 */
export async function* linesSoFar(log: OutputLog, query: LineQuery): AsyncGenerator<LineItem[]> {
  const { from, cutter } = await startReading(log, query);
  yield* cutLines(log.span(from, log.endSeq), cutter, query.after ?? 0);
}
