import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, posix } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Command } from 'commander';
import { DaemonError, type SandboxClient } from '../client/index.ts';
import { crypto } from '../node-on-demand.ts';
import { type ConnectionOptions, example, run, UsageError, withConnection } from './connection.ts';
import { progress } from './progress.ts';

export function cpCommand(program: Command): void {
  withConnection(program.command('cp'))
    .summary('copy a file between here and the sandbox')
    .description(
      'copy a file between here and the sandbox, streamed both ways. A path with a leading `:` is in the ' +
        'sandbox; `-` is stdin or stdout. A destination that is a directory (or ends with /) gets the ' +
        "source's name. A download replaces the local file only once it is complete.",
    )
    .argument('<source>', 'a local path, :path in the sandbox, or - for stdin')
    .argument('<destination>', 'a local path, :path in the sandbox, or - for stdout')
    .addHelpText(
      'after',
      example(
        'sandboxd cp ./build.tar.gz :/work/',
        'sandboxd cp :/work/results.json ./results.json',
        'pg_dump db | sandboxd cp - :/tmp/db.sql',
      ),
    )
    .action((source: string, destination: string, options: ConnectionOptions) => {
      const remote = source.startsWith(':') ? source : destination;
      return run(
        options,
        async (client) => {
          if (source.startsWith(':') === destination.startsWith(':')) {
            throw new UsageError('one side must be in the sandbox (a path starting with :), the other here');
          }
          if (source.startsWith(':')) await download(client, sandboxPath(source), destination);
          else await upload(client, source, sandboxPath(destination));
          return 0;
        },
        { subject: { kind: 'file', ref: remote } },
      );
    });
}

function sandboxPath(ref: string): string {
  const path = ref.slice(1);
  if (path === '') throw new UsageError(`'${ref}' names no file: write :/path/in/the/sandbox`);
  return path;
}

async function upload(client: SandboxClient, source: string, target: string): Promise<void> {
  let size: number | undefined;
  let input: Readable;
  if (source === '-') {
    input = process.stdin;
  } else {
    const stats = await stat(source).catch((error: NodeJS.ErrnoException) => {
      throw new Error(error.code === 'ENOENT' ? `no such file here: ${source}` : error.message);
    });
    if (stats.isDirectory()) throw new UsageError(`${source} is a directory; cp copies one file`);
    size = stats.size;
    input = createReadStream(source);
    if (target.endsWith('/') || (await isSandboxDirectory(client, target))) {
      target = posix.join(target, basename(source));
    }
  }
  const counted = input.pipe(progress(source === '-' ? 'stdin' : basename(source), size));
  input.on('error', (error) => counted.destroy(error));
  await client.writeFile(target, counted, { size });
}

async function isSandboxDirectory(client: SandboxClient, path: string): Promise<boolean> {
  try {
    await client.listFiles(path);
    return true;
  } catch (error) {
    if (error instanceof DaemonError && (error.status === 404 || error.code === 'NOT_A_DIRECTORY'))
      return false;
    throw error;
  }
}

async function download(client: SandboxClient, source: string, target: string): Promise<void> {
  const response = await client.readFile(source);
  const length = Number(response.headers.get('content-length') ?? Number.NaN);
  const size = Number.isFinite(length) ? length : undefined;
  const body = Readable.fromWeb(response.body as WebReadableStream);
  const bar = progress(posix.basename(source), size);
  if (target === '-') {
    await pipeline(body, bar, process.stdout as Writable, { end: false });
    return;
  }
  let existing = await stat(target).catch(() => undefined);
  if (target.endsWith('/') || existing?.isDirectory()) {
    target = join(target, posix.basename(source));
    existing = await stat(target).catch(() => undefined);
  }
  // Written beside the target and renamed over it: the old file stays whole until the end.
  const partial = join(
    dirname(target),
    `.${basename(target)}.sandboxd-${crypto().randomBytes(4).toString('hex')}`,
  );
  try {
    await pipeline(body, bar, createWriteStream(partial, { flags: 'wx' }));
    // A replaced file keeps its mode, as cp(1) keeps it.
    if (existing) await chmod(partial, existing.mode & 0o7777);
    await rename(partial, target);
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
}
