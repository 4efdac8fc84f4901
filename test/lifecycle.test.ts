import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { restClient } from './helpers/api.ts';
import { eventually, isAlive, useDaemon } from './helpers/daemon.ts';

let client: ReturnType<typeof restClient>;
const daemon = useDaemon({
  afterStart: () => {
    client = restClient(daemon);
  },
});

test('a backgrounded grandchild holding stdout open does not hold the follow stream open', async () => {
  const { pid } = await client.start({ command: 'sh', args: ['-c', 'sleep 1000 & echo $!; echo started'] });
  try {
    const { lines, eof } = await client.follow(pid);
    const receivedAt = Date.now();
    assert.equal(eof, true);
    assert.deepEqual(lines.map((l) => l.line).slice(1), ['started']);
    const grandchild = Number(lines[0]?.line);
    // The stream ended while the grandchild still holds the pipe: it did not wait for it.
    assert.equal(isAlive(grandchild), true);
    const info = await client.get(pid);
    assert.equal(info.status, 'exited');
    assert.ok(
      receivedAt - (info.ended_at as number) < 1000,
      `eof came ${receivedAt - (info.ended_at as number)} ms late`,
    );
  } finally {
    await client.kill(pid);
  }
});

test('kill takes the whole process group: no child of the shell survives', async () => {
  const script = 'sleep 1000 & echo $!; sleep 1000 & echo $!; wait';
  const { pid } = await client.start({ command: 'sh', args: ['-c', script] });
  const { lines } = await client.follow(pid, { stopAfter: 2 });
  const children = lines.map((l) => Number(l.line));
  assert.equal(children.length, 2);
  for (const child of children) assert.equal(isAlive(child), true);

  assert.equal((await client.call('DELETE', `/processes/${pid}`)).status, 204);
  await client.follow(pid);
  const info = await client.get(pid);
  assert.deepEqual([info.status, info.signal, info.exit_code], ['signaled', 9, null]);
  await eventually(() => children.every((child) => !isAlive(child)));
  // Killing a process that has ended is not an error: the goal state holds.
  assert.equal((await client.call('DELETE', `/processes/${pid}`)).status, 204);
});

test('a signal goes to the group by default, to the leader alone with group:false', async () => {
  const script = 'sleep 1000 & echo $!; wait';
  const leaderOnly = await client.start({ command: 'sh', args: ['-c', script] });
  const grouped = await client.start({ command: 'sh', args: ['-c', script] });
  try {
    const leaderChild = Number((await client.follow(leaderOnly.pid, { stopAfter: 1 })).lines[0]?.line);
    const groupChild = Number((await client.follow(grouped.pid, { stopAfter: 1 })).lines[0]?.line);

    const signal = (pid: number, body: unknown) => client.call('POST', `/processes/${pid}/signal`, body);
    assert.deepEqual((await signal(leaderOnly.pid, { signal: 15, group: false })).body, { success: true });
    assert.deepEqual((await signal(grouped.pid, { signal: 15 })).body, { success: true });
    await client.follow(leaderOnly.pid);
    await client.follow(grouped.pid);
    assert.equal((await client.get(leaderOnly.pid)).signal, 15);
    assert.equal((await client.get(grouped.pid)).signal, 15);

    await eventually(() => !isAlive(groupChild));
    assert.equal(isAlive(leaderChild), true, 'group:false must spare the child');
  } finally {
    await client.kill(leaderOnly.pid);
    await client.kill(grouped.pid);
  }
});

test('stdin: writes arrive in order, a large write arrives whole, close delivers EOF', async () => {
  const cat = await client.start({ command: 'cat', stdin_mode: 'pipe' });
  const count = await client.start({ command: 'wc', args: ['-c'], stdin_mode: 'pipe' });
  try {
    for (let i = 0; i < 200; i++) {
      assert.equal((await client.call('POST', `/processes/${cat.pid}/stdin`, `${i}\n`)).status, 204);
    }
    assert.equal((await client.call('POST', `/processes/${cat.pid}/stdin/close`)).status, 204);
    // Closing twice is fine.
    assert.equal((await client.call('POST', `/processes/${cat.pid}/stdin/close`)).status, 204);
    const { lines } = await client.follow(cat.pid);
    assert.deepEqual(
      lines.map((l) => Number(l.line)),
      Array.from({ length: 200 }, (_, i) => i),
    );
    assert.equal((await client.get(cat.pid)).exit_code, 0);

    const big = 'x'.repeat(12 * 1024 * 1024);
    assert.equal((await client.call('POST', `/processes/${count.pid}/stdin`, big)).status, 204);
    await client.call('POST', `/processes/${count.pid}/stdin/close`);
    assert.deepEqual(
      (await client.follow(count.pid)).lines.map((l) => l.line.trim()),
      [String(big.length)],
    );
  } finally {
    await client.kill(cat.pid);
    await client.kill(count.pid);
  }
});

test('names address processes; a managed process restarts by its policy', async () => {
  const named = await client.start({ command: 'sleep', args: ['1000'], name: 'napper' });
  try {
    assert.equal((await client.get('napper')).pid, named.pid);
    const taken = await client.call('POST', '/processes', { command: 'true', name: 'napper' });
    assert.equal(taken.status, 409);
  } finally {
    await client.kill('napper');
  }

  const flaky = await client.start({
    command: 'sh',
    args: ['-c', 'exit 3'],
    name: 'flaky',
    restart: { policy: 'on_failure', max_restarts: 2, initial_backoff_ms: 10, max_backoff_ms: 20 },
  });
  assert.equal(flaky.managed !== undefined, true);
  await eventually(async () => {
    const info = await client.get('flaky');
    return info.managed !== undefined && info.managed.status === 'stopped';
  });
  const incarnations = (await client.call('GET', '/processes')).body as { processes: { name?: string }[] };
  assert.equal(incarnations.processes.filter((p) => p.name === 'flaky').length, 3);
});

test('finished processes hold no file descriptors, whatever they printed', async () => {
  const descriptors = () => readdirSync(`/proc/${daemon.child.pid}/fd`).length;
  const descriptorsAtFirst = descriptors();
  for (let i = 0; i < 20; i++) {
    // 2 MiB of output: more than the memory budget, so it goes to spill files.
    const script = `yes abcdefghijklmnopqrstuvwxyz0123456789 | head -c ${2 * 1024 * 1024}`;
    const { pid } = await client.start({ command: 'sh', args: ['-c', script] });
    await client.waitForEnd(pid);
  }
  assert.ok(
    descriptors() < descriptorsAtFirst + 5,
    `${descriptors() - descriptorsAtFirst} more descriptors after 20 processes`,
  );
});

test('of concurrent starts with one name, one wins and the rest get 409', async () => {
  const answers = await Promise.all(
    Array.from({ length: 5 }, () =>
      client.call('POST', '/processes', { command: 'sleep', args: ['1000'], name: 'contested' }),
    ),
  );
  try {
    assert.deepEqual(answers.map((a) => a.status).sort(), [201, 409, 409, 409, 409]);
  } finally {
    for (const answer of answers)
      if (answer.status === 201) await client.kill((answer.body as { pid: number }).pid);
  }
});

test('concurrent restarts leave one incarnation running; a kill during a restart wins', async () => {
  await client.start({ command: 'sleep', args: ['1000'], name: 'restarted' });
  const running = async () =>
    (
      (await client.call('GET', '/processes')).body as { processes: { name?: string; status: string }[] }
    ).processes.filter((p) => p.name === 'restarted' && p.status === 'running').length;
  const answers = await Promise.all([1, 2, 3].map(() => client.call('POST', '/processes/restarted/restart')));
  assert.deepEqual(
    answers.map((a) => a.status),
    [200, 200, 200],
  );
  // Whether they overlapped or ran one after another, one incarnation runs.
  assert.equal(await running(), 1);

  const restart = client.call('POST', '/processes/restarted/restart');
  assert.equal((await client.call('DELETE', '/processes/restarted')).status, 204);
  await restart;
  await eventually(async () => (await running()) === 0);
  // Nothing comes back: the kill stopped supervision.
  const { managed } = await client.get('restarted');
  assert.equal(managed?.status, 'stopped');
  assert.equal(await running(), 0);
});

test('a run timeout of 30 days is 30 days, not a timer that fires at once', async () => {
  const response = await fetch(`${daemon.api}/processes/run`, {
    method: 'POST',
    body: JSON.stringify({ command: 'sh', args: ['-c', 'sleep 0.2; echo done'], timeout: 30 * 24 * 3600 }),
  });
  const frames = (await response.text())
    .split('\n')
    .filter((line) => line.startsWith('data: '))
    .map((line) => JSON.parse(line.slice(6)));
  assert.deepEqual(frames.at(-1), { exit_code: 0 });
  assert.equal(frames.at(-2)?.line, 'done');
});

test('stdin to a process that does not read: a second queue of waiting writes is refused at once (429)', async () => {
  const { pid } = await client.start({ command: 'sleep', args: ['1000'], stdin_mode: 'pipe' });
  const MiB = 1024 * 1024;
  try {
    // Accepted into the queue, which is then full.
    assert.equal((await client.call('POST', `/processes/${pid}/stdin`, 'x'.repeat(9 * MiB))).status, 204);
    // Waits for room (the process would have to read)...
    const waiting = client.call('POST', `/processes/${pid}/stdin`, 'y'.repeat(MiB));
    await eventually(async () => {
      // ...and once it waits, a write that would pile up more than a queue's worth is refused.
      const refused = await client.call('POST', `/processes/${pid}/stdin`, 'z'.repeat(8 * MiB));
      if (refused.status === 204) throw new Error('a write was accepted into a full queue');
      return refused.status === 429 && (refused.body as { code: string }).code === 'STDIN_QUEUE_FULL';
    });
    await client.kill(pid);
    // The waiting write fails when the process goes away, instead of hanging.
    assert.equal((await waiting).status, 400);
  } finally {
    await client.kill(pid);
  }
});
