import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type LogRecord, lastSeqOf, type StreamName } from '../src/core/log-record.ts';
import { OutputLog, type OutputLogOptions } from '../src/core/output-log.ts';

// Reading spilled output back: a segment's file stays open between reads, so these tests watch
// the process's descriptors (a leak would show long before the daemon ran out of them) and
// check that readers at different places in the same files each get every record, in order.
const root = mkdtempSync(join(tmpdir(), 'sandboxd-spill-read-test-'));
after(() => rmSync(root, { recursive: true, force: true }));
let logs = 0;

function newLog(options: Partial<OutputLogOptions> = {}): { log: OutputLog; dir: string } {
  const dir = join(root, `log-${++logs}`);
  const log = new OutputLog({
    spillDir: dir,
    memoryBytesPerStream: 4096,
    // Segments of 64 KiB (an eighth of the cap, 64 KiB at least): many of them.
    maxBytesPerStream: 512 * 1024,
    maxLineBytes: 1024 * 1024,
    // Handles kept between reads close after this long unused (2 s in the daemon).
    readHandleIdleMs: 50,
    ...options,
  });
  return { log, dir };
}

/** This process's descriptors open on files in `dir` (deleted ones too), or on the file `only`. */
function descriptorsIn(dir: string, only?: string): number {
  const prefix = only === undefined ? `${dir}/` : join(dir, only);
  let count = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(prefix)) count++;
    } catch {
      // The descriptor readdir itself used, closed by now.
    }
  }
  return count;
}

/** Waits (a little) for closes under way in the background to finish. */
async function descriptorsSettleTo(dir: string, most: number, what: string): Promise<void> {
  for (let tries = 0; descriptorsIn(dir) > most; tries++) {
    assert.ok(
      tries < 100,
      `${what}: ${descriptorsIn(dir)} descriptors open in the spill folder, at most ${most}`,
    );
    await sleep(10);
  }
}

const line = (stream: StreamName, i: number) =>
  `${stream} ${String(i).padStart(7, '0')} ${'.'.repeat(i % 150)}\n`;

/** Appends numbered lines to both streams as a pipe reader does; returns what each stream got. */
async function feed(log: OutputLog, count: number, from = 0): Promise<Record<'stdout' | 'stderr', Buffer>> {
  const sent = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  for (let i = from; i < from + count; i++) {
    const stream = i % 3 === 0 ? 'stderr' : 'stdout';
    const chunk = Buffer.from(line(stream, i).repeat(1 + (i % 7)));
    sent[stream].push(chunk);
    log.append(stream, chunk);
    if (log.congested) await log.whenCalm();
  }
  return { stdout: Buffer.concat(sent.stdout), stderr: Buffer.concat(sent.stderr) };
}

/**
 * Reads the log from `fromSeq` to its end, `maxBytes` at a time, letting other readers run
 * between reads; the records are kept whole until the end, so a block buffer reused behind a
 * reader's back would show in the data checked afterwards.
 */
async function readAll(
  log: OutputLog,
  fromSeq: number,
  maxBytes: number,
  pause: number,
): Promise<LogRecord[]> {
  const records: LogRecord[] = [];
  let next = fromSeq;
  for (let reads = 0; ; reads++) {
    const batch = await log.read(next, maxBytes);
    const last = batch.at(-1);
    if (!last) return records;
    records.push(...batch);
    next = lastSeqOf(last) + 1;
    if (reads % pause === 0) await new Promise(setImmediate);
  }
}

/**
 * Checks that records are every one from the first on, in order, and hold what was sent from
 * where they begin to its end.
 */
function assertWholeAndInOrder(
  records: LogRecord[],
  sent: Record<'stdout' | 'stderr', Buffer>,
  what: string,
) {
  let lastSeq = 0;
  const data: Record<'stdout' | 'stderr', Buffer[]> = { stdout: [], stderr: [] };
  const nextOffset: Partial<Record<StreamName, number>> = {};
  for (const record of records) {
    assert.ok(record.seq > lastSeq, `${what}: sequence numbers ascend`);
    lastSeq = lastSeqOf(record);
    const stream = record.stream as 'stdout' | 'stderr';
    const expected = nextOffset[stream] ?? record.offset;
    assert.equal(record.offset, expected, `${what}: ${stream} goes on where it left off`);
    nextOffset[stream] = record.offset + record.data.length;
    data[stream].push(record.data);
  }
  for (const stream of ['stdout', 'stderr'] as const) {
    const got = Buffer.concat(data[stream]);
    const start = sent[stream].length - got.length;
    assert.ok(got.equals(sent[stream].subarray(start)), `${what}: ${stream} holds what was sent`);
    assert.equal(nextOffset[stream], sent[stream].length, `${what}: ${stream} read to its end`);
  }
}

test('reads across many segments keep a bounded number of files open, none once idle or released', async () => {
  const { log, dir } = newLog();
  await feed(log, 12_000);
  await log.flushed();
  const files = readdirSync(dir).length;
  assert.ok(files >= 10, `many segments (${files})`);
  // Four readers at different places, each read small, each moving through every segment.
  const starts = [1, 1000, 5000, 9000].map((at) => Math.min(at, log.endSeq - 1));
  for (let round = 0; round < 2; round++) {
    const reads = starts.map((from, i) =>
      readAll(log, from, [4096, 8192, 64 * 1024, 300 * 1024][i] as number, i + 1),
    );
    await Promise.all(reads);
    // Per stream: its writer, and at most two read handles kept.
    await descriptorsSettleTo(dir, 2 + 2 * 2, `after round ${round + 1} of reads`);
  }
  // Output goes on meanwhile: the cap drops segments that readers may have open.
  const more = feed(log, 6000, 12_000);
  const during = readAll(log, log.startSeq, 8192, 1);
  await more;
  await during;
  await descriptorsSettleTo(dir, 2 + 2 * 2, 'after reads while the cap dropped segments');
  // A finished process's log: its writers close, and read handles nobody uses close soon after.
  log.close();
  await log.settle();
  await readAll(log, log.startSeq, 64 * 1024, 1);
  assert.ok(descriptorsIn(dir) > 0, 'a read handle is kept for the next read');
  for (let waited = 0; descriptorsIn(dir) > 0; waited += 10) {
    assert.ok(waited < 2000, 'idle read handles are closed soon after their idle time');
    await sleep(10);
  }
  await readAll(log, log.startSeq, 64 * 1024, 1);
  await log.release();
  assert.equal(descriptorsIn(dir), 0, 'released: no descriptor left');
});

test('readers at different places in the same spilled streams each get everything, in order', async () => {
  // A cap of 1 MiB: segments of 128 KiB, and the output fits (no segment is dropped).
  const { log, dir } = newLog({ maxBytesPerStream: 1024 * 1024 });
  // One reader follows live from the start, pausing often: it falls behind onto the disk.
  const live = (async () => {
    const records: LogRecord[] = [];
    let batches = 0;
    for await (const batch of log.follow(1)) {
      records.push(...batch);
      if (++batches % 4 === 0) await sleep(1);
    }
    return records;
  })();
  const sent = await feed(log, 3500);
  log.close();
  await log.flushed();
  assert.ok(readdirSync(dir).length >= 10, 'many segments');
  assert.equal(log.truncatedBytes(), 0, 'nothing dropped');
  const end = log.endSeq;
  // Readers starting at different places, reading different amounts at a time, all at once.
  const readers = [1, 1, Math.floor(end / 4), Math.floor(end / 2), end - 100].map((from, i) => ({
    from,
    records: readAll(log, from, [1, 256 * 1024, 700, 64 * 1024, 4096][i] as number, 1 + i),
  }));
  assertWholeAndInOrder(await live, sent, 'the live follower');
  for (const [i, reader] of readers.entries()) {
    const records = await reader.records;
    const first = records[0] as LogRecord;
    assert.ok(
      first.seq <= reader.from && reader.from <= lastSeqOf(first),
      `reader ${i} starts where it asked`,
    );
    assertWholeAndInOrder(records, sent, `reader ${i}`);
    if (reader.from === 1)
      assert.ok(
        records.filter((r) => r.stream === 'stdout')[0]?.offset === 0,
        `reader ${i}: all of stdout, from its first byte`,
      );
  }
  await log.release();
  assert.equal(descriptorsIn(dir), 0);
});

test('a segment cut short behind the log is skipped and counted, like one deleted', async () => {
  const { log, dir } = newLog({ maxBytesPerStream: 1024 * 1024 });
  const sent = await feed(log, 3000);
  log.close();
  await log.flushed();
  const segments = readdirSync(dir).filter((name) => name.startsWith('stdout-'));
  assert.ok(segments.length >= 3);
  truncateSync(join(dir, 'stdout-1.log'), 1000);
  const records = await readAll(log, 1, 256 * 1024, 1);
  const stdout = records.filter((r) => r.stream === 'stdout');
  const bytes = stdout.reduce((sum, r) => sum + r.data.length, 0);
  assert.ok(bytes < sent.stdout.length, 'the damaged segment was left out');
  assert.equal(bytes + log.truncatedBytes('stdout'), sent.stdout.length, 'and its loss counted');
  for (let i = 1; i < stdout.length; i++) {
    const before = stdout[i - 1] as LogRecord;
    const record = stdout[i] as LogRecord;
    if (record.offset !== before.offset + before.data.length) assert.ok(record.offset > before.offset);
  }
  await log.release();
  assert.equal(descriptorsIn(dir), 0);
});

test('a read that fails leaves no descriptor behind, and the error reaches the reader', async () => {
  const { log, dir } = newLog({ maxBytesPerStream: 1024 * 1024 });
  await feed(log, 3000);
  log.close();
  await log.flushed();
  // A folder where a segment was: it opens, but reading it fails (EISDIR), as a failing disk would.
  rmSync(join(dir, 'stdout-0.log'));
  mkdirSync(join(dir, 'stdout-0.log'));
  for (let i = 0; i < 20; i++) await assert.rejects(log.read(1, 4096), { code: 'EISDIR' });
  for (let tries = 0; descriptorsIn(dir, 'stdout-0.log') > 0; tries++) {
    assert.ok(tries < 100, 'the segment that failed is not held open');
    await sleep(10);
  }
  // The writers, and what stderr's reads keep.
  assert.ok(descriptorsIn(dir) <= 2 + 2);
  await log.release();
  assert.equal(descriptorsIn(dir), 0);
});
