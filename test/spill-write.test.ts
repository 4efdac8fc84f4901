import assert from 'node:assert/strict';
import type { FileHandle } from 'node:fs/promises';
import { test } from 'node:test';
import { writeAllAt } from '../src/core/stream-spill.ts';

// A spill write hands the file a record's header and its bytes as separate pieces. A file may
// take fewer bytes than it was given; what is left must follow at the right place, whole.

/** A file in memory that takes at most `perCall` bytes a call. */
function shortWritingFile(perCall: number) {
  const bytes = Buffer.alloc(1 << 20, 0xee);
  let end = 0;
  const calls: number[] = [];
  const handle: Pick<FileHandle, 'writev'> = {
    async writev<T extends readonly NodeJS.ArrayBufferView[]>(buffers: T, position?: number | null) {
      let at = position as number;
      let left = perCall;
      for (const buffer of buffers) {
        const piece = Buffer.from(buffer.buffer, buffer.byteOffset, Math.min(buffer.byteLength, left));
        piece.copy(bytes, at);
        at += piece.length;
        left -= piece.length;
        if (left === 0) break;
      }
      const bytesWritten = at - (position as number);
      calls.push(bytesWritten);
      end = Math.max(end, at);
      return { bytesWritten, buffers };
    },
  };
  return { handle, calls, written: () => bytes.subarray(0, end) };
}

const pieces = (...sizes: number[]) => sizes.map((size, i) => Buffer.alloc(size, 0x41 + i)); // A…, B…, C…: each piece its own letter

const cases: { name: string; sizes: number[]; perCall: number; calls: number }[] = [
  { name: 'all at once', sizes: [34, 65536], perCall: Infinity, calls: 1 },
  { name: 'cut inside the first piece', sizes: [34, 65536], perCall: 20, calls: 3279 },
  { name: 'cut exactly between pieces', sizes: [34, 100, 34, 7], perCall: 34, calls: 6 },
  { name: 'cut inside the second piece', sizes: [34, 100, 34, 7], perCall: 50, calls: 4 },
  { name: 'a byte at a time', sizes: [3, 1, 2], perCall: 1, calls: 6 },
  {
    name: 'many small pieces',
    sizes: Array.from({ length: 300 }, (_, i) => (i % 2 ? 5 : 34)),
    perCall: 1000,
    calls: 6,
  },
];

for (const { name, sizes, perCall, calls } of cases) {
  test(`writeAllAt: ${name}`, async () => {
    const file = shortWritingFile(perCall);
    const given = pieces(...sizes);
    await writeAllAt(file.handle, given, 10);
    const expected = Buffer.concat([Buffer.alloc(10, 0xee), ...given]);
    assert.ok(file.written().equals(expected), 'the file holds the pieces, in order, from the position');
    assert.equal(file.calls.length, calls);
    assert.deepEqual(given, pieces(...sizes), 'the pieces themselves are left as they were');
  });
}

test('writeAllAt: a file that takes nothing is an error, not a loop', async () => {
  const file = shortWritingFile(0);
  await assert.rejects(writeAllAt(file.handle, pieces(34, 10), 0), /took no bytes/);
});
