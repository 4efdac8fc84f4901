import { isAbsolute, resolve } from 'node:path';
import { SandboxError } from './errors.ts';

/**
 * An absolute, normalised path: absolute paths as given, `~` and relative paths from `home`.
 * `..` is resolved, not refused: the operating system's permissions are the boundary. The one
 * rule for every path a client sends: files, and a process's working directory.
 */
export function resolvePath(path: string, home: string, field = 'path'): string {
  if (path === '') throw new SandboxError('invalid_argument', `${field}: required`);
  if (path.includes('\0'))
    throw new SandboxError('invalid_argument', `${field}: must not contain a NUL byte`);
  if (path === '~' || path.startsWith('~/')) return resolve(home, `.${path.slice(1)}`);
  if (path.startsWith('~')) {
    throw new SandboxError(
      'invalid_argument',
      `${field}: '${path}' names another user's home; give it in full`,
    );
  }
  return isAbsolute(path) ? resolve(path) : resolve(home, path);
}
