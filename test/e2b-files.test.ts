import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  FileNotFoundError,
  type FilesystemEvent,
  FilesystemEventType,
  InvalidArgumentError,
  Sandbox,
} from 'e2b';
import { eventually, inotifyWatches, useDaemon } from './helpers/daemon.ts';

// The official e2b SDK in debug mode: files.* over plain /files and the filesystem.Filesystem service.
let sandbox: Sandbox;
let root: string;
const daemon = useDaemon({
  afterStart: async () => {
    sandbox = await Sandbox.create({ debug: true, sandboxUrl: daemon.url });
    root = await mkdtemp(join(tmpdir(), 'sandboxd-e2b-files-'));
  },
  afterStop: async () => {
    await rm(root, { recursive: true, force: true });
  },
});

async function text(stream: ReadableStream<Uint8Array>): Promise<string> {
  let all = '';
  const decoder = new TextDecoder();
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>)
    all += decoder.decode(chunk, { stream: true });
  return all + decoder.decode();
}

/** Collects watch events and lets a test wait for one it expects. */
function eventLog() {
  const events: { name: string; type: FilesystemEventType }[] = [];
  const waiters: { matches: (e: FilesystemEvent) => boolean; resolve: () => void }[] = [];
  return {
    events,
    onEvent(event: FilesystemEvent) {
      events.push({ name: event.name, type: event.type });
      for (const waiter of waiters.filter((w) => w.matches(event))) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    },
    waitFor(name: string, type: FilesystemEventType): Promise<void> {
      if (events.some((e) => e.name === name && e.type === type)) return Promise.resolve();
      return new Promise((resolve) =>
        waiters.push({ matches: (e) => e.name === name && e.type === type, resolve }),
      );
    },
  };
}

describe('the e2b SDK files API against the daemon', () => {
  test('write then read as text, bytes and a stream', async () => {
    const path = join(root, 'read/hello.txt');
    const info = await sandbox.files.write(path, 'hello, files\n');
    assert.equal(info.path, path);
    assert.equal(info.name, 'hello.txt');
    assert.equal(await sandbox.files.read(path), 'hello, files\n');
    assert.deepEqual(
      Buffer.from(await sandbox.files.read(path, { format: 'bytes' })),
      Buffer.from('hello, files\n'),
    );
    assert.equal(await text(await sandbox.files.read(path, { format: 'stream' })), 'hello, files\n');
    assert.equal(await sandbox.files.read(path, { gzip: true }), 'hello, files\n');
  });

  test('an empty file reads as empty in every format', async () => {
    const path = join(root, 'empty');
    await sandbox.files.write(path, '');
    assert.equal(await sandbox.files.read(path), '');
    assert.equal((await sandbox.files.read(path, { format: 'bytes' })).length, 0);
  });

  test('write many files in one call, binary ones too, and a gzipped stream', async () => {
    const binary = randomBytes(1024 * 1024);
    const written = await sandbox.files.write([
      { path: join(root, 'many/a.txt'), data: 'A' },
      {
        path: join(root, 'many/deep/b.bin'),
        data: binary.buffer.slice(binary.byteOffset, binary.byteOffset + binary.length),
      },
    ]);
    assert.deepEqual(
      written.map((w) => w.path),
      [join(root, 'many/a.txt'), join(root, 'many/deep/b.bin')],
    );
    assert.equal(await sandbox.files.read(join(root, 'many/a.txt')), 'A');
    assert.ok(
      Buffer.from(await sandbox.files.read(join(root, 'many/deep/b.bin'), { format: 'bytes' })).equals(
        binary,
      ),
    );

    const streamed = new Blob([binary]).stream();
    await sandbox.files.write(join(root, 'many/gz.bin'), streamed, { gzip: true });
    assert.ok(
      Buffer.from(await sandbox.files.read(join(root, 'many/gz.bin'), { format: 'bytes' })).equals(binary),
    );
  });

  test('list with depth, exists and getInfo', async () => {
    const base = join(root, 'tree');
    await sandbox.files.write(join(base, 'top.txt'), 'top');
    await sandbox.files.write(join(base, 'sub/inner.txt'), 'inner');
    await sandbox.files.write(join(base, 'sub/deeper/leaf.txt'), 'leaf');

    const one = await sandbox.files.list(base);
    assert.deepEqual(
      one.map((e) => [e.name, e.type]),
      [
        ['sub', 'dir'],
        ['top.txt', 'file'],
      ],
    );
    const two = await sandbox.files.list(base, { depth: 2 });
    assert.deepEqual(
      two.map((e) => e.path),
      [join(base, 'sub'), join(base, 'sub/deeper'), join(base, 'sub/inner.txt'), join(base, 'top.txt')],
    );
    const three = await sandbox.files.list(base, { depth: 3 });
    assert.ok(three.some((e) => e.path === join(base, 'sub/deeper/leaf.txt')));

    assert.equal(await sandbox.files.exists(join(base, 'top.txt')), true);
    assert.equal(await sandbox.files.exists(join(base, 'nope')), false);

    const info = await sandbox.files.getInfo(join(base, 'top.txt'));
    const onDisk = await stat(join(base, 'top.txt'));
    assert.equal(info.type, 'file');
    assert.equal(info.size, 3);
    assert.equal(info.mode, 0o644);
    assert.equal(info.permissions, '-rw-r--r--');
    assert.equal(info.owner, 'root');
    assert.equal(info.group, 'root');
    assert.equal(info.modifiedTime?.getTime(), Math.floor(onDisk.mtimeMs));
    const directory = await sandbox.files.getInfo(join(base, 'sub'));
    assert.equal(directory.type, 'dir');
    assert.equal(directory.permissions, 'drwxr-xr-x');

    await assert.rejects(sandbox.files.getInfo(join(base, 'nope')), FileNotFoundError);
    await assert.rejects(sandbox.files.list(join(base, 'top.txt')), InvalidArgumentError);
  });

  test('metadata given at upload comes back with getInfo', async () => {
    const path = join(root, 'meta.txt');
    const written = await sandbox.files.write(path, 'x', { metadata: { author: 'agent-7', Stage: 'draft' } });
    // Header names carry no case (fetch sends them lowercased), so keys come back lowercased.
    assert.deepEqual(written.metadata, { author: 'agent-7', stage: 'draft' });
    assert.deepEqual((await sandbox.files.getInfo(path)).metadata, { author: 'agent-7', stage: 'draft' });
    // A new upload replaces the metadata.
    await sandbox.files.write(path, 'y');
    assert.equal((await sandbox.files.getInfo(path)).metadata, undefined);
  });

  test('makeDir is false when the directory exists; rename and remove', async () => {
    const dir = join(root, 'made/inside');
    assert.equal(await sandbox.files.makeDir(dir), true);
    assert.equal(await sandbox.files.makeDir(dir), false);
    assert.equal((await stat(dir)).isDirectory(), true);

    await sandbox.files.write(join(dir, 'old.txt'), 'moving');
    const moved = await sandbox.files.rename(join(dir, 'old.txt'), join(root, 'moved/new.txt'));
    assert.equal(moved.path, join(root, 'moved/new.txt'));
    assert.equal(moved.type, 'file');
    assert.equal(await sandbox.files.exists(join(dir, 'old.txt')), false);
    assert.equal(await sandbox.files.read(join(root, 'moved/new.txt')), 'moving');
    await assert.rejects(sandbox.files.rename(join(dir, 'missing'), join(dir, 'x')), FileNotFoundError);

    await sandbox.files.remove(join(root, 'made'));
    assert.equal(await sandbox.files.exists(join(root, 'made')), false);
    await assert.rejects(sandbox.files.read(join(root, 'made/inside/old.txt')), FileNotFoundError);
  });

  test('watchDir reports create, write, rename and remove, and stops cleanly', async () => {
    const dir = join(root, 'watched');
    await sandbox.files.makeDir(dir);
    const log = eventLog();
    const watchesBefore = inotifyWatches(daemon.child.pid as number);
    const handle = await sandbox.files.watchDir(dir, log.onEvent);
    assert.equal(inotifyWatches(daemon.child.pid as number), watchesBefore + 1);
    await sandbox.files.write(join(dir, 'a.txt'), 'first');
    await log.waitFor('a.txt', FilesystemEventType.WRITE);
    await sandbox.files.write(join(dir, 'a.txt'), 'second');
    await sandbox.files.rename(join(dir, 'a.txt'), join(dir, 'b.txt'));
    await log.waitFor('b.txt', FilesystemEventType.CREATE);
    await sandbox.files.remove(join(dir, 'b.txt'));
    await log.waitFor('b.txt', FilesystemEventType.REMOVE);
    await handle.stop();

    assert.deepEqual(log.events, [
      { name: 'a.txt', type: FilesystemEventType.CREATE },
      { name: 'a.txt', type: FilesystemEventType.WRITE },
      { name: 'a.txt', type: FilesystemEventType.WRITE },
      { name: 'a.txt', type: FilesystemEventType.RENAME },
      { name: 'b.txt', type: FilesystemEventType.CREATE },
      { name: 'b.txt', type: FilesystemEventType.REMOVE },
    ]);
    // Stopping ends the stream, and the daemon lets go of the directory.
    await eventually(() => inotifyWatches(daemon.child.pid as number) === watchesBefore);
  });

  test('a recursive watch sees files in directories made after it started', async () => {
    const dir = join(root, 'recursive');
    await sandbox.files.makeDir(dir);
    const log = eventLog();
    const handle = await sandbox.files.watchDir(dir, log.onEvent, { recursive: true });
    await sandbox.files.write(join(dir, 'new/deeper/file.txt'), 'deep');
    await log.waitFor('new/deeper/file.txt', FilesystemEventType.WRITE);
    await handle.stop();
    assert.deepEqual(
      log.events.filter((e) => e.type === FilesystemEventType.CREATE).map((e) => e.name),
      ['new', 'new/deeper', 'new/deeper/file.txt'],
    );
  });
});
