import { type FileHandle, open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { SandboxError } from '../core/errors.ts';
import { fileError } from './errors.ts';

/** An open file to read from: the file as it was when opened, whatever replaces it later. */
export class OpenFile {
  private constructor(
    private readonly handle: FileHandle,
    readonly path: string,
    readonly size: number,
    readonly modifiedMs: number,
  ) {}

  static async open(path: string): Promise<OpenFile> {
    let handle: FileHandle | undefined;
    try {
      handle = await open(path, 'r');
      const stats = await handle.stat();
      if (stats.isDirectory()) throw new SandboxError('is_directory', `'${path}' is a directory`);
      return new OpenFile(handle, path, stats.size, stats.mtimeMs);
    } catch (error) {
      await handle?.close().catch(() => {});
      throw fileError(error, path);
    }
  }

  /** The bytes from `start` to `end` inclusive (the whole file by default); closes the file when done. */
  stream({ start = 0, end }: { start?: number; end?: number } = {}): Readable {
    // 1 MiB reads: fewer trips through the thread pool; measured faster than 64 or 256 KiB.
    return this.handle.createReadStream({ start, end, highWaterMark: 1024 * 1024 });
  }

  /** For a file that will not be streamed after all. */
  async close(): Promise<void> {
    await this.handle.close().catch(() => {});
  }
}
