import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, mock, test } from 'node:test';
import { encodeEnvelope } from '@connectrpc/connect/protocol';
import {
  daemonProbes,
  QUIET_CHECKS,
  QUIET_CPU_SHARE,
  ReleasePolicy,
  startMemoryRelease,
} from '../src/server/memory-release.ts';
import { eventually, type TestDaemon, useDaemon } from './helpers/daemon.ts';

const MiB = 1024 * 1024;
const MINIMUM = 32 * MiB;

// At each check after a start at `start` MiB: the bytes held outside V8's heap (MiB) and the
// share of the period the daemon spent on the CPU; `releases` are the checks (0-based) at which
// the policy releases, and each release leaves `after` MiB.
const BUSY = 0.6;
const IDLE = 0.01;
const cases: {
  name: string;
  start: number;
  checks: [mib: number, cpu: number][];
  releases: number[];
  after?: number;
}[] = [
  {
    name: 'idle: nothing grows',
    start: 2,
    checks: [
      [2, IDLE],
      [2, IDLE],
      [2, IDLE],
    ],
    releases: [],
  },
  {
    name: 'a burst, then quiet',
    start: 2,
    checks: [
      [60, BUSY],
      [120, BUSY],
      [200, BUSY],
      [200, IDLE],
      [200, IDLE],
    ],
    releases: [4],
    after: 2,
  },
  {
    name: 'quiet for one check only is not enough',
    start: 2,
    checks: [
      [100, BUSY],
      [100, IDLE],
      [150, BUSY],
      [150, IDLE],
    ],
    releases: [],
  },
  {
    name: 'bytes that stop growing mid-burst (V8 collecting) are not quiet',
    start: 2,
    checks: [
      [100, BUSY],
      [60, BUSY],
      [60, BUSY],
      [60, BUSY],
      [180, BUSY],
    ],
    releases: [],
  },
  {
    name: 'just under the CPU share is quiet',
    start: 2,
    checks: [
      [100, QUIET_CPU_SHARE - 0.001],
      [100, QUIET_CPU_SHARE - 0.001],
    ],
    releases: [1],
  },
  {
    name: 'growth under the minimum is left alone',
    start: 2,
    checks: [
      [20, BUSY],
      [30, IDLE],
      [30, IDLE],
      [30, IDLE],
    ],
    releases: [],
  },
  {
    name: 'what a release cannot free is the new floor',
    start: 2,
    checks: [
      [100, IDLE],
      [100, IDLE],
      [100, IDLE],
      [100, IDLE],
      [100, IDLE],
    ],
    releases: [1],
    after: 100,
  },
  {
    name: 'V8 collected on its own: the floor follows it down',
    start: 50,
    checks: [
      [10, IDLE],
      [10, IDLE],
      [50, BUSY],
      [50, IDLE],
      [50, IDLE],
    ],
    releases: [4],
    after: 10,
  },
  {
    name: 'a second burst after a release',
    start: 2,
    checks: [
      [200, BUSY],
      [200, IDLE],
      [200, IDLE],
      [2, IDLE],
      [150, BUSY],
      [150, IDLE],
      [150, IDLE],
    ],
    releases: [2, 6],
    after: 2,
  },
];

describe('memory release', () => {
  test(`the policy waits for ${QUIET_CHECKS} quiet checks well above the floor`, () => {
    for (const { name, start, checks, releases, after = 0 } of cases) {
      const policy = new ReleasePolicy(start * MiB, MINIMUM);
      const released: number[] = [];
      checks.forEach(([bytes, cpu], i) => {
        if (!policy.observe(bytes * MiB, cpu)) return;
        released.push(i);
        policy.released(after * MiB);
      });
      assert.deepEqual(released, releases, name);
    }
  });

  test('the timer looks once per period, measures CPU over it, and releases through the probes', () => {
    mock.timers.enable({ apis: ['setInterval'] });
    try {
      const readings = [2, 100, 100, 100, 2, 2];
      // CPU used so far, µs, at the start and at each check: 600 ms of the first second, then
      // 10 ms a second; the release itself takes 300 ms, which must not count as work.
      const cpu = [0, 600_000, 610_000, 620_000, 920_000, 930_000];
      let calls = 0;
      const release = startMemoryRelease(
        { checkEveryMs: 1000, minimumBytes: MINIMUM },
        {
          externalBytes: () => (readings.shift() ?? 2) * MiB,
          cpuMicros: () => cpu.shift() ?? 930_000,
          release: () => {
            calls++;
          },
        },
      );
      mock.timers.tick(999);
      assert.equal(calls, 0);
      mock.timers.tick(2001);
      assert.equal(calls, 1, 'released at the second quiet check');
      mock.timers.tick(1000);
      assert.equal(calls, 1, 'the release is not counted as a busy second, nor is it repeated');
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
  const message = { process: { cmd: 'head', args: ['-c', String(bytes), '/dev/zero'] }, stdin: false };
  const response = await fetch(`${daemon.url}/process.Process/Start`, {
    method: 'POST',
    headers: { ...daemon.headers, 'content-type': 'application/connect+json' },
    body: encodeEnvelope(0, Buffer.from(JSON.stringify(message))),
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
