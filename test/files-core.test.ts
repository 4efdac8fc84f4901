import assert from 'node:assert/strict';
import {
  chmod,
  chown,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { SandboxError } from '../src/core/errors.ts';
import { resolvePath } from '../src/core/paths.ts';
import { Accounts } from '../src/core/users.ts';
import { goModeString, readEntry } from '../src/files/entry.ts';
import { listDirectory } from '../src/files/list.ts';
import { OwnWrites } from '../src/files/own-writes.ts';
import { DirectoryWatch, type WatchEvent } from '../src/files/watch.ts';
import { isTemporaryName, writeAtomically } from '../src/files/write.ts';
import { acceptsGzip, requestedRange } from '../src/http/file-response.ts';

const NOBODY = { uid: 65534, gid: 65534 };
const accounts = new Accounts();
let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'sandboxd-files-core-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const kindOf = (error: unknown) =>
  error instanceof SandboxError ? error.kind : `not a SandboxError: ${error}`;

/** The umask this process (and what it writes) runs under. */
async function umask(): Promise<number> {
  const status = await readFile('/proc/self/status', 'utf8');
  return Number.parseInt(status.match(/^Umask:\s+(\d+)/m)?.[1] ?? '022', 8);
}

describe('paths', () => {
  const home = '/home/agent';
  const cases: [string, string][] = [
    ['/etc/hosts', '/etc/hosts'],
    ['notes.txt', '/home/agent/notes.txt'],
    ['~', '/home/agent'],
    ['~/a/b', '/home/agent/a/b'],
    ['/a/../b', '/b'],
    ['../../etc/passwd', '/etc/passwd'],
    ['a/./b//c/', '/home/agent/a/b/c'],
  ];
  for (const [given, expected] of cases) {
    test(`'${given}' is ${expected}`, () => assert.equal(resolvePath(given, home), expected));
  }
  const refused: [string, string][] = [
    ['', 'required'],
    ['a\0b', 'NUL'],
    ['~bob/x', "another user's home"],
  ];
  for (const [given, says] of refused) {
    test(`${JSON.stringify(given)} is refused`, () =>
      assert.throws(
        () => resolvePath(given, home),
        (error) => kindOf(error) === 'invalid_argument' && (error as Error).message.includes(says),
      ));
  }
});

describe('modes as Go spells them', () => {
  const cases: [number, string][] = [
    [0o100644, '-rw-r--r--'],
    [0o100000, '----------'],
    [0o040755, 'drwxr-xr-x'],
    [0o120777, 'Lrwxrwxrwx'],
    [0o041777, 'dtrwxrwxrwx'],
    [0o104755, 'urwxr-xr-x'],
    [0o102755, 'grwxr-xr-x'],
    [0o020666, 'Dcrw-rw-rw-'],
    [0o060660, 'Drw-rw----'],
    [0o010644, 'prw-r--r--'],
    [0o140755, 'Srwxr-xr-x'],
  ];
  for (const [mode, expected] of cases) {
    test(`${mode.toString(8)} is ${expected}`, () => assert.equal(goModeString(mode), expected));
  }
});

describe('Range and Accept-Encoding', () => {
  const ranges: [string | undefined, ReturnType<typeof requestedRange>][] = [
    [undefined, undefined],
    ['bytes=0-0', { start: 0, end: 0 }],
    ['bytes=2-5', { start: 2, end: 5 }],
    ['bytes=5-', { start: 5, end: 9 }],
    ['bytes=-3', { start: 7, end: 9 }],
    ['bytes=0-100', { start: 0, end: 9 }],
    ['bytes=10-', 'unsatisfiable'],
    ['bytes=0-1,4-5', undefined],
    ['items=0-1', undefined],
    ['garbage', undefined],
  ];
  for (const [header, expected] of ranges) {
    test(`Range ${header} of 10 bytes`, () =>
      assert.deepEqual(requestedRange({ headers: { range: header } } as IncomingMessage, 10), expected));
  }
  const encodings: [string, boolean][] = [
    ['gzip', true],
    ['GZIP', true],
    ['br, gzip;q=0.5', true],
    ['gzip;q=0', false],
    ['identity', false],
    ['', false],
    ['x-gzip', false],
  ];
  for (const [header, expected] of encodings) {
    test(`Accept-Encoding '${header}'`, () =>
      assert.equal(acceptsGzip({ headers: { 'accept-encoding': header } } as IncomingMessage), expected));
  }
});

describe('own writes', () => {
  test('a recorded path is found with whether it replaced a file', () => {
    const writes = new OwnWrites();
    writes.record('/a', true);
    writes.record('/b', false);
    assert.deepEqual(writes.lookup('/a')?.replaced, true);
    assert.deepEqual(writes.lookup('/b')?.replaced, false);
    assert.equal(writes.lookup('/c'), undefined);
  });
  test('entries expire, and the oldest go first beyond the bound', () => {
    assert.equal(new OwnWrites(-1).lookup('/a'), undefined);
    const expired = new OwnWrites(-1);
    expired.record('/a', true);
    assert.equal(expired.lookup('/a'), undefined);
    const bounded = new OwnWrites(10_000, 2);
    bounded.record('/a', true);
    bounded.record('/b', true);
    bounded.record('/c', true);
    assert.equal(bounded.lookup('/a'), undefined);
    assert.ok(bounded.lookup('/b') && bounded.lookup('/c'));
  });
});

/** A source that sends some bytes, then fails, as a cut-off upload does. */
function failingSource(): Readable {
  return new Readable({
    read() {
      this.push(Buffer.alloc(64 * 1024, 'n'));
      this.destroy(new Error('connection reset'));
    },
  });
}

const temporaryFiles = async (dir: string) => (await readdir(dir)).filter(isTemporaryName);

describe('atomic writes', () => {
  test('a new file gets its parents and the usual mode', async () => {
    const path = join(root, 'new/parents/file.txt');
    const result = await writeAtomically(path, Readable.from([Buffer.from('fresh')]));
    assert.deepEqual(result, { path, created: true });
    assert.equal(await readFile(path, 'utf8'), 'fresh');
    assert.equal((await stat(path)).mode & 0o777, 0o666 & ~(await umask()));
  });

  test("a replaced file keeps its mode and owner, and is a new file (a reader's old one is untouched)", async () => {
    const path = join(root, 'kept.txt');
    await writeFile(path, 'old');
    await chmod(path, 0o640);
    await chown(path, NOBODY.uid, NOBODY.gid);
    const old = await stat(path);
    const result = await writeAtomically(path, Readable.from([Buffer.from('new')]));
    assert.equal(result.created, false);
    const replaced = await stat(path);
    assert.equal(await readFile(path, 'utf8'), 'new');
    assert.equal(replaced.mode & 0o7777, 0o640);
    assert.deepEqual([replaced.uid, replaced.gid], [NOBODY.uid, NOBODY.gid]);
    assert.notEqual(replaced.ino, old.ino);
  });

  test('an owner given owns the file and the directories made for it', async () => {
    const path = join(root, 'owned/dir/file');
    await writeAtomically(path, Readable.from([Buffer.from('x')]), { owner: NOBODY });
    for (const made of [path, join(root, 'owned/dir'), join(root, 'owned')]) {
      const { uid, gid } = await stat(made);
      assert.deepEqual([uid, gid], [NOBODY.uid, NOBODY.gid], made);
    }
    assert.equal((await stat(root)).uid, 0, 'a directory that was there keeps its owner');
  });

  test('a source that fails leaves the old file and no temporary file', async () => {
    const path = join(root, 'survivor.txt');
    await writeFile(path, 'the old content');
    await assert.rejects(writeAtomically(path, failingSource()), /connection reset/);
    assert.equal(await readFile(path, 'utf8'), 'the old content');
    assert.deepEqual(await temporaryFiles(root), []);
  });

  test('a directory, or a file where a parent should be, is refused', async () => {
    await mkdir(join(root, 'a-directory'), { recursive: true });
    await writeFile(join(root, 'a-file'), '');
    await assert.rejects(
      writeAtomically(join(root, 'a-directory'), Readable.from([])),
      (error) => kindOf(error) === 'is_directory',
    );
    await assert.rejects(
      writeAtomically(join(root, 'a-file/child'), Readable.from([])),
      (error) => kindOf(error) === 'not_a_directory',
    );
  });

  test('a symbolic link is written through and stays a link', async () => {
    await writeFile(join(root, 'target.txt'), 'before');
    await symlink(join(root, 'target.txt'), join(root, 'link.txt'));
    await writeAtomically(join(root, 'link.txt'), Readable.from([Buffer.from('after')]));
    assert.equal((await lstat(join(root, 'link.txt'))).isSymbolicLink(), true);
    assert.equal(await readFile(join(root, 'target.txt'), 'utf8'), 'after');
  });
});

describe('entries and listings', () => {
  test('a symbolic link tells what it leads to; one that leads nowhere is a symlink', async () => {
    const dir = join(root, 'links');
    await mkdir(dir);
    await mkdir(join(dir, 'real-dir'));
    await symlink(join(dir, 'real-dir'), join(dir, 'to-dir'));
    await symlink(join(dir, 'missing'), join(dir, 'dangling'));
    const toDir = await readEntry(join(dir, 'to-dir'), accounts);
    assert.equal(toDir.type, 'directory');
    assert.equal(toDir.symlinkTarget, join(dir, 'real-dir'));
    assert.equal(toDir.permissions, 'Lrwxrwxrwx');
    const dangling = await readEntry(join(dir, 'dangling'), accounts);
    assert.equal(dangling.type, 'symlink');
    assert.equal(dangling.symlinkTarget, join(dir, 'missing'));
  });

  test('depth walks levels, in name order, through a link to the directory asked for', async () => {
    const dir = join(root, 'walk');
    await mkdir(join(dir, 'b/c'), { recursive: true });
    await writeFile(join(dir, 'a'), '');
    await writeFile(join(dir, 'b/c/d'), '');
    await symlink(dir, join(root, 'walk-link'));
    const names = async (path: string, depth: number) =>
      (await listDirectory(path, accounts, { depth, maxEntries: 100 })).map((e) => e.path);
    assert.deepEqual(await names(dir, 1), [join(dir, 'a'), join(dir, 'b')]);
    assert.deepEqual(await names(dir, 3), [
      join(dir, 'a'),
      join(dir, 'b'),
      join(dir, 'b/c'),
      join(dir, 'b/c/d'),
    ]);
    assert.deepEqual(await names(join(root, 'walk-link'), 1), [
      join(root, 'walk-link/a'),
      join(root, 'walk-link/b'),
    ]);
  });

  test('a listing longer than the bound fails instead of growing', async () => {
    const dir = join(root, 'crowded');
    await mkdir(dir);
    await Promise.all(Array.from({ length: 20 }, (_, i) => writeFile(join(dir, `f${i}`), '')));
    await assert.rejects(
      listDirectory(dir, accounts, { depth: 1, maxEntries: 10 }),
      (error) => kindOf(error) === 'resource_exhausted',
    );
  });
});

describe('directory watches', { timeout: 30_000 }, () => {
  const open = (
    path: string,
    options: { recursive?: boolean; maxEvents?: number; ownWrites?: OwnWrites } = {},
  ) =>
    DirectoryWatch.open(path, {
      recursive: options.recursive ?? false,
      includeEntry: false,
      maxEvents: options.maxEvents ?? 1000,
      maxDirectories: 100,
      accounts,
      ownWrites: options.ownWrites ?? new OwnWrites(),
    });

  /** Takes events until `done` says the expected one has come (the watch delivers them in order). */
  async function eventsUntil(watch: DirectoryWatch, done: (events: WatchEvent[]) => boolean) {
    const events: WatchEvent[] = [];
    const never = new AbortController().signal;
    while (!done(events)) {
      await watch.waitForEvents(never);
      events.push(...watch.take());
    }
    return events.map(({ name, type }) => `${type} ${name}`);
  }
  const has = (text: string) => (events: WatchEvent[]) =>
    events.some(({ name, type }) => `${type} ${name}` === text);

  test('plain file operations: create, write, chmod, rename, remove', async () => {
    const dir = join(root, 'watch-plain');
    await mkdir(dir);
    const watch = await open(dir);
    try {
      await writeFile(join(dir, 'f'), 'data');
      const seen = await eventsUntil(watch, has('write f'));
      // A chmod is told from a write by its timestamps (only the change time moves), so it must
      // not share the write's clock tick: the watch looked at the file for the write, which
      // makes the kernel stamp the next change finely.
      await chmod(join(dir, 'f'), 0o600);
      seen.push(...(await eventsUntil(watch, has('chmod f'))));
      await rename(join(dir, 'f'), join(dir, 'g'));
      await rm(join(dir, 'g'));
      seen.push(...(await eventsUntil(watch, has('remove g'))));
      assert.deepEqual(seen, ['create f', 'write f', 'chmod f', 'rename f', 'create g', 'remove g']);
    } finally {
      watch.close();
    }
  });

  test("the daemon's atomic writes look like writes; its temporary files never show", async () => {
    const dir = join(root, 'watch-own');
    await mkdir(dir);
    const ownWrites = new OwnWrites();
    const watch = await open(dir, { ownWrites });
    try {
      await writeFile(join(dir, '.sandboxd-upload-0123456789abcdef'), 'looks like ours');
      await writeAtomically(join(dir, 'doc'), Readable.from([Buffer.from('one')]), { ownWrites });
      await writeAtomically(join(dir, 'doc'), Readable.from([Buffer.from('two')]), { ownWrites });
      await writeFile(join(dir, 'marker'), '');
      assert.deepEqual(await eventsUntil(watch, has('create marker')), [
        'create doc',
        'write doc',
        'write doc',
        'create marker',
      ]);
    } finally {
      watch.close();
    }
  });

  test('a reader that falls behind loses events and is told so, then the watch goes on', async () => {
    const dir = join(root, 'watch-overflow');
    await mkdir(dir);
    const watch = await open(dir, { maxEvents: 10 });
    try {
      // Directories, not files: each makes exactly one notice and one event, so every one of
      // them is accounted for below as taken or as lost, and none can arrive after `after`.
      const made = 40;
      await Promise.all(Array.from({ length: made }, (_, i) => mkdir(join(dir, `d${i}`))));
      const never = new AbortController().signal;
      let taken = 0;
      let lost = 0;
      const lossReports: unknown[] = [];
      while (taken + lost < made) {
        await watch.waitForEvents(never);
        try {
          const events = watch.take();
          assert.ok(events.length <= 10, `${events.length} events were held`);
          taken += events.length;
        } catch (error) {
          lossReports.push(error);
          assert.equal(kindOf(error), 'resource_exhausted');
          const count = /lost (\d+) events/.exec((error as Error).message);
          assert.ok(count, (error as Error).message);
          lost += Number(count[1]);
        }
      }
      assert.ok(lossReports.length >= 1, 'a reader that fell behind was not told');
      assert.equal(taken + lost, made);
      await mkdir(join(dir, 'after'));
      assert.deepEqual(await eventsUntil(watch, has('create after')), ['create after']);
    } finally {
      watch.close();
    }
  });

  test('a recursive watch follows new directories and reports what is already in them', async () => {
    const dir = join(root, 'watch-recursive');
    await mkdir(dir);
    const watch = await open(dir, { recursive: true });
    try {
      await mkdir(join(dir, 'x/y'), { recursive: true });
      await writeFile(join(dir, 'x/y/z'), 'deep');
      await rm(join(dir, 'x'), { recursive: true });
      const events = await eventsUntil(watch, has('remove x'));
      for (const expected of [
        'create x',
        'create x/y',
        'create x/y/z',
        'remove x/y/z',
        'remove x/y',
        'remove x',
      ]) {
        assert.ok(events.includes(expected), `${expected} in ${events.join(', ')}`);
      }
    } finally {
      watch.close();
    }
  });

  test('the watched directory going away ends the watch with not_found', async () => {
    const dir = join(root, 'watch-gone');
    await mkdir(dir);
    const watch = await open(dir);
    try {
      await rm(dir, { recursive: true });
      const never = new AbortController().signal;
      let failure: unknown;
      while (failure === undefined) {
        await watch.waitForEvents(never);
        try {
          watch.take();
        } catch (error) {
          failure = error;
        }
      }
      assert.equal(kindOf(failure), 'not_found');
    } finally {
      watch.close();
    }
  });

  test('a path that is not a directory cannot be watched', async () => {
    await writeFile(join(root, 'plain-file'), '');
    await assert.rejects(open(join(root, 'plain-file')), (error) => kindOf(error) === 'not_a_directory');
    await assert.rejects(open(join(root, 'no-such-dir')), (error) => kindOf(error) === 'not_found');
  });
});
