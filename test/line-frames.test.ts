import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { lineFrames } from '../src/api/tensorlake/line-frames.ts';
import { followLines, type LineItem, spreadRuns } from '../src/core/lines.ts';
import { OutputLog } from '../src/core/output-log.ts';

// SSE frames written byte for byte from runs of plain lines must say exactly what frames
// written from each line's text say; lines that need escaping take the text path.
const root = mkdtempSync(join(tmpdir(), 'sandboxd-frames-'));
after(() => rmSync(root, { recursive: true, force: true }));

async function itemsOf(chunks: Buffer[]): Promise<LineItem[]> {
  const log = new OutputLog({
    spillDir: join(root, String(Math.random())),
    memoryBytesPerStream: 1 << 20,
    maxBytesPerStream: 1 << 24,
    maxLineBytes: 1 << 20,
  });
  for (const chunk of chunks) log.append('stdout', chunk, 1700000000123);
  log.close();
  const items: LineItem[] = [];
  for await (const batch of followLines(log, {})) items.push(...batch);
  await log.release();
  return items;
}

/** The frames a follow sends, parsed back. */
function parse(frames: Buffer): { id?: string; event?: string; data: unknown }[] {
  return frames
    .toString('utf8')
    .split('\n\n')
    .filter((text) => text !== '')
    .map((text) => {
      const fields = Object.fromEntries(
        text
          .split('\n')
          .map((line) => [line.slice(0, line.indexOf(': ')), line.slice(line.indexOf(': ') + 2)]),
      );
      return { id: fields.id, event: fields.event, data: JSON.parse(fields.data as string) };
    });
}

const cases: [string, Buffer[]][] = [
  ['plain lines', [Buffer.from('one\ntwo\nthree\n')]],
  ['quotes and backslashes', [Buffer.from('a "quoted" word\nback\\slash\nplain\n')]],
  ['control characters and CRLF', [Buffer.from('tab\there\ncrlf\r\nbell\x07\nbare\rcr\n')]],
  [
    'invalid UTF-8',
    [Buffer.concat([Buffer.from('ok\nbad '), Buffer.from([0xff, 0xfe]), Buffer.from('\nok again\n')])],
  ],
  [
    'multi-byte characters, also split across chunks',
    [
      Buffer.from('é😀\nx'),
      Buffer.from([0xf0, 0x9f]),
      Buffer.from([0x98, 0x80, 0x0a]),
      Buffer.from('\n\nend\n'),
    ],
  ],
  ['empty lines and a last line without a newline', [Buffer.from('\n\n\nlast')]],
];

for (const [name, chunks] of cases) {
  test(`frames of ${name} say what each line's text says`, async () => {
    const items = await itemsOf(chunks);
    for (const shape of [
      { named: true, withStream: true },
      { named: true, withStream: false },
      { named: false, withStream: true },
    ]) {
      const lines = spreadRuns(items).flatMap((item) => (item.kind === 'line' ? [item] : []));
      const expected = lines.map((line) => ({
        id: shape.named ? String(line.id) : undefined,
        event: shape.named ? 'output' : undefined,
        data: shape.withStream
          ? { line: line.text, timestamp: line.timestamp, stream: line.stream }
          : { line: line.text, timestamp: line.timestamp },
      }));
      assert.deepEqual(parse(lineFrames(items, shape)), expected);
    }
  });
}
