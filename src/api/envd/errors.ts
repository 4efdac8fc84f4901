import { Code, ConnectError } from '@connectrpc/connect';
import { SandboxError, type SandboxErrorKind } from '../../core/errors.ts';

const BY_KIND: Record<SandboxErrorKind, Code> = {
  invalid_argument: Code.InvalidArgument,
  bad_cwd: Code.InvalidArgument,
  invalid_signal: Code.InvalidArgument,
  spawn_failed: Code.Internal,
  not_found: Code.NotFound,
  name_taken: Code.AlreadyExists,
  not_running: Code.FailedPrecondition,
  stdin_not_writable: Code.FailedPrecondition,
  wrong_input_kind: Code.FailedPrecondition,
  not_managed: Code.FailedPrecondition,
  resource_exhausted: Code.ResourceExhausted,
  stdin_queue_full: Code.ResourceExhausted,
  invalid_user: Code.Unauthenticated,
  is_directory: Code.InvalidArgument,
  not_a_directory: Code.InvalidArgument,
  already_exists: Code.AlreadyExists,
  permission_denied: Code.PermissionDenied,
  no_space: Code.ResourceExhausted,
  timed_out: Code.DeadlineExceeded,
};

/** Core failures as Connect errors; anything else passes through (Connect reports it as internal). */
function toConnectError(error: unknown): unknown {
  if (error instanceof SandboxError) return new ConnectError(error.message, BY_KIND[error.kind]);
  return error;
}

/** Runs a handler body, translating core failures. */
export async function translated<T>(body: () => Promise<T> | T): Promise<T> {
  try {
    return await body();
  } catch (error) {
    throw toConnectError(error);
  }
}
