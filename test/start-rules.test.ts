import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { ConnectError } from '@connectrpc/connect';
import { restClient } from './helpers/api.ts';
import { useDaemon } from './helpers/daemon.ts';
import { collect, type ProcessClient, processClient } from './helpers/envd.ts';

// The start rules both dialects share, seen through each: where a relative or `~` working
// directory starts, which are refused, and how large a terminal may be.
let home: string;
let rest: ReturnType<typeof restClient>;
let rpc: ProcessClient;
const daemon = useDaemon({
  beforeStart: async () => {
    home = await realpath(await mkdtemp(join(tmpdir(), 'start-rules-home-')));
    await mkdir(join(home, 'work'));
  },
  env: () => ({ HOME: home }),
  afterStart: () => {
    rest = restClient(daemon);
    rpc = processClient(daemon);
  },
  afterStop: async () => {
    await rm(home, { recursive: true, force: true });
  },
});

async function restPwd(workingDir: string) {
  const { status, body } = await rest.call('POST', '/processes', { command: 'pwd', working_dir: workingDir });
  if (status !== 201) return { status, body };
  const { pid } = body as { pid: number };
  await rest.waitForEnd(pid);
  return { status, lines: await rest.lines(pid) };
}

describe('a working directory, in both dialects', () => {
  for (const [given, under] of [
    ['work', 'work'],
    ['./work/../work', 'work'],
    ['~', ''],
    ['~/work', 'work'],
  ] as const) {
    test(`${JSON.stringify(given)} starts at the daemon user's home`, async () => {
      assert.deepEqual(await restPwd(given), { status: 201, lines: [join(home, under)] });
      const seen = await collect(rpc.start({ process: { cmd: 'pwd', cwd: given } }));
      assert.equal(seen.stdout, `${join(home, under)}\n`);
    });
  }

  test("'~bob' is refused as another user's home, not read as a relative path", async () => {
    const refused = await restPwd('~bob');
    assert.equal(refused.status, 400);
    assert.deepEqual(refused.body, {
      error: "cwd: '~bob' names another user's home; give it in full",
      code: 'INVALID_REQUEST',
    });
    await assert.rejects(
      collect(rpc.start({ process: { cmd: 'pwd', cwd: '~bob' } })),
      (error: ConnectError) => {
        assert.equal(error.rawMessage, "cwd: '~bob' names another user's home; give it in full");
        return error.code === 3; // invalid_argument
      },
    );
  });
});

describe('a terminal size, in both dialects', () => {
  test('envd clamps a terminal to 1000×500 at start and on Update, as REST does', async () => {
    const seen = await collect(
      rpc.start({
        process: { cmd: '/bin/sh', args: ['-c', 'stty size'] },
        pty: { size: { cols: 5000, rows: 9000 } },
      }),
    );
    assert.equal(seen.pty.trim(), '500 1000');

    const { status, body } = await rest.call('POST', '/pty', {
      command: '/bin/sh',
      args: ['-c', 'stty size; read line'],
      cols: 5000,
      rows: 9000,
    });
    assert.equal(status, 201);
    const { session_id: id } = body as { session_id: string };
    try {
      const info = (await rest.call('GET', `/pty/${id}`)).body as { cols: number; rows: number };
      assert.deepEqual([info.cols, info.rows], [1000, 500]);
    } finally {
      await rest.call('DELETE', `/pty/${id}`);
    }
  });

  test('envd Update with a size beyond the limits is clamped, not handed to the terminal', async () => {
    const stream = rpc.start({ process: { cmd: '/bin/sh' }, pty: { size: { cols: 80, rows: 24 } } });
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    const event = first.value?.event?.event;
    assert.equal(event?.case, 'start');
    const pid = event.case === 'start' ? event.value.pid : 0;
    const select = { selector: { case: 'pid' as const, value: pid } };
    await rpc.update({ process: select, pty: { size: { cols: 4000, rows: 3000 } } });
    const input = new TextEncoder().encode('stty size; exit\n');
    await rpc.sendInput({ process: select, input: { input: { case: 'pty', value: input } } });
    const seen = await collect({ [Symbol.asyncIterator]: () => iterator });
    assert.match(seen.pty, /\r\n500 1000\r\n/);
  });
});
