import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LogRecord } from '../src/core/log-record.ts';
import { dataLengthAt, decodeRecord, encodeHeader, HEADER_BYTES } from '../src/core/spill-codec.ts';

// A record written to a spill file and read back is the same record, field by field.
const base: LogRecord = {
  seq: 1,
  lines: 1,
  stream: 'stdout',
  offset: 0,
  timestamp: 1_700_000_000_000,
  data: Buffer.from('hello\n'),
  endsLine: true,
  startsLine: true,
  replayFrom: 1,
};
const U48_MAX = 2 ** 48 - 1;
const cases: [name: string, record: LogRecord][] = [
  ['a line of stdout', base],
  [
    'stderr, an empty record that ends a line',
    { ...base, stream: 'stderr', data: Buffer.alloc(0), lines: 0 },
  ],
  ['a terminal, mid-line on both sides', { ...base, stream: 'pty', endsLine: false, startsLine: false }],
  ['ends a line but does not start one', { ...base, startsLine: false }],
  ['starts a line but does not end one', { ...base, endsLine: false }],
  [
    'the largest values a header holds',
    { ...base, seq: U48_MAX, offset: U48_MAX, timestamp: U48_MAX, replayFrom: U48_MAX, lines: 2 ** 32 - 1 },
  ],
  ['every byte value', { ...base, data: Buffer.from(Array.from({ length: 256 }, (_, i) => i)) }],
  ['a megabyte', { ...base, data: Buffer.alloc(1024 * 1024, 0x61), lines: 0, endsLine: false }],
];

describe('the spill file codec', () => {
  for (const [name, record] of cases) {
    test(`round-trips ${name}`, () => {
      // Placed after other bytes, as records follow one another in a block.
      const before = 7;
      const block = Buffer.alloc(before + HEADER_BYTES + record.data.length, 0xee);
      encodeHeader(record, block.subarray(before, before + HEADER_BYTES));
      record.data.copy(block, before + HEADER_BYTES);
      assert.equal(dataLengthAt(block, before), record.data.length);
      const decoded = decodeRecord(block, before, dataLengthAt(block, before));
      assert.deepEqual({ ...decoded, data: Buffer.from(decoded.data) }, record);
    });
  }

  test('the header is 34 bytes, and its fields land where earlier spill files have them', () => {
    const header = Buffer.alloc(HEADER_BYTES);
    encodeHeader({ ...base, seq: 0x010203040506, stream: 'stderr', data: Buffer.alloc(9), lines: 3 }, header);
    assert.equal(HEADER_BYTES, 34);
    assert.deepEqual([...header.subarray(0, 8)], [6, 5, 4, 3, 2, 1, 1, 3]);
    assert.equal(header.readUInt32LE(26), 9);
    assert.equal(header.readUInt32LE(30), 3);
  });
});
