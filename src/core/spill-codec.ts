import { type LogRecord, STREAM_NAMES, type StreamName } from './log-record.ts';

// A record on disk: this header, then its bytes. Little-endian; u48 holds any sequence number,
// offset or timestamp a daemon reaches.
const SEQ = 0; // u48
const STREAM = 6; // u8: the stream's index in STREAM_NAMES
const FLAGS = 7; // u8: ENDS_LINE | STARTS_LINE
const TIMESTAMP = 8; // u48, ms since the epoch
const OFFSET = 14; // u48, within the stream
const REPLAY_FROM = 20; // u48
const LENGTH = 26; // u32, bytes of data after the header
const LINES = 30; // u32
export const HEADER_BYTES = 34;

const ENDS_LINE = 1;
const STARTS_LINE = 2;

/** Writes a record's header into `header` (HEADER_BYTES long); its bytes follow it on disk. */
export function encodeHeader(record: LogRecord, header: Buffer): void {
  header.writeUIntLE(record.seq, SEQ, 6);
  header.writeUInt8(STREAM_NAMES.indexOf(record.stream), STREAM);
  header.writeUInt8((record.endsLine ? ENDS_LINE : 0) | (record.startsLine ? STARTS_LINE : 0), FLAGS);
  header.writeUIntLE(record.timestamp, TIMESTAMP, 6);
  header.writeUIntLE(record.offset, OFFSET, 6);
  header.writeUIntLE(record.replayFrom, REPLAY_FROM, 6);
  header.writeUInt32LE(record.data.length, LENGTH);
  header.writeUInt32LE(record.lines, LINES);
}

/** The length of the data that follows the header at `at`. */
export function dataLengthAt(block: Buffer, at: number): number {
  return block.readUInt32LE(at + LENGTH);
}

/** The record whose header starts at `at` in `block`; its data is a view of the block, not a copy. */
export function decodeRecord(block: Buffer, at: number, dataLength: number): LogRecord {
  const flags = block.readUInt8(at + FLAGS);
  return {
    seq: block.readUIntLE(at + SEQ, 6),
    stream: STREAM_NAMES[block.readUInt8(at + STREAM)] as StreamName,
    lines: block.readUInt32LE(at + LINES),
    endsLine: (flags & ENDS_LINE) !== 0,
    startsLine: (flags & STARTS_LINE) !== 0,
    timestamp: block.readUIntLE(at + TIMESTAMP, 6),
    offset: block.readUIntLE(at + OFFSET, 6),
    replayFrom: block.readUIntLE(at + REPLAY_FROM, 6),
    data: block.subarray(at + HEADER_BYTES, at + HEADER_BYTES + dataLength),
  };
}
