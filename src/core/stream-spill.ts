import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { type LogRecord, lastSeqOf, READ_BLOCK_BYTES, type StreamName } from './log-record.ts';
import { dataLengthAt, decodeRecord, encodeHeader, HEADER_BYTES } from './spill-codec.ts';

const INDEX_EVERY_BYTES = 64 * 1024;
// Dropped segments remembered one by one (older ones only as a sum), to tell a reader resuming
// from a dropped record how much of the stream it missed.
const DROP_HISTORY = 64;

interface Segment {
  readonly path: string;
  /** Open for appending only while this is the stream's newest segment. */
  handle: FileHandle | undefined;
  readonly firstSeq: number;
  /** One past the last record's sequence number. */
  nextSeq: number;
  size: number;
  dataBytes: number;
  /** Sparse (seq, file position) pairs in ascending order, the first at position 0. */
  readonly index: { seq: number; pos: number }[];
  lastIndexedPos: number;
}

export interface SpillRead {
  records: LogRecord[];
  /** More of this stream's records are on disk after the last one returned. */
  more: boolean;
}

/** Told of every change in the bytes a spill holds on disk (daemon-wide accounting). */
export type DiskUse = (deltaBytes: number) => void;

/**
 * One stream's older records, in segment files on disk, oldest first. Dropping the oldest
 * segment past the cap touches this stream alone. All disk work is asynchronous; the owner
 * runs one write at a time. Reads open the file by path, so a segment needs no descriptor
 * once it is full.
 */
export class StreamSpill {
  private readonly segments: Segment[] = [];
  private segmentCount = 0;
  private diskBytes = 0;
  private vanishedBytes = 0;
  /** The newest dropped segments: the last sequence number each held, and its bytes of output. */
  private readonly dropped: { lastSeq: number; bytes: number }[] = [];
  private droppedEarlierBytes = 0;

  constructor(
    private readonly dir: string,
    private readonly stream: StreamName,
    private readonly segmentBytes: number,
    private readonly diskUse: DiskUse = () => {},
  ) {}

  /** Bytes on disk, record headers included. */
  get bytes(): number {
    return this.diskBytes;
  }

  get firstSeq(): number | undefined {
    return this.segments[0]?.firstSeq;
  }

  /**
   * Writes records (in sequence order); once it resolves they can be read from disk. Rejects
   * on an I/O error, having added none of them.
   */
  async write(records: readonly LogRecord[]): Promise<void> {
    const segment = await this.writableSegment(records[0] as LogRecord);
    // Every byte of output passes through here: the headers go in one buffer, and each record's
    // bytes are written from where they are rather than copied into it first.
    const headers = Buffer.allocUnsafe(HEADER_BYTES * records.length);
    const pieces: Buffer[] = [];
    let size = 0;
    const index: { seq: number; pos: number }[] = [];
    let lastIndexedPos = segment.lastIndexedPos;
    for (const [i, record] of records.entries()) {
      if (segment.size + size - lastIndexedPos >= INDEX_EVERY_BYTES) {
        lastIndexedPos = segment.size + size;
        index.push({ seq: record.seq, pos: lastIndexedPos });
      }
      const header = headers.subarray(i * HEADER_BYTES, (i + 1) * HEADER_BYTES);
      encodeHeader(record, header);
      pieces.push(header);
      if (record.data.length > 0) pieces.push(record.data);
      size += HEADER_BYTES + record.data.length;
    }
    try {
      await writeAllAt(segment.handle as FileHandle, pieces, segment.size);
    } catch (error) {
      await this.closeWriter();
      // A segment that never held a record would only hide the ones after it.
      if (segment.size === 0) this.forget(segment);
      throw error;
    }
    if (!this.segments.includes(segment)) return; // Dropped meanwhile (released).
    segment.index.push(...index);
    segment.lastIndexedPos = lastIndexedPos;
    segment.size += size;
    segment.dataBytes += size - HEADER_BYTES * records.length;
    segment.nextSeq = lastSeqOf(records.at(-1) as LogRecord) + 1;
    this.diskBytes += size;
    this.diskUse(size);
  }

  /** Drops the oldest segment; returns how many bytes of output went with it. */
  dropOldest(): number {
    const oldest = this.segments[0];
    if (!oldest) return 0;
    this.forget(oldest);
    this.dropped.push({ lastSeq: oldest.nextSeq - 1, bytes: oldest.dataBytes });
    if (this.dropped.length > DROP_HISTORY)
      this.droppedEarlierBytes += (this.dropped.shift() as { bytes: number }).bytes;
    return oldest.dataBytes;
  }

  /**
   * Bytes of output dropped that came after `seq`, counted by whole segments: exact when `seq`
   * ends one of the newest dropped segments; otherwise the segment holding `seq` (and, far back,
   * older ones summed together) is counted whole.
   */
  droppedAfter(seq: number): number {
    let bytes = 0;
    for (const segment of this.dropped) if (segment.lastSeq > seq) bytes += segment.bytes;
    const first = this.dropped[0];
    if (first && first.lastSeq > seq) bytes += this.droppedEarlierBytes;
    return bytes;
  }

  /**
   * Bytes of output lost because their segment file vanished (someone cleaned the folder);
   * reads skip such a segment.
   */
  get lostBytes(): number {
    return this.vanishedBytes;
  }

  /** Closes the newest segment's descriptor; a later write opens a new segment. */
  async closeWriter(): Promise<void> {
    const current = this.segments.at(-1);
    const handle = current?.handle;
    if (!current || !handle) return;
    current.handle = undefined;
    await handle.close().catch(() => {});
  }

  /** Forgets every segment and deletes its file. */
  clear(): void {
    for (const segment of [...this.segments]) this.forget(segment);
  }

  /**
   * Records with seq >= from, from the first segment that has any, up to about maxBytes (record
   * headers counted: a flood of tiny records must not make one read huge).
   */
  async read(from: number, maxBytes: number): Promise<SpillRead> {
    for (;;) {
      const segment = this.segments.find((s) => from < s.nextSeq);
      if (!segment) return { records: [], more: false };
      let read: { records: LogRecord[]; rest: boolean };
      try {
        read = await readSegment(segment, from, maxBytes);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        // Dropped past the cap meanwhile (no longer listed), or deleted behind our back.
        if (this.segments.includes(segment)) {
          this.vanishedBytes += segment.dataBytes;
          this.forget(segment);
        }
        continue;
      }
      // The segment is looked up again: the cap may have dropped others during the read.
      const more = read.rest || segment !== this.segments.at(-1);
      if (read.records.length > 0 || !more) return { records: read.records, more };
      from = segment.nextSeq;
    }
  }

  /** Takes a segment off the list at once; its file is closed and deleted in the background. */
  private forget(segment: Segment): void {
    const at = this.segments.indexOf(segment);
    if (at === -1) return;
    this.segments.splice(at, 1);
    this.diskBytes -= segment.size;
    this.diskUse(-segment.size);
    const handle = segment.handle;
    segment.handle = undefined;
    void (async () => {
      await handle?.close().catch(() => {});
      // Already gone: nothing more to free.
      await unlink(segment.path).catch(() => {});
    })();
  }

  private async writableSegment(first: LogRecord): Promise<Segment> {
    const current = this.segments.at(-1);
    if (current?.handle !== undefined && current.size < this.segmentBytes) return current;
    await this.closeWriter();
    // Made again each time: someone may have cleaned it away.
    await mkdir(this.dir, { recursive: true });
    const path = join(this.dir, `${this.stream}-${this.segmentCount++}.log`);
    const segment: Segment = {
      path,
      handle: await open(path, 'w'),
      firstSeq: first.seq,
      nextSeq: first.seq,
      size: 0,
      dataBytes: 0,
      index: [{ seq: first.seq, pos: 0 }],
      lastIndexedPos: 0,
    };
    this.segments.push(segment);
    return segment;
  }
}

/** Records with seq >= from in one segment, up to about maxBytes; `rest` when some were left. */
async function readSegment(
  segment: Segment,
  from: number,
  maxBytes: number,
): Promise<{ records: LogRecord[]; rest: boolean }> {
  let entry = segment.index[0] as { seq: number; pos: number };
  for (const candidate of segment.index) {
    if (candidate.seq > from) break;
    entry = candidate;
  }
  const end = segment.size;
  const records: LogRecord[] = [];
  let bytes = 0;
  let pos = entry.pos;
  const file = await open(segment.path, 'r');
  try {
    while (pos < end && bytes < maxBytes) {
      const length = Math.min(end - pos, Math.max(READ_BLOCK_BYTES, maxBytes - bytes));
      const block = Buffer.allocUnsafe(length);
      const { bytesRead } = await file.read(block, 0, length, pos);
      let taken = 0;
      while (taken + HEADER_BYTES <= bytesRead && bytes < maxBytes) {
        const dataLength = dataLengthAt(block, taken);
        if (taken + HEADER_BYTES + dataLength > bytesRead) break;
        const record = decodeRecord(block, taken, dataLength);
        taken += HEADER_BYTES + dataLength;
        if (lastSeqOf(record) < from) continue;
        records.push(record);
        bytes += HEADER_BYTES + dataLength;
      }
      if (taken === 0) {
        // One record larger than the block: read exactly that record.
        const dataLength = dataLengthAt(block, 0);
        const whole = Buffer.allocUnsafe(HEADER_BYTES + dataLength);
        await file.read(whole, 0, whole.length, pos);
        const record = decodeRecord(whole, 0, dataLength);
        if (lastSeqOf(record) >= from) {
          records.push(record);
          bytes += HEADER_BYTES + dataLength;
        }
        taken = whole.length;
      }
      pos += taken;
    }
  } finally {
    await file.close();
  }
  return { records, rest: pos < end };
}

/**
 * Writes the pieces one after another from `position`. Positional: after a failed (partial)
 * write the next one starts at the same place.
 */
export async function writeAllAt(
  handle: Pick<FileHandle, 'writev'>,
  pieces: readonly Buffer[],
  position: number,
): Promise<void> {
  let rest = pieces;
  let at = position;
  while (rest.length > 0) {
    let { bytesWritten } = await handle.writev(rest, at);
    if (bytesWritten === 0) throw new Error('the spill file took no bytes');
    at += bytesWritten;
    // What a short write left: the pieces not yet written, the first one cut where it stopped.
    let first = 0;
    while (first < rest.length && bytesWritten >= (rest[first] as Buffer).length) {
      bytesWritten -= (rest[first] as Buffer).length;
      first++;
    }
    const cut = rest[first];
    rest =
      cut && bytesWritten > 0 ? [cut.subarray(bytesWritten), ...rest.slice(first + 1)] : rest.slice(first);
  }
}
