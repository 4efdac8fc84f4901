import type { ServerResponse } from 'node:http';
import './zod-setup.ts';
import * as z from 'zod';
import { SandboxError, type SandboxErrorKind } from '../../core/errors.ts';
import { BodyError } from '../../http/body.ts';
import { sendJson } from '../../http/json.ts';

/** An error in this dialect's shape: `{error, code}` with an HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const BY_KIND: Record<SandboxErrorKind, [number, string]> = {
  invalid_argument: [400, 'INVALID_REQUEST'],
  spawn_failed: [400, 'SPAWN_FAILED'],
  bad_cwd: [400, 'SPAWN_FAILED'],
  not_found: [404, 'NOT_FOUND'],
  name_taken: [409, 'NAME_TAKEN'],
  invalid_signal: [400, 'INVALID_SIGNAL'],
  not_running: [400, 'PROCESS_NOT_RUNNING'],
  stdin_not_writable: [400, 'STDIN_NOT_WRITABLE'],
  wrong_input_kind: [400, 'STDIN_NOT_WRITABLE'],
  not_managed: [400, 'NOT_MANAGED'],
  resource_exhausted: [429, 'RESOURCE_EXHAUSTED'],
  stdin_queue_full: [429, 'STDIN_QUEUE_FULL'],
  invalid_user: [400, 'INVALID_USER'],
  is_directory: [400, 'IS_DIRECTORY'],
  not_a_directory: [400, 'NOT_A_DIRECTORY'],
  already_exists: [409, 'ALREADY_EXISTS'],
  permission_denied: [403, 'PERMISSION_DENIED'],
  no_space: [507, 'NO_SPACE'],
  timed_out: [408, 'REQUEST_TIMEOUT'],
};

export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof SandboxError) {
    const [status, code] = BY_KIND[error.kind];
    return new ApiError(status, code, error.message);
  }
  if (error instanceof BodyError) {
    return error.status === 413
      ? new ApiError(413, 'PAYLOAD_TOO_LARGE', error.message)
      : new ApiError(400, 'INVALID_REQUEST', error.message);
  }
  if (error instanceof z.ZodError) {
    const issue = error.issues[0];
    const field = issue?.path.length ? issue.path.join('.') : 'body';
    return new ApiError(400, 'INVALID_REQUEST', `${field}: ${issue?.message ?? 'invalid'}`);
  }
  return new ApiError(500, 'INTERNAL', 'internal error');
}

export function sendError(res: ServerResponse, error: unknown): void {
  const { status, code, message } = toApiError(error);
  if (status === 500) console.error('sandboxd: request failed:', error);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, status, { error: message, code });
}
