import assert from 'node:assert/strict';
import { test } from 'node:test';
import { restClient } from './helpers/api.ts';
import { useDaemon } from './helpers/daemon.ts';

const LINES = 200_000;
// Every third line goes to stderr; both streams are written as fast as awk can.
const PRINTER = `awk 'BEGIN { for (i = 1; i <= ${LINES}; i++) { if (i % 3 == 0) print "line " i > "/dev/stderr"; else print "line " i } }'`;

const daemon = useDaemon();

function assertEveryLineOnce(lines: { line: string; stream?: string }[]): void {
  assert.equal(lines.length, LINES);
  const seen = new Set<number>();
  const lastOf: Record<string, number> = { stdout: 0, stderr: 0 };
  for (const { line, stream } of lines) {
    const n = Number(line.slice(5));
    assert.ok(!seen.has(n), `line ${n} arrived twice`);
    seen.add(n);
    const expected = n % 3 === 0 ? 'stderr' : 'stdout';
    assert.equal(stream, expected, `line ${n} on the wrong stream`);
    assert.ok(n > (lastOf[expected] as number), `line ${n} out of order on ${expected}`);
    lastOf[expected] = n;
  }
  assert.equal(seen.size, LINES);
}

test('a follower that disconnects half-way and resumes with Last-Event-ID gets every line exactly once', async () => {
  const client = restClient(daemon);
  const { pid } = await client.start({ command: 'sh', args: ['-c', PRINTER] });
  const first = await client.follow(pid, { stopAfter: LINES / 2 });
  assert.equal(first.eof, false);
  assert.equal(first.lines.length, LINES / 2);
  const lastId = (first.lines.at(-1) as { id: number }).id;
  const rest = await client.follow(pid, { lastEventId: lastId });
  assert.equal(rest.eof, true);
  const followed = [...first.lines, ...rest.lines];
  assertEveryLineOnce(followed);

  // GET /output holds the same lines in the same (read) order as the live stream.
  assert.deepEqual(
    await client.lines(pid),
    followed.map((l) => l.line),
  );
  const info = await client.get(pid);
  assert.equal(info.status, 'exited');
  assert.equal(info.exit_code, 0);
});

test('?after= resumes like Last-Event-ID, and ids only grow', async () => {
  const client = restClient(daemon);
  const { pid } = await client.start({ command: 'sh', args: ['-c', PRINTER] });
  const all = (await client.follow(pid)).lines;
  for (let i = 1; i < all.length; i++)
    assert.ok((all[i] as { id: number }).id > (all[i - 1] as { id: number }).id);
  const cut = all[12_345] as { id: number };
  const response = await fetch(`${daemon.api}/processes/${pid}/output?after=${cut.id}&limit=3`);
  const page = (await response.json()) as { lines: string[]; next_after: number; truncated_bytes: number };
  assert.deepEqual(
    page.lines,
    all.slice(12_346, 12_349).map((l) => l.line),
  );
  assert.equal(page.next_after, (all[12_348] as { id: number }).id);
  assert.equal(page.truncated_bytes, 0);

  const resumed = await fetch(`${daemon.api}/processes/${pid}/stdout/follow?after=${cut.id}`);
  const text = await resumed.text();
  const stdoutAfterCut = all.slice(12_346).filter((l) => l.stream === 'stdout');
  const dataLines = text.split('\n').filter((l) => l.startsWith('data: {"line"'));
  assert.equal(dataLines.length, stdoutAfterCut.length);
  assert.equal(JSON.parse((dataLines[0] as string).slice(6)).line, stdoutAfterCut[0]?.line);
});

test('a line split across many writes, partial lines on both streams, and CRLF come out whole', async () => {
  const client = restClient(daemon);
  const script = "printf 'par'; printf 'x\\n' >&2; printf 'tial\\r\\n'; printf 'no newline at end' >&2";
  const { pid } = await client.start({ command: 'sh', args: ['-c', script] });
  const { lines } = await client.follow(pid);
  // The two pipes are read independently, so only each stream's own order is fixed.
  const ofStream = (stream: string) => lines.filter((l) => l.stream === stream).map((l) => l.line);
  assert.deepEqual(ofStream('stdout'), ['partial']);
  assert.deepEqual(ofStream('stderr'), ['x', 'no newline at end']);
  // Resuming after each line gives exactly the lines after it, the open partial line rebuilt whole.
  for (let i = 0; i < lines.length; i++) {
    const rest = await client.follow(pid, { lastEventId: (lines[i] as { id: number }).id });
    assert.deepEqual(
      rest.lines.map((l) => l.line),
      lines.slice(i + 1).map((l) => l.line),
    );
  }
});
