import { rm } from 'node:fs/promises';
import { type LogRecord, lastSeqOf, READ_BLOCK_BYTES, STREAM_NAMES, type StreamName } from './log-record.ts';
import { type DiskUse, StreamSpill } from './stream-spill.ts';
import { Waiters } from './waiters.ts';

export interface OutputLogOptions {
  /** Folder for this log's spill segments; created on first spill, removed by `release`. */
  spillDir: string;
  /** Newest bytes kept in memory, per stream. */
  memoryBytesPerStream: number;
  /**
   * Bytes kept in all per stream (in memory, and on disk with record headers); past it the
   * stream's oldest segment is dropped.
   */
  maxBytesPerStream: number;
  /** A line longer than this is cut into several lines. */
  maxLineBytes: number;
  /** Told of every change in the bytes this log holds on disk. */
  diskUse?: DiskUse;
  /** How long a spill file's read handle is kept for the next read (2 s unless given). */
  readHandleIdleMs?: number;
}

// What a record costs in memory beyond its bytes (object, Buffer view); counted so that a flood
// of one-byte lines cannot grow the heap past the memory budget.
const RECORD_OVERHEAD_BYTES = 128;
// A finished process keeps no more than this in memory; the rest goes to its spill file.
const SETTLED_MEMORY_BYTES = 64 * 1024;

const zeroPerStream = (): Record<StreamName, number> => ({ stdout: 0, stderr: 0, pty: 0 });

// While writes to disk lag behind, memory may hold this many times a stream's budget before
// the log asks its writer to wait (a slow disk then slows the process that writes, no other).
const CONGESTION_FACTOR = 2;

/**
 * An append-only log of a process's output: the newest bytes in memory, older ones in spill
 * segments on disk, the oldest dropped (and counted) past the cap. Readers pull records by
 * sequence number at their own pace, so a slow reader never holds up the process or others.
 * Disk work is asynchronous: records stay in memory (and readable there) until their write
 * has finished, and a writer that outruns the disk is told to wait (`congested`).
 */
export class OutputLog {
  private readonly memory: LogRecord[] = [];
  private readonly memoryBytes = zeroPerStream();
  private readonly spills = new Map<StreamName, StreamSpill>();
  private readonly droppedBytes = zeroPerStream();
  private readonly streamOffsets = zeroPerStream();
  private readonly openLineBytes = zeroPerStream();
  private readonly openLineStart: Record<StreamName, number | null> = {
    stdout: null,
    stderr: null,
    pty: null,
  };
  private readonly waiters = new Waiters();
  private readonly calmWaiters = new Waiters();
  private nextSeq = 1;
  private spillFailureReported = false;
  private isClosed = false;
  private isReleased = false;
  /** The write to disk under way, if any: one at a time. */
  private spilling: Promise<void> | undefined;

  constructor(private readonly options: OutputLogOptions) {}

  /** The sequence number the next record will get. */
  get endSeq(): number {
    return this.nextSeq;
  }

  /** The oldest sequence number still readable; older records were dropped past the cap. */
  get startSeq(): number {
    let start = this.memoryStartSeq();
    for (const spill of this.spills.values()) start = Math.min(start, spill.firstSeq ?? start);
    return start;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Bytes of a stream (or of all streams) dropped: past the cap, or when the disk failed. */
  truncatedBytes(stream?: StreamName): number {
    if (!stream) return STREAM_NAMES.reduce((sum, each) => sum + this.truncatedBytes(each), 0);
    return this.droppedBytes[stream] + (this.spills.get(stream)?.lostBytes ?? 0);
  }

  /** Bytes this log holds on disk, record headers included. */
  get diskBytes(): number {
    let bytes = 0;
    for (const spill of this.spills.values()) bytes += spill.bytes;
    return bytes;
  }

  /**
   * Drops the oldest spill segments, of whichever stream's is oldest, until at least `bytes`
   * of disk are freed (or none are left); the drop is counted as any other. Returns the bytes
   * freed.
   */
  shed(bytes: number): number {
    let freed = 0;
    while (freed < bytes) {
      let oldest: [StreamName, StreamSpill] | undefined;
      for (const entry of this.spills) {
        const first = entry[1].firstSeq;
        if (first !== undefined && (oldest === undefined || first < (oldest[1].firstSeq as number)))
          oldest = entry;
      }
      if (!oldest) break;
      const [stream, spill] = oldest;
      const before = spill.bytes;
      this.droppedBytes[stream] += spill.dropOldest();
      freed += before - spill.bytes;
    }
    return freed;
  }

  /**
   * Bytes of a stream dropped past the cap that came after `seq` (see StreamSpill.droppedAfter):
   * what a reader resuming after `seq` missed of it.
   */
  droppedAfter(stream: StreamName, seq: number): number {
    return this.spills.get(stream)?.droppedAfter(seq) ?? 0;
  }

  /**
   * Adds a chunk read from a stream: one record, or more where a line passes the length cap
   * (a line may fill the cap exactly and still take the '\n' that follows, in this chunk or
   * the next; anything else past the cap starts a new line).
   */
  append(stream: StreamName, chunk: Buffer, timestamp = Date.now()): void {
    if (this.isClosed || chunk.length === 0) return;
    const { maxLineBytes } = this.options;
    let open = this.openLineBytes[stream];
    let start = 0;
    let at = 0;
    let lines = 0;
    while (at < chunk.length) {
      const room = maxLineBytes - open;
      const newline = chunk.indexOf(10, at);
      if (newline !== -1 && newline - at <= room) {
        lines++;
        open = 0;
        at = newline + 1;
      } else if (chunk.length - at <= room) {
        open += chunk.length - at;
        at = chunk.length;
      } else {
        // The line is cut at the cap: the record ends there, with one more line end.
        at += room;
        this.push(stream, chunk.subarray(start, at), timestamp, lines + 1, true, 0);
        start = at;
        lines = 0;
        open = 0;
      }
    }
    if (start < chunk.length) this.push(stream, chunk.subarray(start), timestamp, lines, open === 0, open);
    this.enforceMemoryBudget();
    this.wake();
  }

  /**
   * No more records will come; readers finish once they have read everything. An unterminated
   * last line is completed by an empty record, so that it too has its own sequence number.
   */
  close(): void {
    if (this.isClosed) return;
    for (const stream of STREAM_NAMES) {
      if (this.openLineStart[stream] !== null) this.push(stream, Buffer.alloc(0), Date.now(), 1, true, 0);
    }
    this.isClosed = true;
    this.wake();
  }

  /**
   * Whether memory holds so much that disk writes lag behind: the writer should stop reading
   * its pipe until `whenCalm()` resolves.
   */
  get congested(): boolean {
    const limit = this.options.memoryBytesPerStream * CONGESTION_FACTOR;
    return STREAM_NAMES.some((stream) => this.memoryBytes[stream] > limit);
  }

  /** Resolves once the log is no longer congested (or is released). */
  whenCalm(): Promise<void> {
    if (!this.congested || this.isReleased) return Promise.resolve();
    return this.calmWaiters.wait();
  }

  /** Resolves once no write to disk is under way and memory is within its budget. */
  async flushed(): Promise<void> {
    while (this.spilling) await this.spilling;
  }

  /**
   * For a finished process: moves what it holds in memory to disk, keeping the heap small, and
   * closes its files; reads open them again by name.
   */
  async settle(): Promise<void> {
    await this.flushed();
    let memoryTotal = 0;
    for (const record of this.memory) memoryTotal += record.data.length + RECORD_OVERHEAD_BYTES;
    if (memoryTotal > SETTLED_MEMORY_BYTES) this.startSpill(this.memory.length);
    await this.flushed();
    await Promise.all([...this.spills.values()].map((spill) => spill.closeWriter()));
  }

  /** Deletes the spill files. The log is unreadable afterwards. */
  async release(): Promise<void> {
    this.isReleased = true;
    this.close();
    this.wakeCalm();
    await this.flushed();
    for (const spill of this.spills.values()) {
      spill.clear();
      await spill.closeWriter();
      await spill.closeReaders();
    }
    const spilled = this.spills.size > 0;
    this.spills.clear();
    this.memory.length = 0;
    // Most processes never spill: their folder was never made.
    if (spilled) await rm(this.options.spillDir, { recursive: true, force: true }).catch(() => {});
  }

  /**
   * Records that exist now from the one holding fromSeq on, up to about maxBytes of data; empty
   * when there are none yet. A fromSeq older than the retained start reads from the start.
   */
  async read(fromSeq: number, maxBytes = READ_BLOCK_BYTES): Promise<LogRecord[]> {
    for (;;) {
      if (this.isReleased || fromSeq >= this.nextSeq) return [];
      const memoryStart = this.memoryStartSeq();
      if (fromSeq >= memoryStart) return this.readMemory(fromSeq, maxBytes);
      // Each stream's file is read on its own, while spills go on: only what left memory before
      // the reads began is on disk for every stream. Past that, one stream's newer records may
      // already be on disk while another's of the same span are still being written, and a
      // merge would skip those: they are read from memory (or disk) next time round.
      const spilled = (await this.readSpilled(fromSeq, maxBytes)).filter(
        (record) => record.seq < memoryStart,
      );
      if (spilled.length > 0) return spilled;
      // Nothing at or after fromSeq is left on disk: the rest is in memory.
      fromSeq = memoryStart;
    }
  }

  /** The record that holds this sequence number, if still retained. */
  async record(seq: number): Promise<LogRecord | undefined> {
    const [record] = await this.read(seq, 1);
    return record && record.seq <= seq && seq <= lastSeqOf(record) ? record : undefined;
  }

  /**
   * Where to start reading to get (about) the last `maxBytes` of a stream: the first record
   * whose end lies within them. Meant for a log of that one stream, such as a terminal's,
   * whose offsets then grow with the sequence numbers.
   */
  async tailStart(stream: StreamName, maxBytes: number): Promise<number> {
    const from = this.streamOffsets[stream] - maxBytes;
    let low = this.startSeq;
    let high = this.nextSeq;
    while (low < high) {
      const middle = Math.floor((low + high) / 2);
      const record = await this.record(middle);
      if (!record || record.offset + record.data.length <= from)
        low = record ? lastSeqOf(record) + 1 : middle + 1;
      else high = Math.min(middle, record.seq);
    }
    return low;
  }

  /** Resolves once a record with seq >= fromSeq exists, the log closes, or the signal aborts. */
  waitForRecords(fromSeq: number, signal?: AbortSignal): Promise<void> {
    if (fromSeq < this.nextSeq || this.isClosed) return Promise.resolve();
    return this.waiters.wait(signal);
  }

  /** The records from fromSeq up to (not including) endSeq, in batches: a snapshot, not live. */
  async *span(fromSeq: number, endSeq: number): AsyncGenerator<LogRecord[]> {
    let next = fromSeq;
    while (next < endSeq) {
      const batch = (await this.read(next)).filter((record) => record.seq < endSeq);
      const last = batch.at(-1);
      if (!last) return;
      yield batch;
      next = lastSeqOf(last) + 1;
    }
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
        next = lastSeqOf(last) + 1;
        continue;
      }
      if (this.isClosed || this.isReleased) return;
      await this.waitForRecords(next, signal);
    }
  }

  /** Adds one record; `openAfter` is the length of the line it leaves open (0 if none). */
  private push(
    stream: StreamName,
    data: Buffer,
    timestamp: number,
    lines: number,
    endsLine: boolean,
    openAfter: number,
  ): void {
    const seq = this.nextSeq;
    this.nextSeq += Math.max(lines, 1);
    const startsLine = this.openLineStart[stream] === null;
    let replayFrom = seq;
    for (const start of Object.values(this.openLineStart)) {
      if (start !== null && start < replayFrom) replayFrom = start;
    }
    // A line left open starts in this record, unless the record only continues it.
    if (endsLine) this.openLineStart[stream] = null;
    else if (lines > 0 || startsLine) this.openLineStart[stream] = seq;
    this.openLineBytes[stream] = openAfter;
    const offset = this.streamOffsets[stream];
    this.streamOffsets[stream] += data.length;
    this.memory.push({ seq, lines, stream, offset, timestamp, data, endsLine, startsLine, replayFrom });
    this.memoryBytes[stream] += data.length + RECORD_OVERHEAD_BYTES;
  }

  private memoryStartSeq(): number {
    return this.memory[0]?.seq ?? this.nextSeq;
  }

  private readMemory(from: number, maxBytes: number): LogRecord[] {
    // The first record whose last sequence number is at or after `from`.
    let low = 0;
    let high = this.memory.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (lastSeqOf(this.memory[middle] as LogRecord) < from) low = middle + 1;
      else high = middle;
    }
    const records: LogRecord[] = [];
    let bytes = 0;
    for (let i = low; i < this.memory.length && bytes < maxBytes; i++) {
      const record = this.memory[i] as LogRecord;
      records.push(record);
      bytes += record.data.length + RECORD_OVERHEAD_BYTES;
    }
    return records;
  }

  /** Starts a write to disk when a stream is over its memory budget and none is under way. */
  private enforceMemoryBudget(): void {
    if (this.spilling || this.isReleased) return;
    const budget = this.options.memoryBytesPerStream;
    const over = STREAM_NAMES.filter((stream) => this.memoryBytes[stream] > budget);
    if (over.length === 0) return;
    // Spill down to three quarters of the budget so that writes to disk come in large batches.
    const target = budget * 0.75;
    const freed = zeroPerStream();
    let count = 0;
    for (const record of this.memory) {
      if (over.every((stream) => this.memoryBytes[stream] - freed[stream] <= target)) break;
      freed[record.stream] += record.data.length + RECORD_OVERHEAD_BYTES;
      count++;
    }
    this.startSpill(count);
  }

  private startSpill(count: number): void {
    if (this.spilling || this.isReleased || count <= 0) return;
    this.spilling = this.spill(count).finally(() => {
      this.spilling = undefined;
      this.enforceMemoryBudget();
      if (!this.congested) this.wakeCalm();
    });
  }

  /**
   * Writes the oldest `count` records to their streams' spill segments, then lets them leave
   * memory (until then they are read from memory). When the disk fails (full, out of
   * descriptors) the records are dropped and counted, not kept: memory stays bounded whatever
   * happens to the disk.
   */
  private async spill(count: number): Promise<void> {
    const records = this.memory.slice(0, count);
    const byStream = new Map<StreamName, LogRecord[]>();
    for (const record of records) {
      const list = byStream.get(record.stream);
      if (list) list.push(record);
      else byStream.set(record.stream, [record]);
    }
    for (const [stream, list] of byStream) {
      try {
        await this.spillOf(stream).write(list);
      } catch (error) {
        for (const record of list) this.droppedBytes[stream] += record.data.length;
        if (!this.spillFailureReported) {
          this.spillFailureReported = true;
          console.error(`sandboxd: cannot spill output to ${this.options.spillDir}, dropping it:`, error);
        }
      }
    }
    if (this.isReleased) return;
    // Only spills take records from the front, one at a time: these are still the first ones.
    // Spilled records leave the array at once: a reference kept here would keep their bytes.
    this.memory.splice(0, count);
    for (const record of records)
      this.memoryBytes[record.stream] -= record.data.length + RECORD_OVERHEAD_BYTES;
    for (const stream of byStream.keys()) this.enforceCap(stream);
  }

  private spillOf(stream: StreamName): StreamSpill {
    let spill = this.spills.get(stream);
    if (!spill) {
      const segmentBytes = Math.max(64 * 1024, Math.floor(this.options.maxBytesPerStream / 8));
      const { spillDir, diskUse, readHandleIdleMs } = this.options;
      spill = new StreamSpill(spillDir, stream, segmentBytes, diskUse, readHandleIdleMs);
      this.spills.set(stream, spill);
    }
    return spill;
  }

  private enforceCap(stream: StreamName): void {
    const spill = this.spills.get(stream);
    if (!spill) return;
    const inMemory = () => this.memoryBytes[stream];
    while (spill.bytes > 0 && spill.bytes + inMemory() > this.options.maxBytesPerStream) {
      this.droppedBytes[stream] += spill.dropOldest();
    }
  }

  /**
   * Records with seq >= from from disk, in sequence order, across streams: each stream is read
   * on its own, and the merge stops where the first stream that has more was cut off.
   */
  private async readSpilled(from: number, maxBytes: number): Promise<LogRecord[]> {
    const share = Math.ceil(maxBytes / this.spills.size);
    const reads = await Promise.all([...this.spills.values()].map((spill) => spill.read(from, share)));
    let cut = Infinity;
    for (const { records, more } of reads) {
      const last = records.at(-1);
      if (more && last && last.seq < cut) cut = last.seq;
    }
    return reads
      .flatMap(({ records }) => records)
      .filter((record) => record.seq <= cut)
      .sort((a, b) => a.seq - b.seq);
  }

  private wake(): void {
    this.waiters.wake();
  }

  private wakeCalm(): void {
    this.calmWaiters.wake();
  }
}
