import { createRequire } from 'node:module';
import { SandboxError } from '../core/errors.ts';

type Xattr = typeof import('@napi-rs/xattr');
let xattr: Xattr | undefined;
/**
 * The addon on first use, by require(): an ESM import of its CommonJS loader has Node scan that
 * file for its exports, and the scan is hot enough for V8 to optimise it, 40-120 ms of
 * compiling at start-up and memory kept afterwards, for a feature few sandboxes use.
 */
function loadXattr(): Xattr {
  xattr ??= createRequire(import.meta.url)('@napi-rs/xattr') as Xattr;
  return xattr;
}

// User metadata lives in extended attributes under this prefix, so it travels with the file.
const PREFIX = 'user.e2b.';
const KEY = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;
const VALUE = /^[\x20-\x7e]*$/;

/** Refuses keys that are not HTTP tokens and values that are not printable ASCII. */
export function checkMetadata(metadata: Record<string, string>): void {
  for (const [key, value] of Object.entries(metadata)) {
    if (!KEY.test(key))
      throw new SandboxError('invalid_argument', `metadata key '${key}' is not an HTTP token`);
    if (!VALUE.test(value))
      throw new SandboxError('invalid_argument', `metadata value of '${key}' is not printable ASCII`);
  }
}

export async function writeMetadata(path: string, metadata: Record<string, string>): Promise<void> {
  for (const [key, value] of Object.entries(metadata)) {
    try {
      await loadXattr().setAttribute(path, PREFIX + key, value);
    } catch (error) {
      throw new SandboxError(
        'invalid_argument',
        `cannot store metadata on '${path}': ${(error as Error).message} (does the file system allow user xattrs?)`,
      );
    }
  }
}

/** The metadata stored on a file; a file system without xattrs simply has none. */
export async function readMetadata(path: string): Promise<Record<string, string>> {
  const names = await loadXattr()
    .listAttributes(path)
    .catch(() => [] as string[]);
  const metadata: Record<string, string> = {};
  for (const name of names) {
    if (!name.startsWith(PREFIX)) continue;
    const value = await loadXattr()
      .getAttribute(path, name)
      .catch(() => null);
    if (value !== null) metadata[name.slice(PREFIX.length)] = value.toString('latin1');
  }
  return metadata;
}
