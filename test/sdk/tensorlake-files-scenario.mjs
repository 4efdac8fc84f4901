// Drives the files routes through the official tensorlake SDK (Node >= 22.19, so the test runs
// it with the Node 22 binary) in a directory the test gives (SANDBOXD_FILES_DIR), and prints
// what it observed as one JSON object; the assertions live in tensorlake-files.test.ts.
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connectSandbox, errorOf } from './sandbox.mjs';

const dir = process.env.SANDBOXD_FILES_DIR;
const sandbox = await connectSandbox('sdk-files');
const seen = {};

try {
  await sandbox.writeFile(join(dir, 'nested/hello.txt'), new TextEncoder().encode('hello from the sdk\n'));
  seen.read = Buffer.from(await sandbox.readFile(join(dir, 'nested/hello.txt'))).toString();

  // Bytes that are not text survive the trip both ways.
  const binary = randomBytes(300_000);
  await sandbox.writeFile(join(dir, 'binary.bin'), binary);
  seen.binaryRoundTrip = Buffer.from(await sandbox.readFile(join(dir, 'binary.bin'))).equals(binary);

  // uploadFile streams a local file (the SDK's native client carries it; the JS class does not wrap it).
  const local = join(dir, '..', 'local-upload.bin');
  const uploaded = randomBytes(3 * 1024 * 1024);
  await writeFile(local, uploaded);
  const native = await sandbox.proxy.client();
  await native.uploadFile(join(dir, 'uploaded.bin'), local);
  seen.uploadRoundTrip = Buffer.from(await sandbox.readFile(join(dir, 'uploaded.bin'))).equals(
    await readFile(local),
  );

  const listing = await sandbox.listDirectory(dir);
  seen.list = {
    path: listing.path,
    entries: listing.entries.map((e) => ({
      name: e.name,
      isDir: e.isDir,
      size: e.size ?? null,
      modifiedAtIsDate: e.modifiedAt instanceof Date,
    })),
  };

  await sandbox.deleteFile(join(dir, 'binary.bin'));
  seen.afterDelete = (await sandbox.listDirectory(dir)).entries.map((e) => e.name);
  seen.readMissing = await errorOf(sandbox.readFile(join(dir, 'binary.bin')));
  seen.deleteMissing = await errorOf(sandbox.deleteFile(join(dir, 'binary.bin')));
  seen.readDirectory = await errorOf(sandbox.readFile(dir));
  seen.listFile = await errorOf(sandbox.listDirectory(join(dir, 'uploaded.bin')));
} catch (error) {
  seen.failure = String(error?.stack ?? error);
}
process.stdout.write(JSON.stringify(seen));
