import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { followLines, type LineQuery, linesSoFar, type OutputLine } from '../src/core/lines.ts';
import { OutputLog, type OutputLogOptions } from '../src/core/output-log.ts';

// The core's output log on its own: exact interleavings that real pipes cannot be made to produce.
const root = mkdtempSync(join(tmpdir(), 'sandboxd-log-test-'));
after(() => rmSync(root, { recursive: true, force: true }));
let logs = 0;

function newLog(options: Partial<OutputLogOptions> = {}): OutputLog {
  return new OutputLog({
    spillDir: join(root, `log-${++logs}`),
    memoryBytesPerStream: 1024 * 1024,
    maxBytesPerStream: 256 * 1024 * 1024,
    maxLineBytes: 1024 * 1024,
    ...options,
  });
}

async function readLines(log: OutputLog, query: LineQuery): Promise<{ lines: OutputLine[] }> {
  const lines: OutputLine[] = [];
  for await (const batch of linesSoFar(log, query)) lines.push(...batch);
  return { lines };
}

async function collect(log: OutputLog, after?: number, stream?: 'stdout' | 'stderr') {
  const lines = [];
  for await (const batch of followLines(log, { after, stream })) lines.push(...batch);
  return lines;
}

test('resuming after any line rebuilds lines left open on other streams', async () => {
  const log = newLog();
  log.append('stdout', Buffer.from('par'));
  log.append('stderr', Buffer.from('x\n'));
  log.append('stdout', Buffer.from('tial\r\nsecond\n'));
  log.append('stderr', Buffer.from('unterminated'));
  log.close();
  const all = await collect(log);
  assert.deepEqual(
    all.map((l) => [l.stream, l.text]),
    [
      ['stderr', 'x'],
      ['stdout', 'partial'],
      ['stdout', 'second'],
      ['stderr', 'unterminated'],
    ],
  );
  for (let i = 0; i < all.length; i++) {
    const rest = await collect(log, all[i]?.id);
    assert.deepEqual(rest, all.slice(i + 1), `resume after line ${i}`);
  }
  assert.deepEqual(
    (await collect(log, undefined, 'stdout')).map((l) => l.text),
    ['partial', 'second'],
  );
});

test('a follower subscribed before output arrives sees every byte once, live', async () => {
  const log = newLog();
  const followed = collect(log);
  for (let i = 0; i < 1000; i++) log.append(i % 2 ? 'stdout' : 'stderr', Buffer.from(`${i}\n`));
  log.close();
  assert.deepEqual(
    (await followed).map((l) => Number(l.text)),
    Array.from({ length: 1000 }, (_, i) => i),
  );
});

test('output beyond the memory budget spills to disk and reads back whole', async () => {
  const log = newLog({ memoryBytesPerStream: 4096 });
  const total = 20_000;
  for (let i = 0; i < total; i++) log.append('stdout', Buffer.from(`line ${i}\n`));
  log.close();
  const page = await readLines(log, {});
  assert.equal(page.lines.length, total);
  assert.equal(page.lines[12_345]?.text, 'line 12345');
  assert.ok(readdirSync(join(root, `log-${logs}`)).length > 0, 'nothing was spilled');
  const resumed = await collect(log, page.lines[9_999]?.id);
  assert.equal(resumed.length, total - 10_000);
  assert.equal(resumed[0]?.text, 'line 10000');
  log.release();
  assert.equal(existsSync(join(root, `log-${logs}`)), false);
});

test('past the cap the oldest output is dropped and the drop is counted', async () => {
  const log = newLog({ memoryBytesPerStream: 4096, maxBytesPerStream: 512 * 1024 });
  const line = `${'x'.repeat(99)}\n`;
  for (let i = 0; i < 20_000; i++) log.append('stdout', Buffer.from(line));
  log.close();
  const page = await readLines(log, { stream: 'stdout' });
  const kept = page.lines.length * line.length;
  assert.ok(kept <= 512 * 1024, `kept ${kept} bytes`);
  assert.ok(log.truncatedBytes('stdout') > 0);
  assert.equal(kept + log.truncatedBytes('stdout'), 20_000 * line.length);
  assert.equal(log.truncatedBytes('stderr'), 0);
});

test('a line that fills the cap exactly keeps the newline that comes in the next read', async () => {
  const log = newLog({ maxLineBytes: 4 });
  log.append('stdout', Buffer.from('abcd'));
  log.append('stdout', Buffer.from('\nef\nghijk'));
  log.close();
  assert.deepEqual(
    (await collect(log)).map((l) => l.text),
    ['abcd', 'ef', 'ghij', 'k'],
  );
});

test('a line longer than the cap is cut, and invalid UTF-8 is replaced', async () => {
  const log = newLog({ maxLineBytes: 10 });
  log.append('stdout', Buffer.from('abcdefghijklmno\n'));
  log.append('stdout', Buffer.from('0123456789\n'));
  log.append('stderr', Buffer.from([0x66, 0xff, 0x6f, 0x0a]));
  log.close();
  assert.deepEqual(
    (await collect(log)).map((l) => l.text),
    ['abcdefghij', 'klmno', '0123456789', 'f\uFFFDo'],
  );
});

test('tailStart finds where the last N bytes of a terminal log begin, on disk too', async () => {
  const log = newLog({ memoryBytesPerStream: 4096 });
  for (let i = 0; i < 10_000; i++) log.append('pty', Buffer.from(`row ${i}\r\n`));
  const readFrom = async (seq: number) => {
    const records = [];
    for (let batch = await log.read(seq); batch.length > 0; batch = await log.read(seq)) {
      records.push(...batch);
      seq = (batch.at(-1)?.seq ?? seq) + 1;
    }
    return records;
  };
  const tail = await readFrom(await log.tailStart('pty', 1000));
  const bytes = Buffer.concat(tail.map((r) => r.data)).toString();
  assert.ok(bytes.length <= 1000 + 20 && bytes.length >= 1000, `tail of ${bytes.length} bytes`);
  assert.ok(bytes.endsWith('row 9999\r\n'));
  const all = await readFrom(await log.tailStart('pty', 10 ** 9));
  assert.equal(all[0]?.seq, 1);
  assert.equal(all.length, 10_000);
  log.release();
});

test('the cap of one stream drops only that stream, counting record headers as disk use', async () => {
  const log = newLog({ memoryBytesPerStream: 4096, maxBytesPerStream: 256 * 1024 });
  log.append('stderr', Buffer.from('IMPORTANT-ERROR\n'));
  for (let i = 0; i < 50_000; i++) log.append('stdout', Buffer.from('y\n'));
  log.close();
  assert.deepEqual(
    (await readLines(log, { stream: 'stderr' })).lines.map((l) => l.text),
    ['IMPORTANT-ERROR'],
  );
  assert.equal(log.truncatedBytes('stderr'), 0);
  const kept = (await readLines(log, { stream: 'stdout' })).lines.length;
  assert.ok(log.truncatedBytes('stdout') > 0);
  assert.equal(kept * 2 + log.truncatedBytes('stdout'), 100_000);
  // 2 bytes of output cost a 30-byte header on disk: far fewer than 256 KiB / 2 lines stay.
  assert.ok(kept < (256 * 1024) / 30, `kept ${kept} lines`);
  log.release();
});

test('when the disk fails, spilled output is dropped and counted, and memory stays bounded', async () => {
  // A spill folder below a file cannot be created.
  const blocker = join(root, `blocker-${++logs}`);
  writeFileSync(blocker, '');
  const log = new OutputLog({
    spillDir: join(blocker, 'spill'),
    memoryBytesPerStream: 4096,
    maxBytesPerStream: 1024 * 1024,
    maxLineBytes: 1024,
  });
  for (let i = 0; i < 10_000; i++) log.append('stdout', Buffer.from(`line ${i}\n`));
  log.close();
  const { lines } = await readLines(log, {});
  assert.ok(lines.length > 0 && lines.length < 10_000);
  assert.equal(lines.at(-1)?.text, 'line 9999');
  const total = Array.from({ length: 10_000 }, (_, i) => `line ${i}\n`.length).reduce((a, b) => a + b);
  const kept = lines.reduce((sum, line) => sum + line.text.length + 1, 0);
  assert.equal(kept + log.truncatedBytes('stdout'), total);
  log.release();
});

test('spill files deleted behind the log: reads skip them, the loss is counted, appends go on', async () => {
  const log = newLog({ memoryBytesPerStream: 4096, maxBytesPerStream: 128 * 1024 });
  const line = (i: number) => `${String(i).padStart(6, '0')}${'.'.repeat(93)}\n`;
  for (let i = 0; i < 1000; i++) log.append('stdout', Buffer.from(line(i)));
  rmSync(join(root, `log-${logs}`), { recursive: true, force: true });
  // More output: new segments, and the cap drops old ones whose files are gone.
  for (let i = 1000; i < 3000; i++) log.append('stdout', Buffer.from(line(i)));
  log.close();
  const { lines } = await readLines(log, {});
  const numbers = lines.map((l) => Number(l.text.slice(0, 6)));
  assert.equal(numbers.at(-1), 2999);
  for (let i = 1; i < numbers.length; i++) assert.ok((numbers[i] as number) > (numbers[i - 1] as number));
  assert.equal(lines.length * 100 + log.truncatedBytes('stdout'), 3000 * 100);
  log.release();
});
