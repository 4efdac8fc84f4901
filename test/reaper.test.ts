import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { restClient } from './helpers/api.ts';
import { eventually, isAlive, useDaemon } from './helpers/daemon.ts';
import { killQuietly, pidsIn } from './helpers/escapes.ts';

const isRoot = process.getuid?.() === 0;

// Each inner shell leaves a sleep behind and exits at once: the sleep is an orphan.
const orphans = (count: number, seconds: number, exitCode: number) =>
  `i=0; while [ $i -lt ${count} ]; do sh -c 'sleep ${seconds} & echo $!'; i=$((i+1)); done; exit ${exitCode}`;

describe('as PID 1 of a PID namespace', { skip: isRoot ? false : 'unshare --pid needs root' }, () => {
  let client: ReturnType<typeof restClient>;
  let daemonPid: number;
  const daemon = useDaemon({
    wrap: ['unshare', '--pid', '--fork', '--mount-proc'],
    afterStart: () => {
      client = restClient(daemon);
      // unshare forks the daemon, which is PID 1 inside and has a pid of its own out here.
      daemonPid = childrenOf(daemon.child.pid as number)[0]?.pid as number;
      assert.ok(daemonPid, 'the daemon runs under unshare');
    },
    // unshare itself ignores SIGTERM while it waits: the daemon is asked to stop, and unshare follows.
    stop: async () => {
      if (daemon.child.exitCode === null) {
        process.kill(daemonPid, 'SIGTERM');
        await once(daemon.child, 'exit');
      }
    },
  });

  test('orphans of the processes it runs are reaped: no zombies pile up', async () => {
    assert.match(daemon.output(), /orphans reaped \(pid 1\)/);
    const { pid } = await client.start({ command: 'sh', args: ['-c', orphans(100, 0.1, 7)] });
    const info = await client.waitForEnd(pid);
    // The daemon's own child keeps its exit status: the reaper took only the orphans.
    assert.equal(info.exit_code, 7);
    await eventually(() => childrenOf(daemonPid).length === 0);
  });

  test('under a stream of orphans, every process the daemon started reports its own exit', async () => {
    const [pipes, terminals] = await Promise.all([
      Promise.all(
        Array.from({ length: 30 }, async (_, i) => {
          const { pid } = await client.start({ command: 'sh', args: ['-c', orphans(3, 0.05, i)] });
          return (await client.waitForEnd(pid)).exit_code;
        }),
      ),
      Promise.all(
        Array.from({ length: 5 }, async (_, i) => {
          const created = await client.call('POST', '/pty', {
            command: 'sh',
            args: ['-c', `sh -c 'sleep 0.05 &'; exit ${40 + i}`],
          });
          const { session_id: id } = created.body as { session_id: string };
          await eventually(async () => {
            const session = (await client.call('GET', `/pty/${id}`)).body as { is_alive: boolean };
            return !session.is_alive;
          });
          return ((await client.call('GET', `/pty/${id}`)).body as { exit_code: number }).exit_code;
        }),
      ),
    ]);
    assert.deepEqual(
      pipes,
      Array.from({ length: 30 }, (_, i) => i),
    );
    assert.deepEqual(
      terminals,
      Array.from({ length: 5 }, (_, i) => 40 + i),
    );
    await eventually(() => childrenOf(daemonPid).length === 0);
  });
});

describe('as a subreaper', () => {
  let client: ReturnType<typeof restClient>;
  const daemon = useDaemon({
    afterStart: () => {
      client = restClient(daemon);
    },
  });

  test('orphans become the daemon’s children, and are reaped when they end', async () => {
    assert.match(daemon.output(), /orphans reaped \(subreaper\)/);
    const { pid } = await client.start({ command: 'sh', args: ['-c', orphans(20, 1, 3)] });
    const { lines } = await client.follow(pid);
    const left = pidsIn(lines.map((l) => l.line));
    try {
      assert.equal(left.length, 20);
      assert.equal((await client.get(pid)).exit_code, 3);
      const daemonPid = daemon.child.pid as number;
      const adopted = new Set(childrenOf(daemonPid).map((child) => child.pid));
      for (const orphan of left) {
        if (isAlive(orphan)) assert.ok(adopted.has(orphan), `orphan ${orphan} is not the daemon's child`);
      }
      await eventually(() => left.every((orphan) => !isAlive(orphan)));
      await eventually(() => childrenOf(daemonPid).length === 0);
    } finally {
      killQuietly(left);
    }
  });
});

/** The children of a process, zombies included, from /proc. */
function childrenOf(parent: number): { pid: number; state: string }[] {
  const children: { pid: number; state: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // Gone meanwhile.
    }
    const [state = '', ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(ppid) === parent) children.push({ pid: Number(name), state });
  }
  return children;
}
