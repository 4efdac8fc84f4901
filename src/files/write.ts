import type { Stats } from 'node:fs';
import { type FileHandle, lstat, open, realpath, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { SandboxError } from '../core/errors.ts';
import { crypto } from '../node-on-demand.ts';
import { makeDirectories, type Owner } from './directories.ts';
import { fileError } from './errors.ts';
import { writeMetadata } from './metadata.ts';
import type { OwnWrites } from './own-writes.ts';

const TEMPORARY_PREFIX = '.sandboxd-upload-';
const TEMPORARY_NAME = /^\.sandboxd-upload-[0-9a-f]{16}$/;

/** Whether a file name is one of the daemon's own temporary files. */
export function isTemporaryName(name: string): boolean {
  return TEMPORARY_NAME.test(name);
}

export interface WriteOptions {
  /** Who the new file and the directories created for it belong to; absent: kept, or the daemon's. */
  owner?: Owner;
  /** Stored as user xattrs, replacing what the old file had. */
  metadata?: Record<string, string>;
  ownWrites?: OwnWrites;
}

export interface WriteResult {
  /** Where the bytes went: the target, or the file a symbolic link at the target leads to. */
  path: string;
  created: boolean;
}

/**
 * Writes a stream to a file atomically: into a temporary file beside the target, flushed to
 * disk, then renamed over it, so a reader sees the old file or the new one, never a mix, and a
 * failed or aborted write leaves the old file as it was and no temporary file behind. Parents
 * are created; an existing file's mode (and, unless `owner` says otherwise, its owner) is kept;
 * a new file gets the usual mode (0666 less the umask).
 */
export async function writeAtomically(
  requested: string,
  source: Readable,
  { owner, metadata, ownWrites }: WriteOptions = {},
): Promise<WriteResult> {
  const { path, existing } = await target(requested);
  if (existing?.isDirectory()) throw new SandboxError('is_directory', `'${path}' is a directory`);
  const directory = dirname(path);
  await makeDirectories(directory, owner);
  const temporary = join(directory, TEMPORARY_PREFIX + crypto().randomBytes(8).toString('hex'));
  let handle: FileHandle | undefined;
  try {
    handle = await open(temporary, 'wx', existing ? existing.mode & 0o7777 : 0o666);
    await takeOver(handle, existing, owner);
    if (metadata && Object.keys(metadata).length > 0) await writeMetadata(temporary, metadata);
    // flush: fsync before the stream closes the file. Up to 1 MiB waits while a write is under
    // way, so the socket is read meanwhile (measured faster than 256 KiB or 4 MiB).
    const output = handle.createWriteStream({ flush: true, highWaterMark: 1024 * 1024 });
    handle = undefined;
    await pump(source, output);
    ownWrites?.record(path, existing !== undefined);
    await rename(temporary, path);
    return { path, created: existing === undefined };
  } catch (error) {
    await handle?.close().catch(() => {});
    await unlink(temporary).catch(() => {});
    throw fileError(error, path);
  }
}

/**
 * Copies a stream into a file with backpressure. Unlike pipeline() it leaves the source alone
 * when the file fails: the source may be a request, and its connection must live on to carry
 * the answer.
 */
async function pump(source: Readable, destination: Writable): Promise<void> {
  source.pipe(destination);
  try {
    await Promise.all([finished(source, { writable: false }), finished(destination)]);
  } catch (error) {
    source.unpipe(destination);
    destination.destroy();
    throw error;
  }
}

/** A symbolic link at the target is written through, as a plain write would. */
async function target(requested: string): Promise<{ path: string; existing: Stats | undefined }> {
  const look = (candidate: string) =>
    lstat(candidate).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw fileError(error, candidate);
    });
  const own = await look(requested);
  if (!own?.isSymbolicLink()) return { path: requested, existing: own };
  // A link that leads nowhere is replaced by a new file.
  const path = await realpath(requested).catch(() => requested);
  return { path, existing: path === requested ? undefined : await look(path) };
}

/** The mode (exactly, whatever the umask), owner and group the new file must have. */
async function takeOver(
  handle: FileHandle,
  existing: Stats | undefined,
  owner: Owner | undefined,
): Promise<void> {
  if (existing) await handle.chmod(existing.mode & 0o7777);
  const wanted = owner ?? (existing ? { uid: existing.uid, gid: existing.gid } : undefined);
  if (!wanted) return;
  try {
    await handle.chown(wanted.uid, wanted.gid);
  } catch (error) {
    // A daemon that is not root cannot give files away; the file stays its own.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM' || owner) throw error;
  }
  // chown clears setuid and setgid bits; put them back.
  if (existing && existing.mode & 0o6000) await handle.chmod(existing.mode & 0o7777);
}
