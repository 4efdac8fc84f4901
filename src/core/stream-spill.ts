import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { type LogRecord, lastSeqOf, type StreamName } from './log-record.ts';
import { dataLengthAt, decodeRecord, encodeHeader, HEADER_BYTES } from './spill-codec.ts';

const INDEX_EVERY_BYTES = 64 * 1024;
// Dropped segments remembered one by one (older ones only as a sum), to tell a reader resuming
// from a dropped record how much of the stream it missed.
const DROP_HISTORY = 64;
// Readers move forward segment by segment, so the file a read opened is kept open for the next
// one (an open and a close per read cost more than the read). At most this many stay open per
// stream, so that two readers at different places each keep theirs; a read past them opens the
// file for itself alone, as every read once did.
const READ_HANDLES = 2;
// An open read handle no read has used for this long is closed: a daemon may hold a thousand
// logs, and one that nobody is reading should hold no descriptors.
const READ_HANDLE_IDLE_MS = 2000;
// The least a read asks of the disk at once: a record's header and then its bytes are not two
// reads, nor is a read of a record or two (record(), tailStart()) one read per record.
const MIN_READ_BYTES = 64 * 1024;
// Where recent reads stopped, per stream: a reader's next read starts exactly there rather than
// at the index entry before it (up to INDEX_EVERY_BYTES of records read again only to be skipped).
const READ_MARKS = 8;

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

/** A segment's file opened for reading, shared by the reads under way in it. */
interface ReadHandle {
  readonly segment: Segment;
  readonly file: Promise<FileHandle>;
  /** Reads under way with it: it is closed only once they have finished. */
  users: number;
  /** performance.now() when a read last finished with it. */
  lastUsed: number;
  /** Kept for later reads (in `readers`); otherwise closed when its last read finishes. */
  cached: boolean;
  closed: boolean;
}

/**
 * Records of a segment before `pos` all end before `seq`: a read for `seq` or later may start
 * at `pos`. The index holds such places at record starts every INDEX_EVERY_BYTES; marks hold
 * where recent reads stopped.
 */
interface ReadStart {
  readonly seq: number;
  readonly pos: number;
}

/** The file no longer holds what was written to it: cut short, or written over behind our back. */
class SegmentDamaged extends Error {}

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
 * runs one write at a time. Reads open the file by path and keep it open for the reads after
 * them (see READ_HANDLES); a full segment that nobody reads needs no descriptor.
 */
export class StreamSpill {
  private readonly segments: Segment[] = [];
  private segmentCount = 0;
  private diskBytes = 0;
  private vanishedBytes = 0;
  /** The newest dropped segments: the last sequence number each held, and its bytes of output. */
  private readonly dropped: { lastSeq: number; bytes: number }[] = [];
  private droppedEarlierBytes = 0;
  /** Read handles kept open, at most READ_HANDLES, each for another segment. */
  private readonly readers: ReadHandle[] = [];
  /** Closes (and deletes) under way in the background, awaited by closeReaders(). */
  private readonly closing = new Set<Promise<void>>();
  private idleTimer: NodeJS.Timeout | undefined;
  /** The newest READ_MARKS places where reads stopped, oldest first. */
  private marks: (ReadStart & { readonly segment: Segment })[] = [];

  constructor(
    private readonly dir: string,
    private readonly stream: StreamName,
    private readonly segmentBytes: number,
    private readonly diskUse: DiskUse = () => {},
    /** A kept read handle unused this long is closed. */
    private readonly readHandleIdleMs = READ_HANDLE_IDLE_MS,
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
   * Closes the read handles kept open; resolves once they, and the files of forgotten segments,
   * are closed. A read under way keeps its own until it finishes.
   */
  async closeReaders(): Promise<void> {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    for (const reader of [...this.readers]) this.dropReader(reader);
    await Promise.all(this.closing);
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
        read = await this.readSegment(segment, from, maxBytes);
      } catch (error) {
        const gone = error instanceof SegmentDamaged || (error as NodeJS.ErrnoException).code === 'ENOENT';
        if (!gone) throw error;
        // Dropped past the cap meanwhile (no longer listed), or deleted (or spoilt) behind our back.
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

  /**
   * Takes a segment off the list at once; its file is closed and deleted in the background (a
   * read under way in it finishes first with its own handle).
   */
  private forget(segment: Segment): void {
    const at = this.segments.indexOf(segment);
    if (at === -1) return;
    this.segments.splice(at, 1);
    for (const reader of this.readers.filter((r) => r.segment === segment)) this.dropReader(reader);
    this.marks = this.marks.filter((mark) => mark.segment !== segment);
    this.diskBytes -= segment.size;
    this.diskUse(-segment.size);
    const handle = segment.handle;
    segment.handle = undefined;
    this.inBackground(
      (async () => {
        await handle?.close().catch(() => {});
        // Already gone: nothing more to free.
        await unlink(segment.path).catch(() => {});
      })(),
    );
  }

  /** Tracks work that nobody awaits but closeReaders(), which a released log waits for. */
  private inBackground(work: Promise<void>): void {
    const done: Promise<void> = work.finally(() => this.closing.delete(done));
    this.closing.add(done);
  }

  /**
   * Records with seq >= from in one segment, up to about maxBytes; `rest` when some were left.
   * Each block is read once, into a buffer of its own that the records' data are views of:
   * a block is never reused, as a reader may hold its records for as long as it likes.
   */
  private async readSegment(
    segment: Segment,
    from: number,
    maxBytes: number,
  ): Promise<{ records: LogRecord[]; rest: boolean }> {
    const start = this.readStart(segment, from);
    // Only whole records lie before `size`; a write under way adds its records past it.
    const end = segment.size;
    const records: LogRecord[] = [];
    let bytes = 0;
    let pos = start.pos;
    let lastSeqRead = start.seq - 1;
    // Acquired before any await: the segment is still listed, so its handle may be kept.
    const reader = this.acquireReader(segment);
    let failed = true;
    try {
      const file = await reader.file;
      // The length of the record at `pos`, once a block has shown its header but not all of it.
      let next = 0;
      while (pos < end && bytes < maxBytes) {
        const length = Math.min(end - pos, Math.max(maxBytes - bytes, next, MIN_READ_BYTES));
        const block = Buffer.allocUnsafe(length);
        const { bytesRead } = await file.read(block, 0, length, pos);
        if (bytesRead < length) throw new SegmentDamaged(`${segment.path} is shorter than was written`);
        let taken = 0;
        next = 0;
        while (bytes < maxBytes && taken + HEADER_BYTES <= length) {
          const dataLength = dataLengthAt(block, taken);
          if (taken + HEADER_BYTES + dataLength > length) {
            next = HEADER_BYTES + dataLength;
            break;
          }
          const record = decodeRecord(block, taken, dataLength);
          taken += HEADER_BYTES + dataLength;
          lastSeqRead = lastSeqOf(record);
          if (lastSeqRead < from) continue;
          records.push(record);
          bytes += HEADER_BYTES + dataLength;
        }
        // Not even one record fits where the segment says it ends: the file is not ours any more.
        if (taken === 0 && (next === 0 || pos + next > end))
          throw new SegmentDamaged(`${segment.path} holds no whole record at ${pos}`);
        pos += taken;
      }
      failed = false;
    } finally {
      this.releaseReader(reader, failed);
    }
    if (pos > start.pos) this.mark(segment, { seq: lastSeqRead + 1, pos });
    return { records, rest: pos < end };
  }

  /** Where a read for `from` in `segment` starts: the furthest known place before it. */
  private readStart(segment: Segment, from: number): ReadStart {
    let start = segment.index[0] as ReadStart;
    for (const candidate of segment.index) {
      if (candidate.seq > from) break;
      start = candidate;
    }
    for (const mark of this.marks)
      if (mark.segment === segment && mark.seq <= from && mark.pos > start.pos) start = mark;
    return start;
  }

  private mark(segment: Segment, start: ReadStart): void {
    if (!this.segments.includes(segment)) return;
    if (this.marks.some((mark) => mark.segment === segment && mark.pos === start.pos)) return;
    this.marks.push({ segment, ...start });
    if (this.marks.length > READ_MARKS) this.marks.shift();
  }

  /** A read handle for the segment: a kept one, or one opened now (kept if there is room). */
  private acquireReader(segment: Segment): ReadHandle {
    let reader = this.readers.find((r) => r.segment === segment);
    if (!reader) {
      reader = {
        segment,
        file: open(segment.path, 'r'),
        users: 0,
        lastUsed: 0,
        cached: false,
        closed: false,
      };
      // The read awaits the open and handles its failure; until then it is not unhandled.
      reader.file.catch(() => {});
      if (this.segments.includes(segment) && this.roomForReader()) {
        reader.cached = true;
        this.readers.push(reader);
      }
    }
    reader.users++;
    return reader;
  }

  /** Whether another handle may be kept, closing the one idle longest if need be. */
  private roomForReader(): boolean {
    if (this.readers.length < READ_HANDLES) return true;
    let idlest: ReadHandle | undefined;
    for (const reader of this.readers)
      if (reader.users === 0 && (!idlest || reader.lastUsed < idlest.lastUsed)) idlest = reader;
    if (!idlest) return false;
    this.dropReader(idlest);
    return true;
  }

  private releaseReader(reader: ReadHandle, failed: boolean): void {
    reader.users--;
    reader.lastUsed = performance.now();
    // A handle that failed a read is not trusted with the next one: that one opens the file again.
    if (failed) this.dropReader(reader);
    else if (!reader.cached && reader.users === 0) this.closeReader(reader);
    this.scheduleIdleClose();
  }

  /** Stops keeping a handle; it is closed now, or when the reads using it finish. */
  private dropReader(reader: ReadHandle): void {
    if (reader.cached) {
      reader.cached = false;
      this.readers.splice(this.readers.indexOf(reader), 1);
    }
    if (reader.users === 0) this.closeReader(reader);
  }

  private closeReader(reader: ReadHandle): void {
    if (reader.closed) return;
    reader.closed = true;
    this.inBackground(
      reader.file
        .then((file) => file.close())
        // Not opened (the file was gone), or closed with an error: either way no descriptor is left.
        .catch(() => {}),
    );
  }

  private scheduleIdleClose(): void {
    if (this.idleTimer !== undefined || this.readers.length === 0) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      const now = performance.now();
      for (const reader of [...this.readers])
        if (reader.users === 0 && now - reader.lastUsed >= this.readHandleIdleMs) this.dropReader(reader);
      this.scheduleIdleClose();
    }, this.readHandleIdleMs);
    // Kept handles never keep the daemon (or a test) alive.
    this.idleTimer.unref();
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
