import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { SandboxError } from '../src/core/errors.ts';
import type { ExitStatus } from '../src/core/process.ts';
import {
  ProcessTable,
  type SpillPlace,
  type TableOptions,
  type TableProcess,
} from '../src/core/process-table.ts';
import type { ProcessSpec } from '../src/core/start-request.ts';
import { Accounts } from '../src/core/users.ts';

// The table's own rules (names, pids, retention, the spill quota, supervision) over stand-in
// processes that end when a test says so: no process is started, each test runs in milliseconds.

let nextPid = 1000;

class StandIn implements TableProcess {
  running = true;
  readonly exited: Promise<ExitStatus>;
  readonly done: Promise<void>;
  readonly log = {
    closed: false,
    diskBytes: 0,
    released: false,
    shedBytes: 0,
    // As the output log does, what leaves the disk is reported.
    release: async () => {
      this.log.released = true;
      this.write(-this.log.diskBytes);
    },
    shed: (bytes: number) => {
      const dropped = Math.min(bytes, this.log.diskBytes);
      this.write(-dropped);
      this.log.shedBytes += dropped;
      return dropped;
    },
  };
  deadlineMs: number | undefined;
  readonly signals: number[] = [];
  private end!: (exit: ExitStatus) => void;

  constructor(
    readonly spec: ProcessSpec,
    readonly spill: SpillPlace,
    readonly pid = nextPid++,
  ) {
    this.exited = new Promise((resolve) => {
      this.end = resolve;
    });
    this.done = this.exited.then(() => {
      this.log.closed = true;
    });
  }

  finish(exitCode = 0): void {
    if (!this.running) return;
    this.running = false;
    this.end({ status: 'exited', exitCode, signal: null, oomKilled: false });
  }

  /** The spill files grow (or shrink) by this much. */
  write(bytes: number): void {
    this.log.diskBytes += bytes;
    this.spill.diskUse(bytes);
  }

  async kill(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.end({ status: 'signaled', exitCode: null, signal: 9, oomKilled: false });
  }

  /** Any signal ends a stand-in, as it would a process that does not handle it. */
  sendSignal(signal: number): void {
    this.signals.push(signal);
    if (!this.running) return;
    this.running = false;
    this.end({ status: 'signaled', exitCode: null, signal, oomKilled: false });
  }

  setDeadline(ms: number): void {
    this.deadlineMs = ms;
  }
}

/** A table over stand-ins; `spawned` hears of each start, `pids` hands out chosen pids first. */
function standInTable(options: Partial<TableOptions<StandIn>> = {}, pids: number[] = []) {
  const spawned = new EventEmitter();
  const started: StandIn[] = [];
  const calls: string[] = [];
  const table = new ProcessTable<StandIn>({
    dataDir,
    baseEnv: {},
    accounts: new Accounts(),
    containment: {
      signalAll: async (signal) => {
        calls.push(`signalAll ${signal}`);
      },
      killAll: async () => {
        calls.push('killAll');
        for (const entry of started) await entry.kill();
      },
    },
    maxFinished: 100,
    managedHistory: 10,
    maxSpillBytes: 1 << 30,
    spawn: async (spec, spill) => {
      const entry = new StandIn(spec, spill, pids.shift());
      // `true` and `false` (health checks) end at once, as they would.
      if (spec.command === 'true' || spec.command === 'false') {
        queueMicrotask(() => entry.finish(spec.command === 'true' ? 0 : 1));
        return entry;
      }
      started.push(entry);
      spawned.emit('spawn', entry);
      return entry;
    },
    ...options,
  });
  const nextSpawn = async () => (await once(spawned, 'spawn'))[0] as StandIn;
  return { table, started, calls, nextSpawn };
}

const code = (kind: string) => (error: unknown) => (error as SandboxError).kind === kind;

let dataDir: string;
before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'table-test-'));
});
after(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

describe('process table: names and pids', () => {
  test('by pid, as a number or digits, and by name; not_found says which', async () => {
    const { table } = standInTable();
    const web = await table.start({ command: 'web', name: 'web 1' });
    assert.equal(table.get(web.pid), web);
    assert.equal(table.get(String(web.pid)), web);
    assert.equal(table.get('web 1'), web);
    assert.throws(() => table.get(1), { message: 'process with pid 1 not found' });
    assert.throws(() => table.get('db'), { message: "process with name 'db' not found" });
    await web.kill();
  });

  test('a name that breaks the rule is invalid_argument, before anything starts', async () => {
    const { table, started } = standInTable();
    for (const name of ['123', 'a/b', '', 'x\ny']) {
      await assert.rejects(table.start({ command: 'x', name }), code('invalid_argument'));
    }
    assert.equal(started.length, 0);
  });

  test('an envd tag keeps its own rule: all digits is a name, found by name only', async () => {
    const { table } = standInTable();
    const tagged = await table.start({ command: 'x', name: '123', nameKind: 'tag' });
    assert.equal(table.named('123'), tagged);
    assert.equal(table.find('123'), undefined); // Digits address a pid.
    await tagged.kill();
  });

  test('two starts of one name at once: the second is name_taken', async () => {
    const { table } = standInTable();
    const [first, second] = await Promise.allSettled([
      table.start({ command: 'x', name: 'db' }),
      table.start({ command: 'x', name: 'db' }),
    ]);
    assert.equal(first.status, 'fulfilled');
    assert.equal(second.status, 'rejected');
    assert.ok(code('name_taken')(second.reason));
    if (first.status === 'fulfilled') await table.kill(first.value);
  });

  test('a name passes on once its holder ended and nothing will restart it', async () => {
    const { table } = standInTable();
    const first = await table.start({ command: 'x', name: 'job' });
    await assert.rejects(table.start({ command: 'x', name: 'job' }), code('name_taken'));
    first.finish(0);
    await first.done;
    const second = await table.start({ command: 'x', name: 'job' });
    assert.equal(table.get('job'), second);
    assert.equal(table.get(first.pid), first); // Still listed by pid.
    await table.kill(second);
  });

  test('a name is held while its process backs off before a restart', async () => {
    const { table, nextSpawn } = standInTable();
    const first = await table.start({
      command: 'x',
      name: 'flaky',
      restart: { policy: 'always', initialBackoffMs: 60_000 },
    });
    first.finish(1);
    await first.exited;
    assert.equal(table.managedState(first)?.status, 'backing_off');
    await assert.rejects(table.start({ command: 'x', name: 'flaky' }), code('name_taken'));
    const restarted = nextSpawn();
    await table.restart(first);
    await table.kill(await restarted);
  });

  test('a pid the kernel hands out again replaces the finished process that had it', async () => {
    const { table } = standInTable({}, [4242, 4242]);
    const old = await table.start({ command: 'x' });
    old.finish(0);
    await old.done;
    const reused = await table.start({ command: 'y' });
    assert.equal(table.get(4242), reused);
    assert.equal(old.log.released, true);
    assert.equal(table.list().length, 1);
    await reused.kill();
  });

  test('a deadline is handed to the process', async () => {
    const { table } = standInTable();
    const timed = await table.start({ command: 'x', deadlineMs: 1500 });
    assert.equal(timed.deadlineMs, 1500);
    await timed.kill();
  });
});

describe('process table: retention and the spill quota', () => {
  test('finished processes past maxFinished are forgotten, oldest first, their logs released', async () => {
    const { table } = standInTable({ maxFinished: 2 });
    const all = [];
    for (let i = 0; i < 4; i++) all.push(await table.start({ command: `p${i}` }));
    for (const entry of all) {
      entry.finish(0);
      await entry.done;
    }
    assert.deepEqual(
      table.list().map((p) => p.spec.command),
      ['p2', 'p3'],
    );
    assert.deepEqual(
      all.map((p) => p.log.released),
      [true, true, false, false],
    );
  });

  test('past the spill cap, finished processes go first, then running ones shed their oldest output', async () => {
    const { table } = standInTable({ maxSpillBytes: 1000 });
    const finished = await table.start({ command: 'old' });
    const live = await table.start({ command: 'live' });
    finished.write(600);
    finished.finish(0);
    await finished.done;
    live.write(300);
    assert.equal(table.list().length, 2);
    live.write(500); // 1400 in all: the finished one's 600 goes, and that is enough.
    await Promise.resolve(); // The trim runs once per turn of the event loop.
    assert.deepEqual(
      table.list().map((p) => p.spec.command),
      ['live'],
    );
    assert.equal(live.log.shedBytes, 0);
    live.write(400); // 1200 of its own: it drops its oldest 200.
    await Promise.resolve();
    assert.equal(live.log.shedBytes, 200);
    await live.kill();
  });
});

describe('process table: supervision', () => {
  // Backoff timers are unref'd (in the daemon, the server keeps the loop alive): this stands in.
  let keepAlive: NodeJS.Timeout;
  before(() => {
    keepAlive = setInterval(() => {}, 60_000);
  });
  after(() => clearInterval(keepAlive));

  test('restarts with doubling backoff up to max_restarts, then stops and frees the name', async () => {
    const { table, started, nextSpawn } = standInTable();
    const first = await table.start({
      command: 'x',
      name: 'crashy',
      restart: { policy: 'on_failure', maxRestarts: 2, initialBackoffMs: 5, maxBackoffMs: 50 },
    });
    let current = first;
    for (let restart = 1; restart <= 2; restart++) {
      const next = nextSpawn();
      current.finish(3);
      current = await next;
      assert.equal(table.managedState(current)?.restartCount, restart);
    }
    current.finish(3);
    await current.exited;
    const state = table.managedState(current);
    assert.equal(state?.status, 'stopped');
    assert.equal(started.length, 3);
    const fresh = await table.start({ command: 'x', name: 'crashy' });
    await table.kill(fresh);
  });

  test('on_failure does not restart a clean exit; always does', async () => {
    const { table, started, nextSpawn } = standInTable();
    const clean = await table.start({ command: 'x', restart: { policy: 'on_failure', initialBackoffMs: 1 } });
    clean.finish(0);
    await clean.exited;
    assert.equal(table.managedState(clean)?.status, 'stopped');
    const always = await table.start({ command: 'y', restart: { policy: 'always', initialBackoffMs: 1 } });
    const next = nextSpawn();
    always.finish(0);
    await table.kill(await next);
    assert.equal(started.length, 3);
  });

  test('a kill stops supervision: nothing restarts', async () => {
    const { table, started } = standInTable();
    const entry = await table.start({ command: 'x', restart: { policy: 'always', initialBackoffMs: 1 } });
    await table.kill(entry);
    await entry.exited;
    assert.equal(table.managedState(entry)?.status, 'stopped');
    assert.equal(started.length, 1);
  });

  test('restart on an unmanaged process is not_managed', async () => {
    const { table } = standInTable();
    const plain = await table.start({ command: 'x' });
    await assert.rejects(table.restart(plain), code('not_managed'));
    await plain.kill();
  });
});

describe('process table: health checks', () => {
  let keepAlive: NodeJS.Timeout;
  before(() => {
    keepAlive = setInterval(() => {}, 60_000);
  });
  after(() => clearInterval(keepAlive));

  const failing = {
    type: 'exec' as const,
    command: 'false',
    initial_delay_ms: 0,
    interval_ms: 1,
    failure_threshold: 2,
  };

  test('an unhealthy incarnation gets SIGTERM and its policy restarts it; lastError names the check', async () => {
    const { table, nextSpawn } = standInTable();
    const first = await table.start({
      command: 'server',
      restart: { policy: 'on_failure', maxRestarts: 1, initialBackoffMs: 1 },
      healthCheck: failing,
    });
    const second = await nextSpawn();
    assert.deepEqual(first.signals, [15]);
    const state = table.managedState(second);
    assert.equal(state?.restartCount, 1);
    assert.equal(state?.lastError, 'health check failed 2 times in a row: exec false exited 1');
    assert.deepEqual(state?.lastExit && [state.lastExit.signal, state.lastExit.oomKilled], [15, false]);
    await table.kill(second);
  });

  test('under policy never it keeps running, marked unhealthy; a passing check makes it healthy', async () => {
    const { table } = standInTable();
    const kept = await table.start({ command: 'server', healthCheck: failing });
    // Each probe is a turn of the event loop or two: look after each turn until it turned.
    while (table.managedState(kept)?.healthStatus !== 'unhealthy') await new Promise(setImmediate);
    assert.deepEqual(kept.signals, []);
    assert.equal(kept.running, true);
    const good = await table.start({ command: 'server', healthCheck: { ...failing, command: 'true' } });
    assert.equal(await table.waitUntil(good, 'healthy', AbortSignal.timeout(5000)), good);
    assert.equal(table.managedState(good)?.status, 'running');
    await table.kill(kept);
    await table.kill(good);
  });

  test('waiting: timed_out when the signal ends it first; not_running when the state cannot come', async () => {
    const { table } = standInTable();
    const slow = await table.start({
      command: 'server',
      healthCheck: { ...failing, initial_delay_ms: 60_000 },
    });
    await assert.rejects(table.waitUntil(slow, 'healthy', AbortSignal.timeout(10)), code('timed_out'));
    await table.kill(slow);
    await assert.rejects(table.waitUntil(slow, 'healthy', AbortSignal.timeout(5000)), code('not_running'));
    const plain = await table.start({ command: 'server' });
    await assert.rejects(
      table.waitUntil(plain, 'healthy', AbortSignal.timeout(5000)),
      code('invalid_argument'),
    );
    const exited = table.waitUntil(plain, 'exited', AbortSignal.timeout(5000));
    plain.finish(3);
    assert.equal(await exited, plain);
  });
});

describe('process table: shutdown', () => {
  test('TERM to all, then KILL, then nothing starts', async () => {
    const { table, calls } = standInTable();
    const entries = [await table.start({ command: 'a' }), await table.start({ command: 'b' })];
    await table.shutdown(10);
    assert.deepEqual(calls, ['signalAll 15', 'killAll']);
    assert.ok(entries.every((entry) => !entry.running && entry.log.released));
    assert.deepEqual(table.list(), []);
    await assert.rejects(table.start({ command: 'c' }), code('not_running'));
  });
});
