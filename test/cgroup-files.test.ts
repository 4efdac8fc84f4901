import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type CgroupWrite,
  enableControllers,
  limitWrites,
  openCgroupFiles,
  readControllers,
  readV1OomKills,
  readV1Usage,
  readV2OomKills,
  readV2Usage,
  writeCgroupFiles,
  writeOpened,
} from '../src/core/containment/cgroup-files.ts';
import { type LimitSources, planLimits, refuseLimits } from '../src/core/containment/limit-plan.ts';
import type { Usage } from '../src/core/containment/types.ts';
import { SandboxError } from '../src/core/errors.ts';
import { type Limits, normaliseLimits } from '../src/core/start-request.ts';

// The cgroup files the daemon writes and reads, tried on trees of plain files laid out as the
// kernel's (a real hierarchy would need root and the controllers delegated; this machine's v2 has
// none): what goes into which file, what is read from which, and what a missing file means.

const MiB = 1024 * 1024;
let root: string;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'sandboxd-cgroup-files-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A directory with these files (name → content), as a cgroup of that layout has them. */
async function cgroup(name: string, files: Record<string, string>): Promise<string> {
  const directory = join(root, name);
  await mkdir(directory, { recursive: true });
  for (const [file, content] of Object.entries(files)) await writeFile(join(directory, file), content);
  return directory;
}

async function contents(directory: string, files: string[]): Promise<Record<string, string>> {
  const read: Record<string, string> = {};
  for (const file of files)
    read[file] = await readFile(join(directory, file), 'utf8').catch(() => '(absent)');
  return read;
}

describe('limit writes: which file gets what, before or after the spawn', () => {
  const all: Limits = { memoryBytes: 64 * MiB, cpus: 0.5, pids: 64 };
  const cases: {
    name: string;
    version: 1 | 2;
    controller: 'memory' | 'cpu' | 'cpuacct' | 'pids';
    limits: Limits;
    before: CgroupWrite[];
    after: CgroupWrite[];
  }[] = [
    {
      name: 'v2 memory: memory.max, and swap off where swap is counted',
      version: 2,
      controller: 'memory',
      limits: all,
      before: [
        { file: 'memory.max', value: String(64 * MiB) },
        { file: 'memory.swap.max', value: '0', ifPresent: true },
      ],
      after: [],
    },
    {
      name: 'v1 memory: limit_in_bytes, then memsw (never below it) where present',
      version: 1,
      controller: 'memory',
      limits: all,
      before: [
        { file: 'memory.limit_in_bytes', value: String(64 * MiB) },
        { file: 'memory.memsw.limit_in_bytes', value: String(64 * MiB), ifPresent: true },
      ],
      after: [],
    },
    {
      name: 'v2 cpu: "quota period" after the spawn',
      version: 2,
      controller: 'cpu',
      limits: all,
      before: [],
      after: [{ file: 'cpu.max', value: '50000 100000' }],
    },
    {
      name: 'v1 cpu: the period before, the quota after',
      version: 1,
      controller: 'cpu',
      limits: { cpus: 2 },
      before: [{ file: 'cpu.cfs_period_us', value: '100000' }],
      after: [{ file: 'cpu.cfs_quota_us', value: '200000' }],
    },
    {
      name: 'a quota below the kernel minimum is raised to 1 ms',
      version: 2,
      controller: 'cpu',
      limits: { cpus: 0.001 },
      before: [],
      after: [{ file: 'cpu.max', value: '1000 100000' }],
    },
    {
      name: 'v2 pids: pids.max after the spawn',
      version: 2,
      controller: 'pids',
      limits: all,
      before: [],
      after: [{ file: 'pids.max', value: '64' }],
    },
    {
      name: 'v1 pids: the same file',
      version: 1,
      controller: 'pids',
      limits: { pids: 1 },
      before: [],
      after: [{ file: 'pids.max', value: '1' }],
    },
    {
      name: 'cpuacct only counts: nothing to write',
      version: 1,
      controller: 'cpuacct',
      limits: all,
      before: [],
      after: [],
    },
    {
      name: 'a controller whose limit was not asked for: nothing (it only counts)',
      version: 1,
      controller: 'memory',
      limits: { pids: 3 },
      before: [],
      after: [],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(limitWrites(c.version, c.controller, c.limits), {
        beforeSpawn: c.before,
        afterSpawn: c.after,
      });
    });
  }
});

describe('writing into a cgroup tree', () => {
  test('v2 with swap counted: memory.max and memory.swap.max, then cpu.max and pids.max when opened ahead', async () => {
    const directory = await cgroup('v2-swap', {
      'memory.max': 'max\n',
      'memory.swap.max': 'max\n',
      // The kernel takes each write whole; a plain file is written over from its start.
      'cpu.max': '',
      'pids.max': '',
    });
    const limits: Limits = { memoryBytes: 64 * MiB, cpus: 1.5, pids: 64 };
    const opened = [];
    for (const controller of ['memory', 'cpu', 'pids'] as const) {
      const { beforeSpawn, afterSpawn } = limitWrites(2, controller, limits);
      await writeCgroupFiles(directory, beforeSpawn);
      opened.push(...(await openCgroupFiles(directory, afterSpawn)));
    }
    // Opening does not write: the limits that wait for the spawn are not there yet.
    assert.deepEqual(await contents(directory, ['cpu.max', 'pids.max']), { 'cpu.max': '', 'pids.max': '' });
    writeOpened(opened);
    await Promise.all(opened.map(({ handle }) => handle.close()));
    assert.deepEqual(await contents(directory, ['memory.max', 'memory.swap.max', 'cpu.max', 'pids.max']), {
      'memory.max': String(64 * MiB),
      'memory.swap.max': '0',
      'cpu.max': '150000 100000',
      'pids.max': '64',
    });
  });

  test('a file offered only with swap accounting is skipped where absent, and never made', async () => {
    const v2 = await cgroup('v2-noswap', { 'memory.max': 'max\n' });
    await writeCgroupFiles(v2, limitWrites(2, 'memory', { memoryBytes: MiB }).beforeSpawn);
    assert.deepEqual(await contents(v2, ['memory.max', 'memory.swap.max']), {
      'memory.max': String(MiB),
      'memory.swap.max': '(absent)',
    });
    const v1 = await cgroup('v1-memory-noswap', { 'memory.limit_in_bytes': '9223372036854771712\n' });
    await writeCgroupFiles(v1, limitWrites(1, 'memory', { memoryBytes: 2 * MiB }).beforeSpawn);
    assert.deepEqual(await contents(v1, ['memory.limit_in_bytes', 'memory.memsw.limit_in_bytes']), {
      'memory.limit_in_bytes': String(2 * MiB),
      'memory.memsw.limit_in_bytes': '(absent)',
    });
  });

  test('v1 with memsw, cpu and pids in hierarchies of their own', async () => {
    const memory = await cgroup('v1-memory', {
      'memory.limit_in_bytes': '9223372036854771712\n',
      'memory.memsw.limit_in_bytes': '9223372036854771712\n',
    });
    const cpu = await cgroup('v1-cpu', { 'cpu.cfs_period_us': '100000\n', 'cpu.cfs_quota_us': '' });
    const pids = await cgroup('v1-pids', { 'pids.max': '' });
    const limits: Limits = { memoryBytes: 64 * MiB, cpus: 0.25, pids: 10 };
    const opened = [];
    for (const [directory, controller] of [
      [memory, 'memory'],
      [cpu, 'cpu'],
      [pids, 'pids'],
    ] as const) {
      const { beforeSpawn, afterSpawn } = limitWrites(1, controller, limits);
      await writeCgroupFiles(directory, beforeSpawn);
      opened.push(...(await openCgroupFiles(directory, afterSpawn)));
    }
    writeOpened(opened);
    await Promise.all(opened.map(({ handle }) => handle.close()));
    assert.deepEqual(await contents(memory, ['memory.limit_in_bytes', 'memory.memsw.limit_in_bytes']), {
      'memory.limit_in_bytes': String(64 * MiB),
      'memory.memsw.limit_in_bytes': String(64 * MiB),
    });
    assert.deepEqual(await contents(cpu, ['cpu.cfs_period_us', 'cpu.cfs_quota_us']), {
      'cpu.cfs_period_us': '100000',
      'cpu.cfs_quota_us': '25000',
    });
    assert.equal((await contents(pids, ['pids.max']))['pids.max'], '10');
  });

  test('a limit file the kernel does not offer (no such controller) fails, it is not made', async () => {
    const directory = await cgroup('v2-no-controllers', { 'cpu.stat': 'usage_usec 0\n' });
    await assert.rejects(
      writeCgroupFiles(directory, limitWrites(2, 'memory', { memoryBytes: MiB }).beforeSpawn),
      { code: 'ENOENT' },
    );
    await assert.rejects(openCgroupFiles(directory, limitWrites(2, 'pids', { pids: 5 }).afterSpawn), {
      code: 'ENOENT',
    });
    assert.equal((await contents(directory, ['memory.max']))['memory.max'], '(absent)');
  });
});

describe('reading a cgroup tree', () => {
  const v2Cases: {
    name: string;
    files: Record<string, string>;
    usage: Usage;
    oomKills: number | undefined;
  }[] = [
    {
      name: 'v2 with memory and pids enabled',
      files: {
        'memory.current': '100663296\n',
        'memory.peak': '104857600\n',
        'cpu.stat': 'usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n',
        'pids.current': '3\n',
        'memory.events': 'low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n',
      },
      usage: { memoryBytes: 100663296, memoryPeakBytes: 104857600, cpuUsec: 123456, pids: 3 },
      oomKills: 1,
    },
    {
      name: 'v2 before Linux 5.19: no memory.peak',
      files: {
        'memory.current': '4096\n',
        'cpu.stat': 'usage_usec 7\n',
        'pids.current': '1\n',
        'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n',
      },
      usage: { memoryBytes: 4096, cpuUsec: 7, pids: 1 },
      oomKills: 0,
    },
    {
      name: 'v2 with no controller passed on (this machine): CPU time alone, no OOM count',
      files: { 'cpu.stat': 'usage_usec 42\nuser_usec 40\nsystem_usec 2\nnr_periods 0\n' },
      usage: { cpuUsec: 42 },
      oomKills: undefined,
    },
  ];
  for (const c of v2Cases) {
    test(c.name, async () => {
      const directory = await cgroup(`read-${c.name.replace(/\W+/g, '-')}`, c.files);
      assert.deepEqual(await readV2Usage(directory), c.usage);
      assert.equal(await readV2OomKills(directory), c.oomKills);
    });
  }

  test('v1: memory, cpuacct (ns to µs) and pids from their own hierarchies; a missing one left out', async () => {
    const memory = await cgroup('v1-read-memory', {
      'memory.usage_in_bytes': '101711872\n',
      'memory.max_usage_in_bytes': '104857600\n',
      'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n',
    });
    const cpuacct = await cgroup('v1-read-cpuacct', { 'cpuacct.usage': '5000999\n' });
    const pids = await cgroup('v1-read-pids', { 'pids.current': '64\n' });
    assert.deepEqual(await readV1Usage({ memory, cpuacct, pids }), {
      memoryBytes: 101711872,
      memoryPeakBytes: 104857600,
      cpuUsec: 5000,
      pids: 64,
    });
    assert.deepEqual(await readV1Usage({ memory }), { memoryBytes: 101711872, memoryPeakBytes: 104857600 });
    assert.deepEqual(await readV1Usage({}), {});
    assert.equal(await readV1OomKills(memory), 2);
  });

  test('v1 before Linux 4.13 has no oom_kill line: unknown, not zero', async () => {
    const old = await cgroup('v1-old-memory', { 'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\n' });
    assert.equal(await readV1OomKills(old), undefined);
    assert.equal(await readV1OomKills(join(root, 'nowhere')), undefined);
  });

  test('cgroup.controllers and cgroup.subtree_control', async () => {
    const directory = await cgroup('v2-controllers', {
      'cgroup.controllers': 'cpuset cpu io memory hugetlb pids rdma misc\n',
      'cgroup.subtree_control': '\n',
    });
    assert.deepEqual(
      [...(await readControllers(directory))],
      ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma', 'misc'],
    );
    assert.deepEqual([...(await readControllers(directory, 'cgroup.subtree_control'))], []);
    assert.deepEqual(await enableControllers(directory, ['memory']), new Map());
    assert.equal(
      (await contents(directory, ['cgroup.subtree_control']))['cgroup.subtree_control'],
      '+memory',
    );
    // Where the file is missing (not a cgroup v2 directory), each refusal says why.
    assert.deepEqual(
      await enableControllers(join(root, 'nowhere'), ['memory', 'pids']),
      new Map([
        ['memory', 'ENOENT'],
        ['pids', 'ENOENT'],
      ]),
    );
  });
});

describe('which cgroups hold the limits, or why they cannot', () => {
  const hybrid: LimitSources = {
    cell: { version: 2, controllers: new Set(['cpuacct']) },
    cellLacks: () =>
      'cgroup v2 at /sys/fs/cgroup/unified does not pass it on (its cgroup.subtree_control enables none)',
    v1: new Map([
      ['memory', '/sys/fs/cgroup/memory'],
      ['cpu', '/sys/fs/cgroup/cpu,cpuacct'],
      ['cpuacct', '/sys/fs/cgroup/cpu,cpuacct'],
      ['pids', '/sys/fs/cgroup/pids'],
    ]),
  };
  const v2Full: LimitSources = {
    cell: { version: 2, controllers: new Set(['memory', 'cpu', 'pids', 'cpuacct']) },
    cellLacks: () => 'unused',
    v1: new Map(),
  };
  const v2Only: LimitSources = { ...hybrid, v1: new Map() };
  const freezerOnly: LimitSources = {
    cell: { version: 1, controllers: new Set() },
    cellLacks: () => 'cells are in the cgroup v1 freezer hierarchy at /sys/fs/cgroup/freezer, which has none',
    v1: new Map([['pids', '/sys/fs/cgroup/pids']]),
  };
  const cases: { name: string; limits: Limits; sources: LimitSources; plan?: unknown; error?: string }[] = [
    {
      name: 'v2 with the controllers passed on: all in the cell',
      limits: { memoryBytes: MiB, cpus: 1, pids: 5 },
      sources: v2Full,
      plan: { cell: ['memory', 'cpu', 'pids', 'cpuacct'], v1: [] },
    },
    {
      name: "hybrid: v1 hierarchies for the limits; CPU time is counted by the v2 cell's cpu.stat",
      limits: { memoryBytes: MiB, cpus: 1, pids: 5 },
      sources: hybrid,
      plan: {
        cell: ['cpuacct'],
        v1: [
          { mountPoint: '/sys/fs/cgroup/memory', controllers: ['memory'] },
          { mountPoint: '/sys/fs/cgroup/cpu,cpuacct', controllers: ['cpu'] },
          { mountPoint: '/sys/fs/cgroup/pids', controllers: ['pids'] },
        ],
      },
    },
    {
      name: 'freezer cells: cpu and cpuacct mounted together share one cgroup',
      limits: { cpus: 1 },
      sources: { ...hybrid, cell: { version: 1, controllers: new Set() } },
      plan: {
        cell: [],
        v1: [
          { mountPoint: '/sys/fs/cgroup/memory', controllers: ['memory'] },
          { mountPoint: '/sys/fs/cgroup/cpu,cpuacct', controllers: ['cpu', 'cpuacct'] },
          { mountPoint: '/sys/fs/cgroup/pids', controllers: ['pids'] },
        ],
      },
    },
    {
      name: 'hybrid, pids alone: memory is still counted (usage, OOM), cpu is not needed',
      limits: { pids: 5 },
      sources: hybrid,
      plan: {
        cell: ['cpuacct'],
        v1: [
          { mountPoint: '/sys/fs/cgroup/memory', controllers: ['memory'] },
          { mountPoint: '/sys/fs/cgroup/pids', controllers: ['pids'] },
        ],
      },
    },
    {
      name: 'v2 alone, no controllers: refused, naming what is missing where',
      limits: { memoryBytes: MiB },
      sources: v2Only,
      error:
        'limits.memory_mb: no memory controller (cgroup v2 at /sys/fs/cgroup/unified does not pass it on ' +
        '(its cgroup.subtree_control enables none); no cgroup v1 memory hierarchy)',
    },
    {
      name: 'freezer, pids hierarchy only: a CPU limit is refused',
      limits: { pids: 5, cpus: 0.5 },
      sources: freezerOnly,
      error:
        'limits.cpus: no cpu controller (cells are in the cgroup v1 freezer hierarchy at /sys/fs/cgroup/freezer, ' +
        'which has none; no cgroup v1 cpu hierarchy)',
    },
    {
      name: 'freezer, pids hierarchy only: a pids limit is held there',
      limits: { pids: 5 },
      sources: freezerOnly,
      plan: { cell: [], v1: [{ mountPoint: '/sys/fs/cgroup/pids', controllers: ['pids'] }] },
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      if (c.error === undefined) assert.deepEqual(planLimits(c.limits, c.sources), c.plan);
      else
        assert.throws(
          () => planLimits(c.limits, c.sources),
          (error) =>
            error instanceof SandboxError && error.kind === 'invalid_argument' && error.message === c.error,
        );
    });
  }

  test('no cgroups at all (containment proc): the first limit asked for is named', () => {
    assert.throws(() => refuseLimits({ cpus: 1, pids: 2 }, 'containment is proc'), {
      message: 'limits.cpus: no cpu controller (containment is proc)',
    });
  });
});

describe('limits as asked for, normalised', () => {
  const cases: { given: Parameters<typeof normaliseLimits>[0]; limits?: Limits; error?: RegExp }[] = [
    { given: undefined, limits: undefined },
    { given: {}, limits: undefined },
    { given: { memoryMb: 64 }, limits: { memoryBytes: 64 * MiB } },
    { given: { memoryMb: 0.5, cpus: 0.5, pids: 1 }, limits: { memoryBytes: MiB / 2, cpus: 0.5, pids: 1 } },
    { given: { memoryMb: 0 }, error: /^limits\.memory_mb: must be a positive number of MiB$/ },
    { given: { memoryMb: -1 }, error: /^limits\.memory_mb:/ },
    { given: { memoryMb: Number.NaN }, error: /^limits\.memory_mb:/ },
    { given: { cpus: 0 }, error: /^limits\.cpus: must be a number above 0/ },
    { given: { cpus: 1e6 }, error: /^limits\.cpus:/ },
    { given: { pids: 0 }, error: /^limits\.pids: must be an integer from 1/ },
    { given: { pids: 1.5 }, error: /^limits\.pids:/ },
  ];
  for (const c of cases) {
    test(JSON.stringify(c.given) ?? 'undefined', () => {
      if (c.error) assert.throws(() => normaliseLimits(c.given), { name: 'SandboxError', message: c.error });
      else assert.deepEqual(normaliseLimits(c.given), c.limits);
    });
  }
});
