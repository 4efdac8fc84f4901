import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { restClient } from './helpers/api.ts';
import { CGROUP2_ALONE } from './helpers/cgroups.ts';
import { eventually, isAlive, startDaemon, type TestDaemon, useDaemon } from './helpers/daemon.ts';
import { collect, processClient } from './helpers/envd.ts';
import { readSse } from './helpers/sse.ts';

// Limits, usage and OOM reports against a real daemon and real processes. This machine (and CI)
// is a hybrid: cgroup v1 memory, cpu, cpuacct and pids hierarchies, and a cgroup v2 hierarchy at
// /sys/fs/cgroup/unified with no controllers passed on, so `auto` tracks processes with cgroup v2
// and holds limits in the v1 hierarchies.

const MiB = 1024 * 1024;
const isRoot = process.getuid?.() === 0;
const hasV1 = ['memory', 'cpu', 'pids'].every((controller) =>
  existsSync(`/sys/fs/cgroup/${controller}/cgroup.procs`),
);
const needsCgroups = !isRoot
  ? 'needs root'
  : !hasV1
    ? 'needs cgroup v1 memory, cpu and pids hierarchies'
    : false;
// Bit 24 of the effective capabilities: lowering an oom_score_adj takes it.
const hasSysResource =
  (BigInt(`0x${/CapEff:\s*(\w+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0'}`) >> 24n) & 1n;

/** A node program: `node -e script`. */
const node = (script: string) => ({ command: process.execPath, args: ['-e', script] });

interface RunFrame {
  pid?: number;
  line?: string;
  exit_code?: number;
  signal?: number;
  oom_killed?: boolean;
  error?: string;
}

async function run(daemon: TestDaemon, body: unknown): Promise<RunFrame[]> {
  const response = await fetch(`${daemon.api}/processes/run`, {
    method: 'POST',
    headers: { ...daemon.headers, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(response.status, 200, `run answered ${response.status}: ${await response.clone().text()}`);
  const frames: RunFrame[] = [];
  for await (const message of readSse(response)) frames.push(JSON.parse(message.data) as RunFrame);
  return frames;
}

/** A process's cgroup directory in a v1 hierarchy, from /proc/<pid>/cgroup. */
function v1Cgroup(pid: number, controller: string): string | undefined {
  const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .split('\n')
    .find((entry) => entry.split(':')[1]?.split(',').includes(controller));
  if (!line) return undefined;
  const path = line.split(':').slice(2).join(':');
  // The daemon's own memory cgroup is below the hierarchy's root here: /proc shows the whole path.
  return join(`/sys/fs/cgroup/${controller}`, path);
}

/** Every sandboxd-* cgroup folder a daemon with this pid made, in any hierarchy. */
async function leftovers(daemonPid: number): Promise<string[]> {
  const found: string[] = [];
  const walk = async (directory: string, depth: number): Promise<void> => {
    const entries = await readdir(directory, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      const path = join(directory, entry.name);
      if (entry.name.startsWith('sandboxd-') && entry.name.endsWith(`-${daemonPid}`)) found.push(path);
      else if (depth > 0) await walk(path, depth - 1);
    }
  };
  await walk('/sys/fs/cgroup', 3);
  return found;
}

// auto: cells in cgroup v2, limits in v1; cgroup1: cells in the v1 freezer, limits beside them.
for (const mode of ['auto', 'cgroup1'] as const)
  describe(`limits, usage and OOM kills (containment ${mode})`, { skip: needsCgroups }, () => {
    let api: ReturnType<typeof restClient>;
    const daemon = useDaemon({
      args: ['--containment', mode],
      afterStart: (started) => {
        api = restClient(started);
      },
      stop: async (started) => {
        const pid = started.child.pid as number;
        await started.stop();
        assert.deepEqual(await leftovers(pid), [], 'the daemon removed every cgroup it made');
      },
    });

    test('512 MiB under a 64 MiB limit ends oom_killed, in ProcessInfo, in the run frame and to envd as a kill', async () => {
      const hog = { ...node('Buffer.alloc(512 * 1024 * 1024, 1)'), limits: { memory_mb: 64 } };
      const { pid } = await api.start(hog);
      const ended = await api.waitForEnd(pid);
      assert.equal(ended.status, 'oom_killed');
      assert.equal(ended.oom_killed, true);
      assert.equal(ended.signal, 9);
      assert.equal(ended.exit_code, null);
      assert.equal(ended.usage, undefined, 'no usage once it has ended');

      const frames = await run(daemon, hog);
      assert.deepEqual(frames.at(-1), { signal: 9, oom_killed: true });

      // envd has no word for it: the end reads as Go's for a SIGKILL.
      const seen = await collect(
        processClient(daemon).connect({ process: { selector: { case: 'pid', value: pid } } }),
      );
      assert.deepEqual(seen.end, {
        exitCode: -1,
        exited: false,
        status: 'signal: killed',
        error: 'signal: killed',
      });
    });

    test('a SIGKILL by hand under a memory limit is signaled, not oom_killed', async () => {
      const { pid } = await api.start({ command: 'sleep', args: ['1000'], limits: { memory_mb: 64 } });
      const signalled = await api.call('POST', `/processes/${pid}/signal`, { signal: 9 });
      assert.equal(signalled.status, 200);
      const ended = await api.waitForEnd(pid);
      assert.equal(ended.status, 'signaled');
      assert.equal(ended.oom_killed, false);
      assert.equal(ended.signal, 9);
      const frames = await run(daemon, {
        command: 'sh',
        args: ['-c', 'kill -9 $$'],
        limits: { memory_mb: 64 },
      });
      assert.deepEqual(frames.at(-1), { signal: 9 });
    });

    test('usage of a process holding 96 MiB', async () => {
      const holder = node(
        "const b = Buffer.alloc(96 * 1024 * 1024, 1); console.log('held', b.length); setInterval(() => {}, 1e9)",
      );
      const { pid } = await api.start({ ...holder, limits: { memory_mb: 256, cpus: 1, pids: 64 } });
      try {
        const { lines } = await api.follow(pid, { stopAfter: 1 });
        assert.equal(lines[0]?.line, `held ${96 * MiB}`);
        const info = await api.get(pid);
        const usage = info.usage;
        assert.ok(usage, 'usage while it runs');
        assert.ok((usage.memory_bytes ?? 0) >= 90 * MiB, `memory_bytes ${usage.memory_bytes}`);
        assert.ok(
          (usage.memory_peak_bytes ?? 0) >= (usage.memory_bytes ?? 0),
          `peak ${usage.memory_peak_bytes}`,
        );
        assert.ok((usage.cpu_usec ?? 0) > 0, `cpu_usec ${usage.cpu_usec}`);
        // Node's threads count too.
        assert.ok((usage.pids ?? 0) >= 1 && (usage.pids ?? 0) <= 64, `pids ${usage.pids}`);
        console.log(
          `usage of a 96 MiB holder: ${JSON.stringify(usage)} (memory ${(usage.memory_bytes ?? 0) / MiB} MiB)`,
        );
        // The list leaves it out: it would read files for every process.
        const list = (await api.call('GET', '/processes')).body as {
          processes: { pid: number; usage?: unknown }[];
        };
        assert.equal(list.processes.find((p) => p.pid === pid)?.usage, undefined);
        // The limits are in the process's own cgroups, named as its cell in every hierarchy.
        const memory = v1Cgroup(pid, 'memory') as string;
        assert.match(memory, /\/sandboxd-\d+-\d+\/\d+$/);
        assert.equal(
          (await readFile(join(memory, 'memory.limit_in_bytes'), 'utf8')).trim(),
          String(256 * MiB),
        );
        const cpu = v1Cgroup(pid, 'cpu') as string;
        assert.equal((await readFile(join(cpu, 'cpu.cfs_quota_us'), 'utf8')).trim(), '100000');
        const pids = v1Cgroup(pid, 'pids') as string;
        assert.equal((await readFile(join(pids, 'pids.max'), 'utf8')).trim(), '64');
      } finally {
        await api.kill(pid);
      }
    });

    test('a process without limits gets no cgroup beyond its cell (no cost)', async () => {
      const { pid } = await api.start({ command: 'sleep', args: ['1000'] });
      try {
        const daemonPid = daemon.child.pid as number;
        for (const controller of ['memory', 'cpu', 'pids']) {
          assert.equal(v1Cgroup(pid, controller), v1Cgroup(daemonPid, controller), controller);
        }
      } finally {
        await api.kill(pid);
      }
    });

    test('a fork bomb under pids: 64 never passes 64, health answers throughout, and DELETE ends it all', async () => {
      // The leader forks the bomb and waits; each bomb forks two more, forever. cpus keeps the
      // machine usable meanwhile.
      const { pid } = await api.start({
        command: 'bash',
        args: ['-c', 'bomb() { bomb | bomb & }; bomb; wait'],
        limits: { pids: 64, cpus: 0.5 },
      });
      const cgroup = v1Cgroup(pid, 'pids') as string;
      assert.match(cgroup, /\/sandboxd-\d+-\d+\/\d+$/);
      const current = async () => Number((await readFile(join(cgroup, 'pids.current'), 'utf8')).trim());
      const members = async () =>
        (await readFile(join(cgroup, 'cgroup.procs'), 'utf8')).split('\n').filter((line) => line !== '')
          .length;
      try {
        await eventually(async () => (await current()) >= 60, 20_000);
        // Sample the count and probe health side by side for two seconds.
        const latencies: number[] = [];
        let most = 0;
        let failures = 0;
        const until = Date.now() + 2000;
        const probe = async () => {
          while (Date.now() < until) {
            const start = performance.now();
            const response = await fetch(`${daemon.api}/health`, { headers: daemon.headers });
            await response.text();
            if (response.status !== 200) failures++;
            latencies.push(performance.now() - start);
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
        };
        const sample = async () => {
          while (Date.now() < until) {
            most = Math.max(most, await current(), await members());
            await new Promise((resolve) => setTimeout(resolve, 5));
          }
        };
        await Promise.all([probe(), sample()]);
        latencies.sort((a, b) => a - b);
        const p95 = latencies[Math.floor(latencies.length * 0.95)] ?? Number.NaN;
        console.log(
          `fork bomb: most pids seen ${most}; health ${latencies.length} probes, p50 ${latencies[Math.floor(latencies.length / 2)]?.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms, max ${latencies.at(-1)?.toFixed(1)} ms`,
        );
        assert.equal(failures, 0, 'health answered every probe');
        assert.ok(latencies.length > 20, `${latencies.length} probes`);
        assert.ok(most <= 64, `at most 64 at once, saw ${most}`);
      } finally {
        const deleted = await api.call('DELETE', `/processes/${pid}`);
        assert.equal(deleted.status, 204);
      }
      // Every member is gone: the cgroup empties, then the daemon removes it.
      await eventually(
        async () => !existsSync(cgroup) || ((await current()) === 0 && (await members()) === 0),
        10_000,
      );
      await eventually(() => !existsSync(cgroup), 10_000);
      assert.equal(isAlive(pid), false);
    });

    test('limits out of range are refused before anything starts', async () => {
      for (const [limits, message] of [
        [{ pids: 0 }, /^limits\.pids: must be an integer from 1/],
        [{ memory_mb: -5 }, /^limits\.memory_mb: must be a positive number of MiB$/],
        [{ cpus: 0 }, /^limits\.cpus: must be a number above 0/],
        [{ cpus: 'two' }, /^limits\.cpus:/],
      ] as const) {
        const answer = await api.call('POST', '/processes', { command: 'true', limits });
        assert.equal(answer.status, 400, JSON.stringify(limits));
        const body = answer.body as { error: string; code: string };
        assert.equal(body.code, 'INVALID_REQUEST');
        assert.match(body.error, message);
      }
    });
  });

describe('limits where they cannot be held are refused, naming what is missing', () => {
  test('containment proc: no cgroups', async () => {
    const daemon = await startDaemon(['--containment', 'proc']);
    try {
      const api = restClient(daemon);
      const started = await api.call('POST', '/processes', {
        command: 'sleep',
        args: ['1000'],
        limits: { memory_mb: 64 },
      });
      assert.equal(started.status, 400);
      assert.deepEqual(started.body, {
        error:
          'limits.memory_mb: no memory controller (containment is proc (a walk of /proc), which has no cgroups)',
        code: 'INVALID_REQUEST',
      });
      const ran = await api.call('POST', '/processes/run', { command: 'true', limits: { pids: 5 } });
      assert.equal(ran.status, 400);
      assert.match(
        (ran.body as { error: string }).error,
        /^limits\.pids: no pids controller \(containment is proc/,
      );
      assert.deepEqual(
        ((await api.call('GET', '/processes')).body as { processes: unknown[] }).processes,
        [],
      );
    } finally {
      await daemon.stop();
    }
  });

  test('cgroup v2 alone, with no controllers passed on', {
    skip: !isRoot
      ? 'needs root'
      : !existsSync('/sys/fs/cgroup/unified/cgroup.controllers') && 'needs the hybrid layout',
  }, async () => {
    // As in containment.test.ts: the v2 hierarchy mounted over /sys/fs/cgroup in a mount
    // namespace of the daemon's own hides the v1 hierarchies, and its root passes nothing on.
    const daemon = await startDaemon(
      ['--containment', 'cgroup2'],
      {},
      {
        wrap: CGROUP2_ALONE,
      },
    );
    try {
      const api = restClient(daemon);
      const answer = await api.call('POST', '/processes', {
        command: 'true',
        limits: { memory_mb: 64, pids: 5 },
      });
      assert.equal(answer.status, 400);
      assert.equal(
        (answer.body as { error: string }).error,
        'limits.memory_mb: no memory controller (cgroup v2 at /sys/fs/cgroup does not pass it on ' +
          '(its cgroup.subtree_control enables none); no cgroup v1 memory hierarchy)',
      );
      // Without limits it starts as ever, and its CPU time is counted (cpu.stat is every cgroup's).
      const { pid } = await api.start({ command: 'sleep', args: ['1000'] });
      const info = await api.get(pid);
      assert.equal(typeof info.usage?.cpu_usec, 'number');
      assert.equal(info.usage?.memory_bytes, undefined);
      await api.kill(pid);
    } finally {
      await daemon.stop();
    }
  });
});

describe("the daemon's oom_score_adj", { skip: !isRoot && 'needs root' }, () => {
  // Started at 500 (raising needs no privilege), so that a child that kept the daemon's score
  // would show it whether or not the daemon may lower its own.
  const daemon = useDaemon(
    [],
    {},
    { wrap: ['sh', '-c', 'echo 500 > /proc/self/oom_score_adj && exec "$@"', 'sh'] },
  );
  const score = (pid: number) => readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim();

  test('is lowered', {
    skip: !hasSysResource && 'needs CAP_SYS_RESOURCE, which this machine does not grant',
  }, () => {
    assert.equal(score(daemon.child.pid as number), '-1000');
    assert.match(daemon.output(), /; the OOM killer spares the daemon \(oom_score_adj -1000\)\n/);
  });

  test('without CAP_SYS_RESOURCE: the start-up line says so, and the daemon goes on', {
    skip: hasSysResource ? 'CAP_SYS_RESOURCE is granted here' : false,
  }, () => {
    assert.equal(score(daemon.child.pid as number), '500');
    const lines = daemon
      .output()
      .split('\n')
      .filter((line) => line.includes('oom_score_adj'));
    assert.equal(lines.length, 1);
    assert.match(
      lines[0] as string,
      /^sandboxd: descendants tracked by .*; oom_score_adj left at 500 \(lowering it takes CAP_SYS_RESOURCE: EACCES\)$/,
    );
  });

  test('children start at 0, through posix_spawn and through Node (a user named)', async () => {
    const api = restClient(daemon);
    for (const body of [
      { command: 'sleep', args: ['1000'] },
      { command: 'sleep', args: ['1000'], user: 'root' },
      { command: 'sleep', args: ['1000'], limits: { memory_mb: 64 } },
    ]) {
      const { pid } = await api.start(body);
      try {
        assert.equal(score(pid), '0', JSON.stringify(body));
      } finally {
        await api.kill(pid);
      }
    }
  });
});
