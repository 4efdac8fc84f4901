import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readlinkSync, rmdirSync, writeFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { Signal } from '../src/gen/process/process_pb.ts';
import { restClient } from './helpers/api.ts';
import { CGROUP2_ALONE } from './helpers/cgroups.ts';
import { eventually, isAlive, startDaemon, type TestDaemon, useDaemon } from './helpers/daemon.ts';
import { collect, processClient, started } from './helpers/envd.ts';
import { ESCAPES, killQuietly, pidsIn } from './helpers/escapes.ts';

// Each way the daemon tracks descendants, forced, against a real daemon. The cgroup modes need
// root and the hierarchy mounted: this machine (and CI) has cgroup v1 controllers and a cgroup
// v2 hierarchy at /sys/fs/cgroup/unified; the layout most containers have (v2 alone at
// /sys/fs/cgroup) is made for the daemon in a mount namespace of its own.
const isRoot = process.getuid?.() === 0;
const hasV2 =
  existsSync('/sys/fs/cgroup/cgroup.controllers') || existsSync('/sys/fs/cgroup/unified/cgroup.controllers');
const hasFreezer =
  existsSync('/sys/fs/cgroup/freezer/freezer.state') || existsSync('/sys/fs/cgroup/freezer/tasks');
const hybrid = existsSync('/sys/fs/cgroup/unified/cgroup.controllers');

interface Mode {
  name: string;
  args: string[];
  wrap?: string[];
  /** The start-up line names the mode and where its cgroups go. */
  line: RegExp;
  /** Where the daemon's cgroup directory is, seen from here (its own mount namespace may differ). */
  outside?: (path: string) => string;
  /** Walking /proc cannot attribute an orphan that started a session of its own. */
  findsSessionOrphans: boolean;
  skip: string | false;
}

const modes: Mode[] = [
  {
    name: 'auto: cgroup v2 where it can',
    args: [],
    line: /descendants tracked by cgroup v2 at (\S+\/sandboxd-\d+-\d+);/,
    findsSessionOrphans: true,
    skip: !isRoot ? 'needs root' : !hasV2 ? 'no cgroup v2 hierarchy here' : false,
  },
  {
    name: 'cgroup v2 alone at /sys/fs/cgroup',
    args: ['--containment', 'cgroup2'],
    wrap: CGROUP2_ALONE,
    line: /descendants tracked by cgroup v2 at (\/sys\/fs\/cgroup\/sandboxd-\d+-\d+);/,
    outside: (path) => path.replace('/sys/fs/cgroup/', '/sys/fs/cgroup/unified/'),
    findsSessionOrphans: true,
    skip: !isRoot
      ? 'needs root'
      : !hybrid
        ? 'needs the hybrid layout to see the namespace from outside'
        : false,
  },
  {
    name: 'cgroup v1 freezer',
    args: ['--containment', 'cgroup1'],
    line: /descendants tracked by cgroup v1 freezer at (\S+\/sandboxd-\d+-\d+);/,
    findsSessionOrphans: true,
    skip: !isRoot ? 'needs root' : !hasFreezer ? 'no cgroup v1 freezer mounted here' : false,
  },
  {
    name: 'walking /proc',
    args: ['--containment', 'proc'],
    line: /descendants tracked by a walk of \/proc/,
    findsSessionOrphans: false,
    skip: false,
  },
];

for (const mode of modes) {
  describe(`containment, ${mode.name}`, { skip: mode.skip }, () => {
    let client: ReturnType<typeof restClient>;
    let cgroupDirectory: string | undefined;
    const daemon = useDaemon({
      args: mode.args,
      wrap: mode.wrap,
      afterStart: () => {
        client = restClient(daemon);
        const where = mode.line.exec(daemon.output())?.[1];
        cgroupDirectory = where && (mode.outside ? mode.outside(where) : where);
      },
    });

    test('the start-up line says how descendants are tracked, and orphans are reaped', () => {
      assert.match(daemon.output(), mode.line);
      assert.match(daemon.output(), /orphans reaped \(subreaper\)/);
      if (cgroupDirectory) assert.equal(existsSync(cgroupDirectory), true, cgroupDirectory);
    });

    test('DELETE ends descendants that left the group or the session while the leader runs', async () => {
      const { pid } = await client.start({ command: 'sh', args: ['-c', ESCAPES.sessionWhileRunning] });
      const escaped = pidsIn((await client.follow(pid, { stopAfter: 2 })).lines.map((l) => l.line));
      try {
        assert.equal(escaped.length, 2);
        for (const child of escaped) assert.equal(isAlive(child), true);
        assert.equal((await client.call('DELETE', `/processes/${pid}`)).status, 204);
        await eventually(() => escaped.every((child) => !isAlive(child)));
        assert.equal((await client.waitForEnd(pid)).signal, 9);
        // The cgroup goes with its last member; one made ahead for the next start stays.
        if (cgroupDirectory) await eventually(() => cells(cgroupDirectory as string) <= 1);
      } finally {
        killQuietly(escaped);
      }
    });

    test('DELETE after the leader ended still ends what it left behind', async () => {
      const { pid } = await client.start({ command: 'sh', args: ['-c', ESCAPES.sessionAfterExit] });
      const { lines } = await client.follow(pid);
      const [ownSession, shellJob] = pidsIn(lines.map((l) => l.line)) as [number, number];
      try {
        assert.equal((await client.get(pid)).exit_code, 0);
        assert.equal(isAlive(ownSession) && isAlive(shellJob), true, 'both outlive the leader');
        assert.equal((await client.call('DELETE', `/processes/${pid}`)).status, 204);
        await eventually(() => !isAlive(shellJob));
        if (mode.findsSessionOrphans) await eventually(() => !isAlive(ownSession));
        // Walking /proc: an orphan in a session of its own is no longer anyone's; shutdown ends it.
        else assert.equal(isAlive(ownSession), true);
      } finally {
        killQuietly([ownSession, shellJob]);
      }
    });

    const ways = [
      { io: 'pipes', options: { stdin: false }, stream: 'stdout' },
      { io: 'a terminal', options: { pty: { size: { cols: 80, rows: 24 } } }, stream: 'pty' },
    ] as const;
    for (const { io, options, stream } of ways) {
      test(`Connect SendSignal(SIGKILL) ends every descendant (${io})`, async () => {
        const rpc = processClient(daemon);
        const { pid, rest } = await started(
          rpc.start({ process: { cmd: 'sh', args: ['-c', ESCAPES.sessionWhileRunning] }, ...options }),
        );
        const output = await collect(rest, (seen) => seen[stream].split('\n').length > 2);
        const escaped = pidsIn(output[stream].split('\n'));
        try {
          assert.equal(escaped.length, 2);
          await rpc.sendSignal({
            process: { selector: { case: 'pid', value: pid } },
            signal: Signal.SIGKILL,
          });
          await eventually(() => escaped.every((child) => !isAlive(child)));
        } finally {
          killQuietly(escaped);
        }
      });
    }

    test('a run-and-wait timeout ends every descendant', async () => {
      const response = await fetch(`${daemon.api}/processes/run`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          command: 'sh',
          args: ['-c', 'setsid sleep 1000 & echo $!; wait'],
          timeout: 0.5,
        }),
      });
      const text = await response.text();
      const escaped = pidsIn([...text.matchAll(/"line":"(\d+)"/g)].map((match) => match[1] as string));
      try {
        assert.match(text, /"timed_out":true/);
        assert.equal(escaped.length, 1);
        await eventually(() => !isAlive(escaped[0] as number));
      } finally {
        killQuietly(escaped);
      }
    });

    test('a child forked at once, before the daemon could look, is tracked all the same', {
      skip: mode.findsSessionOrphans ? false : 'walking /proc finds such an orphan only at shutdown',
    }, async () => {
      // setsid -f forks first thing and exits; the child makes a session of its own.
      const escaped: number[] = [];
      try {
        for (let i = 0; i < 10; i++) {
          const { pid } = await client.start({
            command: 'setsid',
            args: ['-f', 'sh', '-c', 'echo $$; exec sleep 1000'],
          });
          const [child] = pidsIn((await client.follow(pid, { stopAfter: 1 })).lines.map((l) => l.line));
          escaped.push(child as number);
          await client.kill(pid);
        }
        await eventually(() => escaped.every((child) => !isAlive(child)));
      } finally {
        killQuietly(escaped);
      }
    });

    test('shutdown ends every descendant and removes what the daemon made', async () => {
      const { pid } = await client.start({ command: 'sh', args: ['-c', ESCAPES.sessionAfterExit] });
      const escaped = pidsIn((await client.follow(pid)).lines.map((l) => l.line));
      try {
        assert.equal(escaped.length, 2);
        for (const child of escaped) assert.equal(isAlive(child), true);
        assert.equal(await daemon.stop(), 0);
        await eventually(() => escaped.every((child) => !isAlive(child)));
        if (cgroupDirectory) assert.equal(existsSync(cgroupDirectory), false, `${cgroupDirectory} is left`);
      } finally {
        killQuietly(escaped);
      }
    });
  });
}

test('a daemon removes the empty cgroups a killed daemon of its namespace left, and nothing that has members', {
  skip: !isRoot ? 'needs root' : !hybrid ? 'written for the hybrid layout here' : false,
}, async () => {
  const namespace = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];
  // A pid that ran and is gone: the "killed daemon".
  const gone = spawn('true');
  await once(gone, 'exit');
  const stale = `/sys/fs/cgroup/unified/sandboxd-${namespace}-${gone.pid}`;
  const other = `/sys/fs/cgroup/unified/sandboxd-1-${gone.pid}`; // another namespace's
  const busy = `/sys/fs/cgroup/unified/sandboxd-${namespace}-${(gone.pid as number) + 1_000_000}`;
  for (const directory of [`${stale}/1`, `${stale}/2`, `${other}/1`, `${busy}/1`]) {
    mkdirSync(directory, { recursive: true });
  }
  // Something a killed daemon left running stays where it is.
  const survivor = spawn('sleep', ['1000'], { stdio: 'ignore' });
  writeFileSync(`${busy}/1/cgroup.procs`, String(survivor.pid));
  let daemon: TestDaemon | undefined;
  try {
    daemon = await startDaemon();
    assert.equal(existsSync(stale), false, 'the stale cgroups are gone');
    assert.equal(existsSync(`${other}/1`), true, "another namespace's are left");
    assert.equal(existsSync(`${busy}/1`), true, 'one with members is left');
    assert.equal(isAlive(survivor.pid as number), true);
  } finally {
    await daemon?.stop();
    survivor.kill('SIGKILL');
    await once(survivor, 'exit');
    for (const directory of [`${other}/1`, other, `${busy}/1`, busy]) rmdirSync(directory);
  }
});

/** How many per-process cgroups the daemon's directory holds. */
function cells(directory: string): number {
  return readdirSync(directory, { withFileTypes: true }).filter((entry) => entry.isDirectory()).length;
}
