import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, mock, test } from 'node:test';
import {
  daemonProbes,
  QUIET_CHECKS,
  ReleasePolicy,
  startMemoryRelease,
} from '../src/server/memory-release.ts';
import { eventually, type TestDaemon, useDaemon } from './helpers/daemon.ts';

const MiB = 1024 * 1024;
const MINIMUM = 32 * MiB;

// The bytes held outside V8's heap, in MiB, at each check after a start at `start`; `releases`
// are the checks (0-based) at which the policy releases, and the release leaves `after` MiB.
const cases: { name: string; start: number; checks: number[]; releases: number[]; after?: number }[] = [
  { name: 'idle: nothing grows', start: 2, checks: [2, 2, 2, 2], releases: [] },
  { name: 'a burst, then quiet', start: 2, checks: [60, 120, 200, 200, 200], releases: [4], after: 2 },
  { name: 'quiet for one check only is not enough', start: 2, checks: [100, 100, 150, 150], releases: [] },
  { name: 'V8 collecting mid-burst is not quiet', start: 2, checks: [100, 60, 140, 90, 180], releases: [] },
  { name: 'growth under the minimum is left alone', start: 2, checks: [20, 30, 30, 30, 30], releases: [] },
  {
    name: 'what a release cannot free is the new floor',
    start: 2,
    checks: [100, 100, 100, 100, 100, 100],
    releases: [2],
    after: 100,
  },
  {
    name: 'V8 collected on its own: the floor follows it down',
    start: 50,
    checks: [10, 10, 50, 50, 50],
    releases: [4],
    after: 10,
  },
  {
    name: 'a second burst after a release',
    start: 2,
    checks: [200, 200, 200, 2, 150, 150, 150],
    releases: [2, 6],
    after: 2,
  },
];

describe('memory release', () => {
  test(`the policy waits for ${QUIET_CHECKS} quiet checks well above the floor`, () => {
    for (const { name, start, checks, releases, after = 0 } of cases) {
      const policy = new ReleasePolicy(start * MiB, MINIMUM);
      const released: number[] = [];
      checks.forEach((bytes, i) => {
        if (!policy.observe(bytes * MiB)) return;
        released.push(i);
        policy.released(after * MiB);
      });
      assert.deepEqual(released, releases, name);
    }
  });

  test('the timer looks once per period and releases through the probes', () => {
    mock.timers.enable({ apis: ['setInterval'] });
    try {
      const readings = [2, 100, 100, 100, 2, 2];
      let calls = 0;
      const release = startMemoryRelease(
        { checkEveryMs: 1000, minimumBytes: MINIMUM },
        {
          externalBytes: () => (readings.shift() ?? 2) * MiB,
          release: () => {
            calls++;
          },
        },
      );
      mock.timers.tick(999);
      assert.equal(calls, 0);
      mock.timers.tick(3001);
      assert.equal(calls, 1, 'released after the second quiet check');
      release.stop();
      mock.timers.tick(10_000);
      assert.equal(calls, 1, 'no check after stop');
    } finally {
      mock.timers.reset();
    }
  });

  test("the daemon's release frees dead Buffers' bytes", () => {
    const probes = daemonProbes();
    // Held across a few collections, as output kept for a while is, so that they are old.
    let held: Buffer[] | undefined = Array.from({ length: 64 }, () => Buffer.alloc(MiB, 1));
    probes.release();
    const withThem = probes.externalBytes();
    held.length = 0;
    held = undefined;
    probes.release();
    const freed = withThem - probes.externalBytes();
    assert.ok(freed >= 60 * MiB, `only ${(freed / MiB).toFixed(1)} MiB freed of 64`);
  });
});

async function residentMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024;
}

/** Connect Start (JSON) of `head -c BYTES /dev/zero`, read to its end; the bytes received. */
async function outputBurst(daemon: TestDaemon, bytes: number): Promise<number> {
  const message = Buffer.from(
    JSON.stringify({ process: { cmd: 'head', args: ['-c', String(bytes), '/dev/zero'] }, stdin: false }),
  );
  const envelope = Buffer.alloc(5 + message.length);
  envelope.writeUInt32BE(message.length, 1);
  message.copy(envelope, 5);
  const response = await fetch(`${daemon.url}/process.Process/Start`, {
    method: 'POST',
    headers: { ...daemon.headers, 'content-type': 'application/connect+json' },
    body: envelope,
  });
  assert.equal(response.status, 200);
  let received = 0;
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) received += chunk.length;
  return received;
}

describe('memory release, in the daemon', () => {
  const daemon = useDaemon();

  test('after 200 MiB of output and a quiet moment, the daemon is back near where it started', async () => {
    const pid = daemon.child.pid as number;
    const before = await residentMiB(pid);
    const received = await outputBurst(daemon, 200 * MiB);
    // Base64 in JSON: four bytes for every three, plus the frames.
    assert.ok(received > (200 * MiB * 4) / 3, `${received} bytes received`);
    const after = await residentMiB(pid);
    // Without the release the daemon stayed ~230 MiB above where it began (malloc's heap).
    await eventually(async () => (await residentMiB(pid)) < before + 64, 15_000).catch(async () => {
      assert.fail(
        `resident: ${before.toFixed(0)} MiB before, ${after.toFixed(0)} right after, ${(await residentMiB(pid)).toFixed(0)} 15 s later`,
      );
    });
  });
});
