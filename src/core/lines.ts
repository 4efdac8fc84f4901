import { type LogRecord, lastSeqOf, type StreamName } from './log-record.ts';
import type { OutputLog } from './output-log.ts';

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

/**
 * Whole lines that lie one after another in one record, each ending with '\n': handed out as
 * the record's bytes, so that a reader that writes them out need not make a string of each.
 */
export interface LineRun {
  readonly kind: 'run';
  readonly record: LogRecord;
  /** Where the first line starts in the record's data. */
  readonly start: number;
  /** Just past the last line's '\n'. */
  readonly end: number;
  readonly firstId: number;
  /** The last line's id. */
  readonly id: number;
}

export type LineItem = OutputLine | Truncation | LineRun;

/** The lines of a run, as OutputLines; the text of each is decoded once for the whole run. */
export function runLines(run: LineRun): OutputLine[] {
  const { record } = run;
  const texts = record.data.toString('utf8', run.start, run.end - 1).split('\n');
  return texts.map((text, i) => ({
    kind: 'line',
    id: run.firstId + i,
    stream: record.stream,
    text: text.endsWith('\r') ? text.slice(0, -1) : text,
    timestamp: record.timestamp,
  }));
}

/** Items with every run spread into its lines. */
export function spreadRuns(items: LineItem[]): (OutputLine | Truncation)[] {
  return items.flatMap((item) => (item.kind === 'run' ? runLines(item) : [item]));
}

/** The part of a run after line `after` (a run wholly after it is returned as it is). */
function runAfter(run: LineRun, after: number): LineRun {
  if (run.firstId > after) return run;
  let start = run.start;
  for (let id = run.firstId; id <= after; id++) start = run.record.data.indexOf(10, start) + 1;
  return { ...run, start, firstId: after + 1 };
}

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

  /** The items this record brings: the lines it completes, after a loss it ends. */
  push(record: LogRecord): LineItem[] {
    if (this.only && record.stream !== this.only) return [];
    const { stream, data } = record;
    this.lastSeq = lastSeqOf(record);
    const items: LineItem[] = [];
    const expected = this.expected.get(stream) ?? this.firstOffset(record);
    if (record.offset > expected) {
      this.lost.add(stream);
      this.open.delete(stream);
    }
    this.expected.set(stream, record.offset + data.length);
    let at = 0;
    let id = record.seq;
    if (this.lost.has(stream)) {
      if (!record.startsLine) {
        // The rest of a line whose start is gone: skipped up to its end.
        const newline = data.indexOf(10);
        const cut = newline === -1 && record.endsLine && record.lines > 0;
        if (newline === -1 && !cut) return items;
        at = cut ? data.length : newline + 1;
        this.lost.delete(stream);
        items.push(this.truncation(stream, id, record.offset + at));
        id++;
      } else {
        this.lost.delete(stream);
        items.push(this.truncation(stream, id - 1, record.offset));
      }
      this.handedOut.set(stream, record.offset + at);
    }
    const first = data.indexOf(10, at);
    if (first !== -1) {
      // The line that was open ends here; the whole lines after it go out as one run.
      items.push(this.line(record, id++, data.subarray(at, first + 1)));
      const last = data.lastIndexOf(10);
      if (last > first) {
        const count =
          record.lines - (id - record.seq) - (record.endsLine && data[data.length - 1] !== 10 ? 1 : 0);
        items.push({ kind: 'run', record, start: first + 1, end: last + 1, firstId: id, id: id + count - 1 });
        id += count;
      }
      at = last + 1;
      this.handedOut.set(stream, record.offset + at);
    }
    // A line cut at the cap, or one the end of the output completes, ends without a '\n'.
    const endsWithoutNewline = record.endsLine && (data.length === 0 || data[data.length - 1] !== 10);
    if (endsWithoutNewline && id <= lastSeqOf(record)) {
      items.push(this.line(record, id, data.subarray(at)));
    } else if (at < data.length) {
      const parts = this.open.get(stream);
      if (parts) parts.push(data.subarray(at));
      else this.open.set(stream, [data.subarray(at)]);
    }
    return items;
  }

  /** A line ending with `tail`, after what is open on the stream. */
  private line(record: LogRecord, id: number, tail: Buffer): OutputLine {
    const parts = this.open.get(record.stream);
    let bytes = tail;
    if (parts) {
      this.open.delete(record.stream);
      bytes = Buffer.concat([...parts, tail]);
    }
    this.handedOut.set(
      record.stream,
      record.offset + (tail.byteOffset - record.data.byteOffset) + tail.length,
    );
    let end = bytes.length;
    if (bytes[end - 1] === 10) end--;
    if (bytes[end - 1] === 13) end--;
    // Buffer decoding replaces invalid UTF-8 with U+FFFD instead of failing.
    return {
      kind: 'line',
      id,
      stream: record.stream,
      text: bytes.toString('utf8', 0, end),
      timestamp: record.timestamp,
    };
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
      for (const item of cutter.push(record)) {
        if (item.id > after) items.push(item.kind === 'run' ? runAfter(item, after) : item);
      }
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
