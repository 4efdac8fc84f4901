import { isAbsolute, resolve } from 'node:path';
import { SandboxError } from '../core/errors.ts';

/**
 * An absolute, normalised path: absolute paths as given, `~` and relative paths from `home`.
 * `..` is resolved, not refused: the operating system's permissions are the boundary.
 */
export function resolvePath(path: string, home: string): string {
  if (path === '') throw new SandboxError('invalid_argument', 'path: required');
  if (path.includes('\0')) throw new SandboxError('invalid_argument', 'path: must not contain a NUL byte');
  if (path === '~' || path.startsWith('~/')) return resolve(home, `.${path.slice(1)}`);
  if (path.startsWith('~')) {
    throw new SandboxError('invalid_argument', `path: '${path}' names another user's home; give it in full`);
  }
  return isAbsolute(path) ? resolve(path) : resolve(home, path);
}
