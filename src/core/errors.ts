/**
 * Failures the core reports. Each protocol adapter maps a kind to its own dialect
 * (an HTTP status and code, or a Connect error code).
 */
export type SandboxErrorKind =
  | 'invalid_argument'
  | 'spawn_failed'
  | 'bad_cwd'
  | 'not_found'
  | 'name_taken'
  | 'invalid_signal'
  | 'not_running'
  | 'stdin_not_writable'
  | 'wrong_input_kind'
  | 'not_managed'
  | 'resource_exhausted'
  | 'stdin_queue_full'
  | 'invalid_user'
  | 'is_directory'
  | 'not_a_directory'
  | 'already_exists'
  | 'permission_denied'
  | 'no_space'
  | 'timed_out';

export class SandboxError extends Error {
  constructor(
    readonly kind: SandboxErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'SandboxError';
  }
}
