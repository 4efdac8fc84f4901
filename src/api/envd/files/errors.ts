import type { ServerResponse } from 'node:http';
import { SandboxError, type SandboxErrorKind } from '../../../core/errors.ts';
import { BodyError } from '../../../http/body.ts';
import { sendJson } from '../../../http/json.ts';

/** An answer of the plain /files routes: `{message, code}` with code = the HTTP status. */
export class FilesError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

// Every kind, so that the compiler names one added to the core and not mapped here.
const STATUS: Record<SandboxErrorKind, number> = {
  invalid_argument: 400,
  spawn_failed: 400,
  bad_cwd: 400,
  invalid_signal: 400,
  is_directory: 400,
  not_a_directory: 400,
  not_running: 400,
  stdin_not_writable: 400,
  wrong_input_kind: 400,
  not_managed: 400,
  invalid_user: 401,
  permission_denied: 403,
  not_found: 404,
  name_taken: 409,
  already_exists: 409,
  resource_exhausted: 429,
  stdin_queue_full: 429,
  no_space: 507,
  timed_out: 408,
};

export function sendFilesError(res: ServerResponse, error: unknown): void {
  let status = 500;
  let message = 'internal error';
  if (error instanceof FilesError || error instanceof BodyError) {
    ({ status, message } = error);
  } else if (error instanceof SandboxError) {
    status = STATUS[error.kind];
    message = error.message;
  }
  if (status === 500) console.error('sandboxd: file request failed:', error);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, status, { message, code: status });
}
