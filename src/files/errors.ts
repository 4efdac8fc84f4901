import { SandboxError } from '../core/errors.ts';

/** A failed file-system call as a core error a dialect can answer; unknown failures pass through. */
export function fileError(error: unknown, path: string): unknown {
  if (error instanceof SandboxError) return error;
  switch ((error as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return new SandboxError('not_found', `'${path}' does not exist`);
    case 'EISDIR':
      return new SandboxError('is_directory', `'${path}' is a directory`);
    case 'ENOTDIR':
      return new SandboxError('not_a_directory', `a component of '${path}' is not a directory`);
    case 'EEXIST':
    case 'ENOTEMPTY':
      return new SandboxError('already_exists', `'${path}' already exists`);
    case 'EACCES':
    case 'EPERM':
      return new SandboxError('permission_denied', `permission denied: '${path}'`);
    case 'EROFS':
      return new SandboxError('permission_denied', `'${path}' is on a read-only file system`);
    case 'ENOSPC':
    case 'EDQUOT':
      return new SandboxError('no_space', `no space left on the device for '${path}'`);
    case 'ENAMETOOLONG':
      return new SandboxError('invalid_argument', `path: '${path}' is too long`);
    case 'ELOOP':
      return new SandboxError('invalid_argument', `path: '${path}' has too many levels of symbolic links`);
    default:
      return error;
  }
}

/** Runs a file-system call, turning its failure into a core error about `path`. */
export async function onPath<T>(path: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw fileError(error, path);
  }
}
