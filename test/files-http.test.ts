import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { EventType, Filesystem, FileType } from '../src/gen/filesystem/filesystem_pb.ts';
import { eventually, useDaemon } from './helpers/daemon.ts';

const NOBODY = { uid: 65534, gid: 65534 };
const MiB = 1024 * 1024;

let root: string;
const daemon = useDaemon({
  afterStart: async () => {
    root = await mkdtemp(join(tmpdir(), 'sandboxd-files-http-'));
  },
  afterStop: async () => {
    await rm(root, { recursive: true, force: true });
  },
});

const q = (path: string) => encodeURIComponent(path);

async function rest(
  method: string,
  path: string,
  init: RequestInit & { headers?: Record<string, string> } = {},
) {
  const response = await fetch(`${daemon.api}${path}`, { ...init, method, headers: init.headers });
  const body = Buffer.from(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, body };
}

/** Asserts a REST error: the status, `{error, code}`, and a message mentioning `words`. */
function restError(
  response: { status: number; body: Buffer },
  status: number,
  code: string,
  ...words: string[]
) {
  assert.equal(response.status, status, response.body.toString());
  const body = JSON.parse(response.body.toString()) as { error: string; code: string };
  assert.equal(body.code, code);
  for (const word of words) assert.ok(body.error.includes(word), `'${body.error}' mentions '${word}'`);
}

/** Asserts an envd /files error: the status and `{message, code: status}`. */
function envdError(response: { status: number; body: Buffer }, status: number, ...words: string[]) {
  assert.equal(response.status, status, response.body.toString());
  const body = JSON.parse(response.body.toString()) as { message: string; code: number };
  assert.equal(body.code, status);
  for (const word of words) assert.ok(body.message.includes(word), `'${body.message}' mentions '${word}'`);
}

async function envdFiles(
  method: string,
  query: string,
  init: RequestInit & { headers?: Record<string, string> } = {},
) {
  const response = await fetch(`${daemon.url}/files?${query}`, { ...init, method });
  return {
    status: response.status,
    headers: response.headers,
    body: Buffer.from(await response.arrayBuffer()),
  };
}

const temporaryFiles = async (dir: string) =>
  (await readdir(dir)).filter((name) => name.startsWith('.sandboxd-upload-'));

async function serving(): Promise<void> {
  assert.equal((await fetch(`${daemon.api}/health`)).status, 200);
}

describe('REST files', () => {
  test('write, read, range, list and delete', async () => {
    const path = join(root, 'rest/a/b.txt');
    assert.equal((await rest('PUT', `/files?path=${q(path)}`, { body: '0123456789' })).status, 204);
    const whole = await rest('GET', `/files?path=${q(path)}`);
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get('content-type'), 'application/octet-stream');
    assert.equal(whole.headers.get('accept-ranges'), 'bytes');
    assert.equal(whole.body.toString(), '0123456789');

    const part = await rest('GET', `/files?path=${q(path)}`, { headers: { range: 'bytes=2-4' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), 'bytes 2-4/10');
    assert.equal(part.body.toString(), '234');
    const tail = await rest('GET', `/files?path=${q(path)}`, { headers: { range: 'bytes=-3' } });
    assert.equal(tail.body.toString(), '789');
    const beyond = await rest('GET', `/files?path=${q(path)}`, { headers: { range: 'bytes=10-' } });
    restError(beyond, 416, 'RANGE_NOT_SATISFIABLE', '10 bytes');
    assert.equal(beyond.headers.get('content-range'), 'bytes */10');

    const listing = await rest('GET', `/files/list?path=${q(join(root, 'rest'))}`);
    assert.equal(listing.status, 200);
    const entries = JSON.parse(listing.body.toString());
    assert.equal(entries.path, join(root, 'rest'));
    assert.deepEqual(
      entries.entries.map((e: { name: string; is_dir: boolean; size: number | null }) => [
        e.name,
        e.is_dir,
        e.size,
      ]),
      [['a', true, null]],
    );
    assert.equal(typeof entries.entries[0].modified_at, 'number');
    assert.ok(Number.isInteger(entries.entries[0].modified_at));

    assert.equal((await rest('DELETE', `/files?path=${q(join(root, 'rest'))}`)).status, 204);
    restError(await rest('GET', `/files?path=${q(path)}`), 404, 'NOT_FOUND', path);
  });

  test('relative paths start at the home directory; .. is resolved', async () => {
    const home = (await import('node:os')).homedir();
    const name = `sandboxd-relative-${randomBytes(4).toString('hex')}.txt`;
    try {
      assert.equal((await rest('PUT', `/files?path=${q(name)}`, { body: 'at home' })).status, 204);
      assert.equal(await readFile(join(home, name), 'utf8'), 'at home');
      const roundabout = join(root, 'x/../y/../dotted.txt');
      assert.equal((await rest('PUT', `/files?path=${q(roundabout)}`, { body: 'dots' })).status, 204);
      assert.equal(await readFile(join(root, 'dotted.txt'), 'utf8'), 'dots');
    } finally {
      await rm(join(home, name), { force: true });
    }
  });

  test('a replaced file keeps its mode; a new one gets the usual mode', async () => {
    const path = join(root, 'modes/secret');
    await mkdir(join(root, 'modes'));
    await writeFile(path, 'old');
    await chmod(path, 0o600);
    assert.equal((await rest('PUT', `/files?path=${q(path)}`, { body: 'new' })).status, 204);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal(
      (await rest('PUT', `/files?path=${q(join(root, 'modes/fresh'))}`, { body: 'x' })).status,
      204,
    );
    const status = await readFile(`/proc/${daemon.child.pid}/status`, 'utf8');
    const umask = Number.parseInt(status.match(/^Umask:\s+(\d+)/m)?.[1] ?? '', 8);
    assert.equal((await stat(join(root, 'modes/fresh'))).mode & 0o777, 0o666 & ~umask);
  });

  test('bad requests get the dialect error shape, and the daemon keeps serving', async () => {
    await mkdir(join(root, 'bad/dir'), { recursive: true });
    await writeFile(join(root, 'bad/file'), 'x');
    restError(await rest('GET', '/files'), 400, 'INVALID_REQUEST', 'path');
    restError(await rest('PUT', '/files?path=', { body: 'x' }), 400, 'INVALID_REQUEST', 'path');
    restError(await rest('GET', `/files?path=${q(join(root, 'a'))}%00b`), 400, 'INVALID_REQUEST', 'NUL');
    restError(await rest('GET', `/files?path=${q(join(root, 'bad/dir'))}`), 400, 'IS_DIRECTORY');
    restError(
      await rest('PUT', `/files?path=${q(join(root, 'bad/dir'))}`, { body: 'x' }),
      400,
      'IS_DIRECTORY',
    );
    restError(
      await rest('PUT', `/files?path=${q(join(root, 'bad/file/child'))}`, { body: 'x' }),
      400,
      'NOT_A_DIRECTORY',
    );
    restError(await rest('GET', `/files/list?path=${q(join(root, 'bad/file'))}`), 400, 'NOT_A_DIRECTORY');
    restError(await rest('GET', `/files/list?path=${q(join(root, 'bad/none'))}`), 404, 'NOT_FOUND');
    restError(await rest('DELETE', `/files?path=${q(join(root, 'bad/none'))}`), 404, 'NOT_FOUND');
    restError(
      await rest('POST', `/files?path=${q(join(root, 'bad/file'))}`, { body: 'x' }),
      405,
      'METHOD_NOT_ALLOWED',
    );
    assert.equal(await readFile(join(root, 'bad/file'), 'utf8'), 'x');
    await serving();
  });

  test('an upload cut off mid-body leaves the old content and no temporary file', async () => {
    const dir = join(root, 'cut');
    await mkdir(dir);
    const path = join(dir, 'kept.bin');
    await writeFile(path, 'the old content');
    const url = new URL(daemon.api);
    const socket = connect(Number(url.port), url.hostname);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(
      `PUT /api/v1/files?path=${q(path)} HTTP/1.1\r\nhost: x\r\ncontent-length: ${8 * MiB}\r\n\r\n`,
    );
    await new Promise<void>((resolve) => socket.write(Buffer.alloc(MiB, 'n'), () => resolve()));
    // The daemon is writing the temporary file by now; then the client goes away.
    await eventually(async () => (await temporaryFiles(dir)).length === 1);
    socket.destroy();
    await eventually(async () => (await temporaryFiles(dir)).length === 0);
    assert.equal(await readFile(path, 'utf8'), 'the old content');
    await serving();
  });

  test('a reader looping over a file while it is replaced sees one version or the other, whole', async () => {
    const path = join(root, 'atomic.bin');
    const versions = [Buffer.alloc(2 * MiB, 'a'), Buffer.alloc(MiB, 'b')];
    await writeFile(path, versions[0] as Buffer);
    let writing = true;
    const writer = (async () => {
      for (let i = 0; i < 20; i++) {
        const status = (await rest('PUT', `/files?path=${q(path)}`, { body: versions[i % 2] })).status;
        assert.equal(status, 204);
      }
      writing = false;
    })();
    let reads = 0;
    const seen = new Set<string>();
    while (writing || reads < 20) {
      const { body } = await rest('GET', `/files?path=${q(path)}`);
      const match = versions.findIndex((version) => version.equals(body));
      assert.notEqual(match, -1, `a read of ${body.length} bytes is neither version`);
      seen.add(String(match));
      reads++;
    }
    await writer;
    assert.ok(reads >= 20);
    assert.equal(await readFile(path, 'utf8').then((text) => text.length), MiB);
  });
});

describe('envd /files', () => {
  test('multipart upload of many files, each part named by its filename', async () => {
    const form = new FormData();
    form.append('file', new Blob(['one']), join(root, 'multi/one.txt'));
    form.append('file', new Blob(['two']), join(root, 'multi/deep/two.txt'));
    form.append('other', 'ignored');
    const response = await envdFiles('POST', '', { body: form });
    assert.equal(response.status, 200, response.body.toString());
    assert.deepEqual(JSON.parse(response.body.toString()), [
      { path: join(root, 'multi/one.txt'), name: 'one.txt', type: 'file' },
      { path: join(root, 'multi/deep/two.txt'), name: 'two.txt', type: 'file' },
    ]);
    assert.equal(await readFile(join(root, 'multi/deep/two.txt'), 'utf8'), 'two');
  });

  test('octet-stream upload, gzip both ways, and a range', async () => {
    const path = join(root, 'gz/data.bin');
    const data = randomBytes(MiB);
    const up = await envdFiles('POST', `path=${q(path)}`, {
      body: gzipSync(data),
      headers: { 'content-type': 'application/octet-stream', 'content-encoding': 'gzip' },
    });
    assert.equal(up.status, 200, up.body.toString());
    assert.ok((await readFile(path)).equals(data));

    const down = await fetch(`${daemon.url}/files?path=${q(path)}`, {
      headers: { 'accept-encoding': 'gzip' },
    });
    assert.equal(down.headers.get('content-encoding'), 'gzip');
    // fetch undoes the gzip itself; the raw body is checked below with a plain request.
    assert.ok(Buffer.from(await down.arrayBuffer()).equals(data));
    const raw = await promisify(execFile)(
      'curl',
      ['-s', '-H', 'accept-encoding: gzip', `${daemon.url}/files?path=${q(path)}`],
      {
        encoding: 'buffer',
        maxBuffer: 4 * MiB,
      },
    );
    assert.ok(gunzipSync(raw.stdout).equals(data));

    const part = await envdFiles('GET', `path=${q(path)}`, {
      headers: { range: 'bytes=0-9', 'accept-encoding': 'gzip' },
    });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-encoding'), null);
    assert.ok(part.body.equals(data.subarray(0, 10)));
  });

  test('username: files and the directories made for them belong to that user', async () => {
    const path = join(root, 'nobody-owns/dir/file.txt');
    const response = await envdFiles('POST', `path=${q(path)}&username=nobody`, {
      body: 'mine',
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.equal(response.status, 200, response.body.toString());
    for (const made of [path, join(root, 'nobody-owns/dir'), join(root, 'nobody-owns')]) {
      const { uid, gid } = await stat(made);
      assert.deepEqual([uid, gid], [NOBODY.uid, NOBODY.gid], made);
    }
    envdError(
      await envdFiles('POST', `path=${q(path)}&username=no-such-user`, {
        body: 'x',
        headers: { 'content-type': 'application/octet-stream' },
      }),
      401,
      'no-such-user',
    );
    envdError(await envdFiles('GET', `path=${q(path)}&username=no-such-user`), 401, 'no-such-user');
  });

  test('bad requests get {message, code}', async () => {
    await mkdir(join(root, 'envd-bad/dir'), { recursive: true });
    const octet = { 'content-type': 'application/octet-stream' };
    envdError(await envdFiles('GET', ''), 400, 'path');
    envdError(await envdFiles('GET', `path=${q(join(root, 'envd-bad/none'))}`), 404);
    envdError(await envdFiles('GET', `path=${q(join(root, 'envd-bad/dir'))}`), 400, 'directory');
    envdError(await envdFiles('POST', '', { body: 'x', headers: octet }), 400, 'path');
    envdError(
      await envdFiles('POST', `path=${q(join(root, 'envd-bad/dir'))}`, { body: 'x', headers: octet }),
      400,
      'directory',
    );
    envdError(
      await envdFiles('POST', `path=${q(join(root, 'x'))}`, {
        body: 'x',
        headers: { 'content-type': 'text/plain' },
      }),
      400,
      'content type',
    );
    envdError(
      await envdFiles('POST', `path=${q(join(root, 'x'))}`, {
        body: 'not gzip',
        headers: { ...octet, 'content-encoding': 'gzip' },
      }),
      400,
      'gzip',
    );
    envdError(
      await envdFiles('POST', '', {
        body: '--nope\r\n',
        headers: { 'content-type': 'multipart/form-data; boundary=nope' },
      }),
      400,
    );
    envdError(
      await envdFiles('POST', `path=${q(join(root, 'x'))}`, {
        body: 'x',
        headers: { ...octet, 'x-metadata-key': 'tab\there' },
      }),
      400,
      'metadata',
    );
    assert.deepEqual(await temporaryFiles(root), []);
    await serving();
  });
});

describe('filesystem.Filesystem over Connect', () => {
  const client = () =>
    createClient(
      Filesystem,
      createConnectTransport({ baseUrl: daemon.url, httpVersion: '1.1', useBinaryFormat: true }),
    );
  const codeOf = (error: unknown) => (error instanceof ConnectError ? Code[error.code] : String(error));

  test('errors in Connect codes', async () => {
    const fs = client();
    await mkdir(join(root, 'rpc'), { recursive: true });
    await writeFile(join(root, 'rpc/file'), '');
    const cases: [string, () => Promise<unknown>, string][] = [
      ['stat missing', () => fs.stat({ path: join(root, 'rpc/none') }), 'NotFound'],
      ['list a file', () => fs.listDir({ path: join(root, 'rpc/file') }), 'InvalidArgument'],
      ['list missing', () => fs.listDir({ path: join(root, 'rpc/none') }), 'NotFound'],
      ['makeDir over a file', () => fs.makeDir({ path: join(root, 'rpc/file') }), 'InvalidArgument'],
      ['makeDir existing', () => fs.makeDir({ path: join(root, 'rpc') }), 'AlreadyExists'],
      [
        'move missing',
        () => fs.move({ source: join(root, 'rpc/none'), destination: join(root, 'rpc/x') }),
        'NotFound',
      ],
      ['NUL in a path', () => fs.stat({ path: 'a\0b' }), 'InvalidArgument'],
      ['empty path', () => fs.stat({ path: '' }), 'InvalidArgument'],
      ['watch a file', () => fs.createWatcher({ path: join(root, 'rpc/file') }), 'InvalidArgument'],
      ['unknown watcher', () => fs.getWatcherEvents({ watcherId: 'w-none' }), 'NotFound'],
      [
        'unknown user',
        () =>
          fs.stat(
            { path: root },
            { headers: { authorization: `Basic ${Buffer.from('ghost:').toString('base64')}` } },
          ),
        'Unauthenticated',
      ],
    ];
    for (const [what, call, code] of cases) {
      await assert.rejects(
        call(),
        (error) => codeOf(error) === code || assert.fail(`${what}: ${codeOf(error)}`),
      );
    }
    // Removing what is not there is no error, as with the reference daemon.
    await fs.remove({ path: join(root, 'rpc/none') });
    await serving();
  });

  test('unknown methods answer a Connect unimplemented error', async () => {
    for (const path of ['/filesystem.Filesystem/Nope', '/process.Process/Nope', '/other.Service/Call']) {
      const response = await fetch(`${daemon.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(response.status, 404, path);
      assert.equal(((await response.json()) as { code: string }).code, 'unimplemented', path);
    }
  });

  test('a symbolic link reports what it leads to', async () => {
    const fs = client();
    await mkdir(join(root, 'linked/real'), { recursive: true });
    await import('node:fs/promises').then(({ symlink }) =>
      symlink(join(root, 'linked/real'), join(root, 'linked/link')),
    );
    const { entry } = await fs.stat({ path: join(root, 'linked/link') });
    assert.equal(entry?.type, FileType.DIRECTORY);
    assert.equal(entry?.symlinkTarget, join(root, 'linked/real'));
  });

  test('a polled watcher: events accumulate until taken; removing it ends it', async () => {
    const fs = client();
    const dir = join(root, 'polled');
    await mkdir(dir);
    const { watcherId } = await fs.createWatcher({ path: dir, includeEntry: true });
    await writeFile(join(dir, 'one'), '1');
    const events: { name: string; type: EventType; size?: bigint }[] = [];
    await eventually(async () => {
      for (const event of (await fs.getWatcherEvents({ watcherId })).events) {
        events.push({ name: event.name, type: event.type, size: event.entry?.size });
      }
      return events.some((e) => e.type === EventType.WRITE);
    });
    // The entry is what the file is when the event is told: created empty, then written.
    assert.deepEqual(
      events.slice(0, 2).map(({ name, type }) => ({ name, type })),
      [
        { name: 'one', type: EventType.CREATE },
        { name: 'one', type: EventType.WRITE },
      ],
    );
    assert.equal(typeof events[0]?.size, 'bigint', 'the create event carries an entry');
    assert.equal(events[1]?.size, 1n);
    await fs.removeWatcher({ watcherId });
    await assert.rejects(fs.getWatcherEvents({ watcherId }), (error) => codeOf(error) === 'NotFound');
  });

  test('a watcher nobody drains loses events, says how many, and goes on', async () => {
    const fs = client();
    const dir = join(root, 'flooded');
    await mkdir(dir);
    const { watcherId } = await fs.createWatcher({ path: dir });
    // A directory is one notice and one event, so each is accounted for below as taken or lost.
    // A watch holds 4,096 events and 4,096 notices waiting to be translated: more than both
    // together, made before anything is drained, must lose some however fast the daemon is.
    const made = 8300;
    await Promise.all(Array.from({ length: made }, (_, i) => mkdir(join(dir, `d${i}`))));
    let taken = 0;
    let lost = 0;
    const lossReports: unknown[] = [];
    await eventually(async () => {
      try {
        const { events } = await fs.getWatcherEvents({ watcherId });
        assert.ok(events.length <= 4096, `${events.length} events were held`);
        taken += events.length;
      } catch (error) {
        lossReports.push(error);
        assert.equal(codeOf(error), 'ResourceExhausted');
        const count = /lost (\d+) events/.exec((error as Error).message);
        assert.ok(count, (error as Error).message);
        lost += Number(count[1]);
      }
      return taken + lost >= made;
    }, 20_000);
    assert.ok(lossReports.length >= 1, 'a watcher nobody drained was not told of its losses');
    assert.equal(taken + lost, made);
    await mkdir(join(dir, 'later'));
    const later: string[] = [];
    await eventually(async () => {
      for (const event of (await fs.getWatcherEvents({ watcherId })).events) later.push(event.name);
      return later.length > 0;
    });
    assert.deepEqual(later, ['later']);
    await fs.removeWatcher({ watcherId });
  });
});

describe('files the daemon may not touch', () => {
  // A daemon running as nobody meets the operating system's permissions.
  let home: string;
  const limited = useDaemon({
    user: NOBODY,
    beforeStart: async () => {
      home = await mkdtemp(join(tmpdir(), 'sandboxd-nobody-home-'));
      await import('node:fs/promises').then(({ chown }) => chown(home, NOBODY.uid, NOBODY.gid));
    },
    env: () => ({ HOME: home }),
    afterStop: async () => {
      await rm(home, { recursive: true, force: true });
    },
  });

  test('no permission is 403 in REST, /files and Connect', async () => {
    const locked = join(root, 'locked');
    await mkdir(locked, { mode: 0o700 });
    await writeFile(join(locked, 'secret'), 'x');
    const restResponse = await fetch(`${limited.api}/files?path=${q(join(locked, 'secret'))}`);
    restError(
      { status: restResponse.status, body: Buffer.from(await restResponse.arrayBuffer()) },
      403,
      'PERMISSION_DENIED',
    );
    const put = await fetch(`${limited.api}/files?path=${q(join(locked, 'new'))}`, {
      method: 'PUT',
      body: 'x',
    });
    restError({ status: put.status, body: Buffer.from(await put.arrayBuffer()) }, 403, 'PERMISSION_DENIED');
    const envd = await fetch(`${limited.url}/files?path=${q(join(locked, 'secret'))}`);
    envdError({ status: envd.status, body: Buffer.from(await envd.arrayBuffer()) }, 403);
    const fs = createClient(Filesystem, createConnectTransport({ baseUrl: limited.url, httpVersion: '1.1' }));
    await assert.rejects(
      fs.makeDir({ path: join(locked, 'sub') }),
      (error) => error instanceof ConnectError && error.code === Code.PermissionDenied,
    );
    // Its own home is where relative paths go, and there it may write.
    const own = await fetch(`${limited.api}/files?path=notes.txt`, { method: 'PUT', body: 'mine' });
    assert.equal(own.status, 204);
    assert.equal((await stat(join(home, 'notes.txt'))).uid, NOBODY.uid);
  });
});

describe('a full disk', () => {
  let mounted: string | undefined;
  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sandboxd-tmpfs-'));
    try {
      await promisify(execFile)('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
      mounted = dir;
    } catch {
      await rm(dir, { recursive: true, force: true });
    }
  });
  after(async () => {
    if (!mounted) return;
    await promisify(execFile)('umount', [mounted]);
    await rm(mounted, { recursive: true, force: true });
  });

  test('is 507 in REST and /files, keeps the old file and leaves no temporary file', async (t) => {
    if (!mounted) {
      t.skip('mounting a tmpfs needs root');
      return;
    }
    const path = join(mounted, 'file');
    await writeFile(path, 'small and old');
    const big = randomBytes(2 * MiB);
    restError(await rest('PUT', `/files?path=${q(path)}`, { body: big }), 507, 'NO_SPACE');
    envdError(
      await envdFiles('POST', `path=${q(path)}`, {
        body: big,
        headers: { 'content-type': 'application/octet-stream' },
      }),
      507,
    );
    assert.equal(await readFile(path, 'utf8'), 'small and old');
    assert.deepEqual(await temporaryFiles(mounted), []);
    await serving();
  });
});
