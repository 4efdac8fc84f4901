import { closeSync, mkdirSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';

export type StreamName = 'stdout' | 'stderr' | 'pty';
const STREAM_CODES: readonly StreamName[] = ['stdout', 'stderr', 'pty'];

/**
 * One piece of captured output. A chunk read from a pipe is cut after each '\n', so a record
 * holds at most one line end, at its very end: a line can then be named by the sequence
 * number of the record that completes it, and a reader can resume after any line.
 */
export interface LogRecord {
  /** Per-process sequence number across all streams: the order in which bytes were read. */
  readonly seq: number;
  readonly stream: StreamName;
  /** Byte offset of `data` within its stream. */
  readonly offset: number;
  /** Milliseconds since the epoch when the bytes were read. */
  readonly timestamp: number;
  readonly data: Buffer;
  /** The record completes a line: it ends with '\n', or the line reached the length cap. */
  readonly lineEnd: boolean;
  /**
   * Where a line reader resuming after this record must start reading so that the partial
   * lines still open on every stream are rebuilt whole.
   */
  readonly replayFrom: number;
}

export interface OutputLogOptions {
  /** Folder for this log's spill segments; created on first spill, removed by `release`. */
  spillDir: string;
  /** Newest bytes kept in memory, per stream. */
  memoryBytesPerStream: number;
  /** Bytes kept in all (memory and spill), per stream; past it the oldest segment is dropped. */
  maxBytesPerStream: number;
  /** A line longer than this is cut into several lines. */
  maxLineBytes: number;
}

// What a record costs in memory beyond its bytes (object, Buffer view); counted so that a flood
// of one-byte lines cannot grow the heap past the memory budget.
const RECORD_OVERHEAD_BYTES = 128;
// Header of a record in a spill segment: seq u48, stream u8, flags u8, timestamp u48,
// offset u48, replayFrom u48, length u32.
const HEADER_BYTES = 30;
const INDEX_EVERY_BYTES = 64 * 1024;
const READ_BLOCK_BYTES = 256 * 1024;
// A finished process keeps no more than this in memory; the rest goes to its spill file.
const SETTLED_MEMORY_BYTES = 64 * 1024;

interface Segment {
  readonly path: string;
  readonly fd: number;
  readonly firstSeq: number;
  nextSeq: number;
  size: number;
  readonly streamBytes: Record<StreamName, number>;
  /** Sparse (seq, file position) pairs in ascending order, the first at position 0. */
  readonly index: { seq: number; pos: number }[];
  lastIndexedPos: number;
}

const zeroPerStream = (): Record<StreamName, number> => ({ stdout: 0, stderr: 0, pty: 0 });

/**
 * An append-only log of a process's output: the newest bytes in memory, older ones in spill
 * segments on disk, the oldest dropped (and counted) past the cap. Readers pull records by
 * sequence number at their own pace, so a slow reader never holds up the process or others.
 */
export class OutputLog {
  private readonly memory: LogRecord[] = [];
  private readonly memoryBytes = zeroPerStream();
  private readonly segments: Segment[] = [];
  private segmentCount = 0;
  private readonly storedBytes = zeroPerStream();
  private readonly droppedBytes = zeroPerStream();
  private readonly streamOffsets = zeroPerStream();
  private readonly openLineBytes = zeroPerStream();
  private readonly openLineStart: Record<StreamName, number | null> = {
    stdout: null,
    stderr: null,
    pty: null,
  };
  private readonly waiters = new Set<() => void>();
  private nextSeq = 1;
  private firstRetainedSeq = 1;
  private isClosed = false;
  private isReleased = false;

  constructor(private readonly options: OutputLogOptions) {}

  /** The sequence number the next record will get. */
  get endSeq(): number {
    return this.nextSeq;
  }

  /** The oldest sequence number still readable; older records were dropped past the cap. */
  get startSeq(): number {
    return this.firstRetainedSeq;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Bytes of a stream (or of all streams) dropped because the log outgrew its cap. */
  truncatedBytes(stream?: StreamName): number {
    if (stream) return this.droppedBytes[stream];
    return this.droppedBytes.stdout + this.droppedBytes.stderr + this.droppedBytes.pty;
  }

  append(stream: StreamName, chunk: Buffer, timestamp = Date.now()): void {
    if (this.isClosed || chunk.length === 0) return;
    const { maxLineBytes } = this.options;
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(10, start);
      let end = newline === -1 ? chunk.length : newline + 1;
      let lineEnd = newline !== -1;
      const room = maxLineBytes - this.openLineBytes[stream];
      if (end - start >= room) {
        end = start + room;
        lineEnd = true;
      }
      this.push(stream, chunk.subarray(start, end), timestamp, lineEnd);
      start = end;
    }
    this.enforceMemoryBudget(stream);
    this.wake();
  }

  /**
   * No more records will come; readers finish once they have read everything. An unterminated
   * last line is completed by an empty record, so that it too has its own sequence number.
   */
  close(): void {
    if (this.isClosed) return;
    for (const stream of STREAM_CODES) {
      if (this.openLineStart[stream] !== null) this.push(stream, Buffer.alloc(0), Date.now(), true);
    }
    this.isClosed = true;
    this.wake();
  }

  /** Moves what a finished process holds in memory to disk, keeping the heap small. */
  settle(): void {
    let memoryTotal = 0;
    for (const record of this.memory) memoryTotal += record.data.length + RECORD_OVERHEAD_BYTES;
    if (memoryTotal > SETTLED_MEMORY_BYTES) this.spill(this.memory.length);
  }

  /** Deletes the spill files. The log is unreadable afterwards. */
  release(): void {
    this.isReleased = true;
    this.close();
    for (const segment of this.segments) closeSync(segment.fd);
    this.segments.length = 0;
    this.memory.length = 0;
    rmSync(this.options.spillDir, { recursive: true, force: true });
  }

  /**
   * Records with seq >= fromSeq that exist now, up to about maxBytes of data; empty when there
   * are none yet. A fromSeq older than the retained start reads from the start.
   */
  async read(fromSeq: number, maxBytes = READ_BLOCK_BYTES): Promise<LogRecord[]> {
    for (;;) {
      const from = Math.max(fromSeq, this.firstRetainedSeq);
      if (this.isReleased || from >= this.nextSeq) return [];
      const memoryStart = this.memoryStartSeq();
      if (from >= memoryStart) return this.readMemory(from, maxBytes);
      try {
        return await this.readSpilled(from, maxBytes);
      } catch (error) {
        // The segment was dropped past the cap while we read it: start again from what is left.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
  }

  /** The record with this sequence number, if still retained. */
  async record(seq: number): Promise<LogRecord | undefined> {
    const [record] = await this.read(seq, 1);
    return record?.seq === seq ? record : undefined;
  }

  /** Bytes of a stream captured so far, dropped ones included. */
  bytesCaptured(stream: StreamName): number {
    return this.streamOffsets[stream];
  }

  /**
   * Where to start reading to get (about) the last `maxBytes` of a stream: the first record
   * whose end lies within them. Meant for a log of that one stream, such as a terminal's,
   * whose offsets then grow with the sequence numbers.
   */
  async tailStart(stream: StreamName, maxBytes: number): Promise<number> {
    const from = this.streamOffsets[stream] - maxBytes;
    let low = this.firstRetainedSeq;
    let high = this.nextSeq;
    while (low < high) {
      const middle = Math.floor((low + high) / 2);
      const record = await this.record(middle);
      if (!record || record.offset + record.data.length <= from) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** Resolves once a record with seq >= fromSeq exists, the log closes, or the signal aborts. */
  waitForRecords(fromSeq: number, signal?: AbortSignal): Promise<void> {
    if (fromSeq < this.nextSeq || this.isClosed || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /**
   * Every record from fromSeq on, in batches, live until the log closes or the signal aborts.
   * Records dropped past the cap before they were read are skipped.
   */
  async *follow(fromSeq: number, signal?: AbortSignal): AsyncGenerator<LogRecord[]> {
    let next = fromSeq;
    while (!signal?.aborted) {
      const batch = await this.read(next);
      const last = batch.at(-1);
      if (last) {
        yield batch;
        next = last.seq + 1;
        continue;
      }
      if (this.isClosed || this.isReleased) return;
      await this.waitForRecords(next, signal);
    }
  }

  private push(stream: StreamName, data: Buffer, timestamp: number, lineEnd: boolean): void {
    const seq = this.nextSeq++;
    if (lineEnd) {
      this.openLineStart[stream] = null;
      this.openLineBytes[stream] = 0;
    } else {
      this.openLineStart[stream] ??= seq;
      this.openLineBytes[stream] += data.length;
    }
    let replayFrom = seq + 1;
    for (const start of Object.values(this.openLineStart)) {
      if (start !== null && start < replayFrom) replayFrom = start;
    }
    const offset = this.streamOffsets[stream];
    this.streamOffsets[stream] += data.length;
    this.memory.push({ seq, stream, offset, timestamp, data, lineEnd, replayFrom });
    this.memoryBytes[stream] += data.length + RECORD_OVERHEAD_BYTES;
    this.storedBytes[stream] += data.length;
  }

  private memoryStartSeq(): number {
    return this.memory[0]?.seq ?? this.nextSeq;
  }

  private readMemory(from: number, maxBytes: number): LogRecord[] {
    const first = from - this.memoryStartSeq();
    const records: LogRecord[] = [];
    let bytes = 0;
    for (let i = first; i < this.memory.length && bytes < maxBytes; i++) {
      const record = this.memory[i] as LogRecord;
      records.push(record);
      bytes += record.data.length;
    }
    return records;
  }

  private enforceMemoryBudget(stream: StreamName): void {
    const budget = this.options.memoryBytesPerStream;
    if (this.memoryBytes[stream] <= budget) return;
    // Spill down to three quarters of the budget so that writes to disk come in large batches.
    const target = budget * 0.75;
    let count = 0;
    let freed = 0;
    for (const record of this.memory) {
      if (this.memoryBytes[stream] - freed <= target) break;
      if (record.stream === stream) freed += record.data.length + RECORD_OVERHEAD_BYTES;
      count++;
    }
    this.spill(count);
  }

  /** Moves the oldest `count` records from memory to the current spill segment. */
  private spill(count: number): void {
    if (count <= 0) return;
    // Spilled records leave the array at once: a reference kept here would keep their bytes.
    const records = this.memory.splice(0, count);
    const segment = this.currentSegment(records[0] as LogRecord);
    let size = 0;
    for (const record of records) size += HEADER_BYTES + record.data.length;
    const buffer = Buffer.allocUnsafe(size);
    let pos = 0;
    for (const record of records) {
      if (segment.size + pos - segment.lastIndexedPos >= INDEX_EVERY_BYTES) {
        segment.index.push({ seq: record.seq, pos: segment.size + pos });
        segment.lastIndexedPos = segment.size + pos;
      }
      pos = encodeRecord(record, buffer, pos);
      segment.streamBytes[record.stream] += record.data.length;
      this.memoryBytes[record.stream] -= record.data.length + RECORD_OVERHEAD_BYTES;
    }
    writeFully(segment.fd, buffer);
    segment.size += size;
    segment.nextSeq = (records.at(-1) as LogRecord).seq + 1;
    this.enforceCap();
  }

  private currentSegment(first: LogRecord): Segment {
    const segmentBytes = Math.max(64 * 1024, Math.floor(this.options.maxBytesPerStream / 8));
    const current = this.segments.at(-1);
    if (current && current.size < segmentBytes) return current;
    if (this.segmentCount === 0) mkdirSync(this.options.spillDir, { recursive: true });
    const path = join(this.options.spillDir, `segment-${this.segmentCount++}.log`);
    const segment: Segment = {
      path,
      fd: openSync(path, 'w'),
      firstSeq: first.seq,
      nextSeq: first.seq,
      size: 0,
      streamBytes: zeroPerStream(),
      index: [{ seq: first.seq, pos: 0 }],
      lastIndexedPos: 0,
    };
    this.segments.push(segment);
    return segment;
  }

  private enforceCap(): void {
    const cap = this.options.maxBytesPerStream;
    const overCap = () => STREAM_CODES.some((stream) => this.storedBytes[stream] > cap);
    while (this.segments.length > 0 && overCap()) {
      const oldest = this.segments.shift() as Segment;
      closeSync(oldest.fd);
      unlinkSync(oldest.path);
      for (const stream of STREAM_CODES) {
        this.storedBytes[stream] -= oldest.streamBytes[stream];
        this.droppedBytes[stream] += oldest.streamBytes[stream];
      }
      this.firstRetainedSeq = this.segments[0]?.firstSeq ?? this.memoryStartSeq();
    }
  }

  private async readSpilled(from: number, maxBytes: number): Promise<LogRecord[]> {
    const segment = this.segments.find((s) => from < s.nextSeq) as Segment;
    let entry = segment.index[0] as { seq: number; pos: number };
    for (const candidate of segment.index) {
      if (candidate.seq > from) break;
      entry = candidate;
    }
    const end = segment.size;
    const records: LogRecord[] = [];
    let bytes = 0;
    const file = await open(segment.path, 'r');
    try {
      let pos = entry.pos;
      while (pos < end && bytes < maxBytes) {
        const length = Math.min(end - pos, Math.max(READ_BLOCK_BYTES, maxBytes - bytes + HEADER_BYTES));
        const block = Buffer.allocUnsafe(length);
        const { bytesRead } = await file.read(block, 0, length, pos);
        let at = 0;
        while (at + HEADER_BYTES <= bytesRead && bytes < maxBytes) {
          const dataLength = block.readUInt32LE(at + 26);
          if (at + HEADER_BYTES + dataLength > bytesRead) break;
          const record = decodeRecord(block, at, dataLength);
          at += HEADER_BYTES + dataLength;
          if (record.seq < from) continue;
          records.push(record);
          bytes += dataLength;
        }
        if (at === 0) {
          // One record larger than the block: read exactly that record.
          const dataLength = block.readUInt32LE(26);
          const whole = Buffer.allocUnsafe(HEADER_BYTES + dataLength);
          await file.read(whole, 0, whole.length, pos);
          const record = decodeRecord(whole, 0, dataLength);
          if (record.seq >= from) {
            records.push(record);
            bytes += dataLength;
          }
          at = whole.length;
        }
        pos += at;
      }
    } finally {
      await file.close();
    }
    return records;
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

function encodeRecord(record: LogRecord, buffer: Buffer, pos: number): number {
  buffer.writeUIntLE(record.seq, pos, 6);
  buffer.writeUInt8(STREAM_CODES.indexOf(record.stream), pos + 6);
  buffer.writeUInt8(record.lineEnd ? 1 : 0, pos + 7);
  buffer.writeUIntLE(record.timestamp, pos + 8, 6);
  buffer.writeUIntLE(record.offset, pos + 14, 6);
  buffer.writeUIntLE(record.replayFrom, pos + 20, 6);
  buffer.writeUInt32LE(record.data.length, pos + 26);
  record.data.copy(buffer, pos + HEADER_BYTES);
  return pos + HEADER_BYTES + record.data.length;
}

function decodeRecord(block: Buffer, at: number, dataLength: number): LogRecord {
  return {
    seq: block.readUIntLE(at, 6),
    stream: STREAM_CODES[block.readUInt8(at + 6)] as StreamName,
    lineEnd: block.readUInt8(at + 7) === 1,
    timestamp: block.readUIntLE(at + 8, 6),
    offset: block.readUIntLE(at + 14, 6),
    replayFrom: block.readUIntLE(at + 20, 6),
    data: block.subarray(at + HEADER_BYTES, at + HEADER_BYTES + dataLength),
  };
}

function writeFully(fd: number, buffer: Buffer): void {
  let written = 0;
  while (written < buffer.length) written += writeSync(fd, buffer, written);
}
