import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { useDaemon } from './helpers/daemon.ts';
import { runSdkScenario } from './helpers/tensorlake-sdk.ts';

let root: string;
const daemon = useDaemon({
  args: ['--token', 'files-token'],
  afterStart: async () => {
    root = await mkdtemp(join(tmpdir(), 'sandboxd-sdk-files-'));
  },
  afterStop: async () => {
    await rm(root, { recursive: true, force: true });
  },
});

test('the tensorlake SDK reads, writes, uploads, lists and deletes files', async () => {
  const dir = join(root, 'work');
  const seen = await runSdkScenario('tensorlake-files-scenario.mjs', daemon, { SANDBOXD_FILES_DIR: dir });
  assert.equal(seen.failure, undefined, seen.failure);
  assert.equal(seen.read, 'hello from the sdk\n');
  assert.equal(seen.binaryRoundTrip, true);
  assert.equal(seen.uploadRoundTrip, true);
  assert.equal(seen.list.path, dir);
  // Directories first, then files by name; a directory has no size.
  assert.deepEqual(seen.list.entries, [
    { name: 'nested', isDir: true, size: null, modifiedAtIsDate: true },
    { name: 'binary.bin', isDir: false, size: 300_000, modifiedAtIsDate: true },
    { name: 'uploaded.bin', isDir: false, size: 3 * 1024 * 1024, modifiedAtIsDate: true },
  ]);
  assert.deepEqual(seen.afterDelete, ['nested', 'uploaded.bin']);
  assert.deepEqual(seen.readMissing, { name: 'RemoteAPIError', statusCode: 404 });
  assert.deepEqual(seen.deleteMissing, { name: 'RemoteAPIError', statusCode: 404 });
  assert.deepEqual(seen.readDirectory, { name: 'RemoteAPIError', statusCode: 400 });
  assert.deepEqual(seen.listFile, { name: 'RemoteAPIError', statusCode: 400 });
});
