import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  followLines,
  LineCutter,
  type LineItem,
  type LineQuery,
  linesSoFar,
  type OutputLine,
  spreadRuns,
} from '../src/core/lines.ts';
import type { LogRecord } from '../src/core/log-record.ts';
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

/** Appends as a pipe reader does: waiting while the log is congested (its disk writes lag). */
async function feed(log: OutputLog, stream: 'stdout' | 'stderr' | 'pty', chunks: Iterable<string | Buffer>) {
  for (const chunk of chunks) {
    log.append(stream, typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    if (log.congested) await log.whenCalm();
  }
}

const times = <T>(count: number, make: (i: number) => T): T[] =>
  Array.from({ length: count }, (_, i) => make(i));

const onlyLines = (items: LineItem[]) =>
  spreadRuns(items).filter((item): item is OutputLine => item.kind === 'line');

async function readLines(log: OutputLog, query: LineQuery): Promise<{ lines: OutputLine[] }> {
  const lines: OutputLine[] = [];
  for await (const batch of linesSoFar(log, query)) lines.push(...onlyLines(batch));
  return { lines };
}

async function collect(log: OutputLog, afterId?: number, stream?: 'stdout' | 'stderr') {
  const lines: OutputLine[] = [];
  for await (const batch of followLines(log, { after: afterId, stream })) lines.push(...onlyLines(batch));
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
  const total = 5000;
  await feed(
    log,
    'stdout',
    times(total, (i) => `line ${i}\n`),
  );
  log.close();
  await log.flushed();
  const page = await readLines(log, {});
  assert.equal(page.lines.length, total);
  assert.equal(page.lines[3456]?.text, 'line 3456');
  assert.ok(readdirSync(join(root, `log-${logs}`)).length > 0, 'nothing was spilled');
  const resumed = await collect(log, page.lines[2499]?.id);
  assert.equal(resumed.length, total - 2500);
  assert.equal(resumed[0]?.text, 'line 2500');
  await log.release();
  assert.equal(existsSync(join(root, `log-${logs}`)), false);
});

test('a read while both streams spill never skips a record', async () => {
  // A spill writes one stream's records, then the other's, and only then do they leave memory.
  // A read from disk in between finds the first stream's records there and the second's not
  // yet: it must not return the first stream's past the second's.
  const line = (text: string) => Buffer.from(`${text}${'.'.repeat(3000)}\n`);
  // Three lines: stdout goes over its budget with the third, and all three spill, stdout's two
  // first, then stderr's one.
  const spillThree = (log: OutputLog) => {
    log.append('stdout', line('a'));
    log.append('stderr', line('b'));
    log.append('stdout', line('c'));
  };
  for (let round = 0; round < 50; round++) {
    const log = newLog({ memoryBytesPerStream: 4096 });
    spillThree(log); // seq 1-3, on disk
    await log.flushed();
    spillThree(log); // seq 4-6, being written while the reads below go on
    let spilled = false;
    const flushed = log.flushed().then(() => {
      spilled = true;
    });
    do {
      const seqs = (await log.read(1)).map((record) => record.seq);
      assert.deepEqual(seqs, [1, 2, 3, 4, 5, 6].slice(0, seqs.length), `round ${round}: read ${seqs}`);
    } while (!spilled);
    await flushed;
    await log.release();
  }
});

test('past the cap the oldest output is dropped and the drop is counted', async () => {
  const log = newLog({ memoryBytesPerStream: 4096, maxBytesPerStream: 128 * 1024 });
  const line = `${'x'.repeat(99)}\n`;
  await feed(
    log,
    'stdout',
    times(5000, () => line),
  );
  log.close();
  await log.flushed();
  const page = await readLines(log, { stream: 'stdout' });
  const kept = page.lines.length * line.length;
  assert.ok(kept <= 128 * 1024, `kept ${kept} bytes`);
  assert.ok(log.truncatedBytes('stdout') > 0);
  assert.equal(kept + log.truncatedBytes('stdout'), 5000 * line.length);
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
  await feed(
    log,
    'pty',
    times(3000, (i) => `row ${i}\r\n`),
  );
  await log.flushed();
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
  assert.ok(bytes.endsWith('row 2999\r\n'));
  const all = await readFrom(await log.tailStart('pty', 10 ** 9));
  assert.equal(all[0]?.seq, 1);
  assert.equal(all.length, 3000);
  await log.release();
});

test('the cap of one stream drops only that stream, counting record headers as disk use', async () => {
  const log = newLog({ memoryBytesPerStream: 4096, maxBytesPerStream: 64 * 1024 });
  log.append('stderr', Buffer.from('IMPORTANT-ERROR\n'));
  await feed(
    log,
    'stdout',
    times(12_500, () => 'y\n'),
  );
  log.close();
  await log.flushed();
  assert.deepEqual(
    (await readLines(log, { stream: 'stderr' })).lines.map((l) => l.text),
    ['IMPORTANT-ERROR'],
  );
  assert.equal(log.truncatedBytes('stderr'), 0);
  const kept = (await readLines(log, { stream: 'stdout' })).lines.length;
  assert.ok(log.truncatedBytes('stdout') > 0);
  assert.equal(kept * 2 + log.truncatedBytes('stdout'), 25_000);
  // 2 bytes of output cost a 30-byte header on disk: far fewer than 64 KiB / 2 lines stay.
  assert.ok(kept < (64 * 1024) / 30, `kept ${kept} lines`);
  await log.release();
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
  await feed(
    log,
    'stdout',
    times(10_000, (i) => `line ${i}\n`),
  );
  log.close();
  await log.flushed();
  const { lines } = await readLines(log, {});
  assert.ok(lines.length > 0 && lines.length < 10_000);
  assert.equal(lines.at(-1)?.text, 'line 9999');
  const total = Array.from({ length: 10_000 }, (_, i) => `line ${i}\n`.length).reduce((a, b) => a + b);
  const kept = lines.reduce((sum, line) => sum + line.text.length + 1, 0);
  assert.equal(kept + log.truncatedBytes('stdout'), total);
  await log.release();
});

test('a disk that fills up mid-write: what fit reads back, the rest is dropped and counted', async (t) => {
  const dir = mkdtempSync(join(root, 'tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dir]);
  } catch {
    t.skip('mounting a tmpfs needs root');
    return;
  }
  const log = new OutputLog({
    spillDir: join(dir, 'spill'),
    memoryBytesPerStream: 160 * 1024,
    maxBytesPerStream: 64 * 1024 * 1024,
    maxLineBytes: 1024,
  });
  t.after(async () => {
    await log.release();
    execFileSync('umount', [dir]);
  });
  // Chunks of 64 KiB, as pipes give them: each spill write is a few of them, cut by the full disk.
  const line = (i: number) => `${String(i).padStart(7, '0')}${'.'.repeat(56)}\n`;
  const chunk = (c: number) => Buffer.from(times(1024, (i) => line(c * 1024 + i)).join(''));
  await feed(log, 'stdout', times(32, chunk));
  log.close();
  await log.flushed();
  const { lines } = await readLines(log, {});
  const total = 32 * 1024 * 64;
  assert.ok(lines.length * 64 <= (256 + 160) * 1024, `${lines.length} lines kept`);
  assert.equal(lines.length * 64 + log.truncatedBytes('stdout'), total);
  // What was kept is whole lines, each where it belongs; the newest, in memory, are there.
  const numbers = lines.map((kept) => Number(kept.text.slice(0, 7)));
  for (const [i, kept] of lines.entries()) assert.equal(kept.text, line(numbers[i] as number).slice(0, -1));
  assert.ok(
    numbers.every((n, i) => i === 0 || n > (numbers[i - 1] as number)),
    'in order',
  );
  assert.equal(lines.at(-1)?.text, line(32 * 1024 - 1).slice(0, -1));
});

test('spill files deleted behind the log: reads skip them, the loss is counted, appends go on', async () => {
  const log = newLog({ memoryBytesPerStream: 4096, maxBytesPerStream: 128 * 1024 });
  const line = (i: number) => `${String(i).padStart(6, '0')}${'.'.repeat(93)}\n`;
  await feed(log, 'stdout', times(1000, line));
  await log.flushed();
  rmSync(join(root, `log-${logs}`), { recursive: true, force: true });
  // More output: new segments, and the cap drops old ones whose files are gone.
  await feed(
    log,
    'stdout',
    times(2000, (i) => line(i + 1000)),
  );
  log.close();
  await log.flushed();
  const { lines } = await readLines(log, {});
  const numbers = lines.map((l) => Number(l.text.slice(0, 6)));
  assert.equal(numbers.at(-1), 2999);
  for (let i = 1; i < numbers.length; i++) assert.ok((numbers[i] as number) > (numbers[i - 1] as number));
  assert.equal(lines.length * 100 + log.truncatedBytes('stdout'), 3000 * 100);
  await log.release();
});

describe('a follower that falls behind the retention cap', () => {
  // Each line is one letter repeated, so a line made of two lines is easy to see.
  const lineOf = (letter: string, bytes: number) => `${letter.repeat(bytes - 1)}\n`;
  const KiB = 1024;

  test('never gets a spliced line: the loss is reported and it resumes at a whole line', async () => {
    const log = newLog({
      memoryBytesPerStream: 64 * KiB,
      maxBytesPerStream: 2048 * KiB,
      maxLineBytes: 1024 * KiB,
    });
    const chunks = (text: string) =>
      times(Math.ceil(text.length / (64 * KiB)), (i) => text.slice(i * 64 * KiB, (i + 1) * 64 * KiB));
    const follower = followLines(log, {});
    // A short line, then the first part of a long one: the follower holds that part when it pauses.
    await feed(log, 'stdout', [lineOf('a', 100 * KiB), ...chunks(lineOf('b', 512 * KiB))]);
    const first = await follower.next();
    assert.deepEqual(
      onlyLines(first.value as LineItem[]).map((l) => l.text[0]),
      ['a'],
    );
    // While it pauses, the process writes far more than the cap holds.
    const letters = 'cdefgh'.split('');
    await feed(
      log,
      'stdout',
      letters.flatMap((letter) => chunks(lineOf(letter, 512 * KiB))),
    );
    log.close();
    await log.flushed();
    const items: LineItem[] = [];
    for (let next = await follower.next(); !next.done; next = await follower.next())
      items.push(...next.value);
    const lines = onlyLines(items);
    for (const line of lines) {
      assert.equal(line.text, (line.text[0] as string).repeat(line.text.length), 'a line of one letter');
      assert.equal(line.text.length, 512 * KiB - 1, 'a whole line');
    }
    const truncations = items.filter((item) => item.kind === 'truncated');
    assert.equal(truncations.length, 1);
    const [loss] = truncations as Extract<LineItem, { kind: 'truncated' }>[];
    // Every byte of the stream is either in a line handed out or counted in the loss.
    const total = 100 * KiB + 512 * KiB * (letters.length + 1);
    const handedOut = 100 * KiB + lines.length * 512 * KiB;
    assert.equal(handedOut + (loss?.bytes ?? 0), total);
    assert.ok(lines.length >= 2, `${lines.length} lines after the loss`);
    // Ids still grow, and resuming after the loss goes on with the lines that followed it.
    const ids = items.map((item) => item.id);
    assert.deepEqual(
      ids,
      [...ids].sort((x, y) => x - y),
    );
    assert.deepEqual(
      (await collect(log, loss?.id)).map((l) => l.text[0]),
      lines.map((l) => l.text[0]),
    );
    await log.release();
  });

  test('a follower that starts after output was dropped is told first', async () => {
    const log = newLog({ memoryBytesPerStream: 64 * KiB, maxBytesPerStream: 512 * KiB });
    await feed(
      log,
      'stderr',
      times(60, (i) => lineOf(String(i % 10), 10 * KiB)),
    );
    log.close();
    await log.flushed();
    const items: LineItem[] = [];
    for await (const batch of followLines(log, { stream: 'stderr' })) items.push(...batch);
    const [first, ...rest] = items;
    assert.equal(first?.kind, 'truncated');
    const lines = onlyLines(rest);
    assert.equal((first as { bytes: number }).bytes + lines.length * 10 * KiB, 60 * 10 * KiB);
    assert.equal(lines.at(-1)?.text[0], '9');
    await log.release();
  });

  test('a loss is reported where the broken line ends, or at the very end if it never does', () => {
    const record = (
      seq: number,
      offset: number,
      text: string,
      startsLine: boolean,
      lines: number,
    ): LogRecord => ({
      seq,
      lines,
      stream: 'stdout',
      offset,
      timestamp: 0,
      data: Buffer.from(text),
      endsLine: text.endsWith('\n'),
      startsLine,
      replayFrom: seq,
    });
    const cutter = new LineCutter(undefined, 'start');
    assert.deepEqual(
      cutter.push(record(1, 0, 'whole\n', true, 1)).map((i) => i.kind),
      ['line'],
    );
    // 94 bytes went missing, then the end of a broken line and a whole one in the same record.
    assert.deepEqual(cutter.push(record(9, 100, 'end of broken\nnext\n', false, 2)), [
      { kind: 'truncated', id: 9, stream: 'stdout', bytes: 108 },
      { kind: 'line', id: 10, stream: 'stdout', text: 'next', timestamp: 0 },
    ]);
    // Lost again, and the output ends inside the broken line.
    assert.deepEqual(cutter.push(record(30, 500, 'tail without an end', false, 0)), []);
    assert.deepEqual(cutter.finish(), [{ kind: 'truncated', id: 30, stream: 'stdout', bytes: 519 - 119 }]);
  });
});
