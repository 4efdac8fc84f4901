import assert from 'node:assert/strict';
import { get, type IncomingMessage, request } from 'node:http';
import { describe, test } from 'node:test';
import { Sandbox } from 'e2b';
import { restClient } from './helpers/api.ts';
import { eventually, useDaemon } from './helpers/daemon.ts';
import { runSdkScenario } from './helpers/tensorlake-sdk.ts';

// A daemon that keeps little output, so that a follower that pauses falls behind for sure: each
// line is its number in 999 digits and a newline, 1000 bytes, 64 MB in all.
const LINES = 65_536;
const LINE_BYTES = 1000;
const LOUD = { command: 'seq', args: ['-f', '%0999g', '1', String(LINES)] };

const MAX_BYTES = 1_048_576;
// A stream's spill segments hold an eighth of its cap each.
const SEGMENT_BYTES = MAX_BYTES / 8;

const daemon = useDaemon(['--output-memory-bytes', '65536', '--output-max-bytes', String(MAX_BYTES)]);

interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

/** An SSE response read by hand, so that the test can stop reading it (TCP then pushes back). */
function sseReader(response: IncomingMessage) {
  response.setEncoding('utf8');
  let buffer = '';
  const events: SseEvent[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  response.on('data', (text: string) => {
    buffer += text;
    for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
      const event: SseEvent = { data: '' };
      for (const line of buffer.slice(0, end).split('\n')) {
        const [field, ...rest] = line.split(': ');
        if (field === 'id' || field === 'event' || field === 'data') event[field] = rest.join(': ');
      }
      buffer = buffer.slice(end + 2);
      if (event.event) events.push(event);
    }
    wake?.();
  });
  response.on('end', () => {
    ended = true;
    wake?.();
  });
  return {
    events,
    async until(done: () => boolean): Promise<void> {
      while (!done()) {
        if (ended) throw new Error('the stream ended first');
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    },
    get ended() {
      return ended;
    },
  };
}

describe('output lost before a follower read it', () => {
  test('SSE: a paused follower gets an explicit truncated event, then whole lines', async () => {
    const rest = restClient(daemon);
    const started = await rest.start({ ...LOUD, stdin_mode: 'pipe' });
    try {
      const response = await new Promise<IncomingMessage>((resolve) =>
        get(`${daemon.api}/processes/${started.pid}/stdout/follow`, resolve),
      );
      const reader = sseReader(response);
      await reader.until(() => reader.events.length > 0);
      // The follower stops reading while the process writes far more than the daemon keeps.
      response.pause();
      await eventually(async () => (await rest.get(started.pid)).status !== 'running', 30_000);
      response.resume();
      await reader.until(() => reader.ended);

      const numbers: number[] = [];
      const losses: { truncated_bytes: number; stream: string; id: number; before: number }[] = [];
      for (const event of reader.events) {
        if (event.event === 'truncated') {
          losses.push({ ...JSON.parse(event.data), id: Number(event.id), before: numbers.at(-1) ?? 0 });
        } else if (event.event === 'output') {
          const { line } = JSON.parse(event.data) as { line: string };
          assert.equal(line.length, LINE_BYTES - 1, 'a whole line');
          numbers.push(Number(line));
        }
      }
      // Usually one gap; the cap may still drop output after the process ended (its last writes
      // to disk finish later), and a follower that is still behind then misses that too.
      assert.ok(losses.length >= 1, 'the loss was reported');
      const gaps = new Map(losses.map((loss) => [loss.before, loss]));
      for (let i = 1; i < numbers.length; i++) {
        const previous = numbers[i - 1] as number;
        const loss = gaps.get(previous);
        if (!loss) {
          assert.equal(numbers[i], previous + 1, 'no line goes missing unreported');
          continue;
        }
        assert.equal(loss.stream, 'stdout');
        // Exactly the lines that did not come.
        assert.equal(loss.truncated_bytes, ((numbers[i] as number) - previous - 1) * LINE_BYTES);
      }
      assert.equal(numbers.at(-1), LINES);
      assert.ok(numbers.length < LINES / 2, `${numbers.length} lines came: too few were dropped to tell`);

      // Resuming after a truncated event goes on with the line after that loss, unless the cap
      // dropped that line too since (its write to disk may finish after the stream ended): then
      // the resumed stream says so first. The daemon no longer holds the line it resumes after,
      // so it counts the loss by whole spill segments (README): every skipped line, and at most
      // one segment's bytes (1/8 of the cap, plus a record) of what the reader already had.
      const last = losses.at(-1) as (typeof losses)[number];
      const resumedAt = numbers[numbers.indexOf(last.before) + 1] as number;
      const again = await new Promise<IncomingMessage>((resolve) =>
        get(
          `${daemon.api}/processes/${started.pid}/stdout/follow`,
          { headers: { 'last-event-id': String(last.id) } },
          resolve,
        ),
      );
      const resumed = sseReader(again);
      try {
        await resumed.until(() => resumed.events.some((event) => event.event === 'output'));
      } finally {
        again.destroy();
      }
      const firstOutput = resumed.events.findIndex((event) => event.event === 'output');
      const first = Number(JSON.parse((resumed.events[firstOutput] as SseEvent).data).line);
      const droppedSince = resumed.events
        .slice(0, firstOutput)
        .filter((event) => event.event === 'truncated')
        .reduce((sum, event) => sum + JSON.parse(event.data).truncated_bytes, 0);
      assert.ok(first >= resumedAt, `resumed at ${first}, before ${resumedAt}`);
      const skipped = (first - resumedAt) * LINE_BYTES;
      assert.ok(droppedSince >= skipped, `${droppedSince} bytes reported, ${skipped} skipped`);
      assert.ok(
        droppedSince - skipped < SEGMENT_BYTES + 65_536,
        `${droppedSince} bytes reported, ${skipped} skipped`,
      );
    } finally {
      await rest.kill(started.pid);
    }
  });

  test('Connect: a paused watcher gets a truncated event; what came and what was lost add up', async () => {
    const rest = restClient(daemon);
    // By hand, since the Connect client reads a stream eagerly: the test must be able to stop reading.
    const body = Buffer.from(
      JSON.stringify({ process: { cmd: LOUD.command, args: LOUD.args }, stdin: false }),
    );
    const envelope = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), body]);
    envelope.writeUInt32BE(body.length, 1);
    const response = await new Promise<IncomingMessage>((resolve) =>
      request(
        `${daemon.url}/process.Process/Start`,
        { method: 'POST', headers: { 'content-type': 'application/connect+json' } },
        resolve,
      ).end(envelope),
    );
    const messages: { event?: Record<string, Record<string, string>> }[] = [];
    let pending = Buffer.alloc(0);
    let wake: (() => void) | undefined;
    response.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
        const length = pending.readUInt32BE(1);
        messages.push(JSON.parse(pending.subarray(5, 5 + length).toString()));
        pending = pending.subarray(5 + length);
      }
      wake?.();
    });
    while (messages.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    response.pause();
    const pid = Number(messages[0]?.event?.start?.pid);
    await eventually(async () => (await rest.get(pid)).status !== 'running', 30_000);
    response.resume();
    await new Promise((resolve) => response.once('end', resolve));
    let stdout = 0;
    let lost = 0;
    for (const { event } of messages) {
      if (event?.data?.stdout) stdout += Buffer.from(event.data.stdout, 'base64').length;
      if (event?.truncated) {
        assert.equal(event.truncated.stream, 'stdout');
        lost += Number(event.truncated.bytes);
      }
    }
    assert.ok(
      messages.some(({ event }) => event?.end),
      'the stream ends with the end event',
    );
    assert.ok(lost > 0, 'the loss was reported');
    assert.equal(stdout + lost, LINES * LINE_BYTES);
  });

  test('the e2b SDK skips the truncated event and still gets the output and the end', async () => {
    const rest = restClient(daemon);
    const started = await rest.start(LOUD);
    await rest.waitForEnd(started.pid);
    const sandbox = await Sandbox.create({ debug: true, sandboxUrl: daemon.url });
    const handle = await sandbox.commands.connect(started.pid);
    const result = await handle.wait();
    assert.equal(result.exitCode, 0);
    assert.ok(result.stdout.endsWith(`${String(LINES).padStart(999, '0')}\n`));
    assert.ok(result.stdout.length < LINES * LINE_BYTES);
  });

  test('the tensorlake SDK skips the truncated event when it follows output', async () => {
    // Lines of 4000 bytes, so that what the cap keeps (about 260 lines) comes in fewer events
    // than the burst past which this SDK's follow can end early (a client defect, about 1000).
    const longLines = 16_384;
    const seen = await runSdkScenario('tensorlake-truncation-scenario.mjs', daemon, {
      SANDBOXD_LOUD: JSON.stringify({ command: 'seq', args: ['-f', '%03999g', '1', String(longLines)] }),
    });
    assert.equal(seen.failure, undefined, seen.failure);
    assert.equal(seen.lastLine, String(longLines).padStart(3999, '0'));
    assert.ok(seen.lines > 0 && seen.lines < 1000, `${seen.lines} lines`);
    assert.equal(seen.exitCode, 0);
  });
});
