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

const STATUS: Partial<Record<SandboxErrorKind, number>> = {
  invalid_argument: 400,
  is_directory: 400,
  not_a_directory: 400,
  invalid_user: 401,
  permission_denied: 403,
  not_found: 404,
  already_exists: 409,
  resource_exhausted: 429,
  no_space: 507,
};

export function sendFilesError(res: ServerResponse, error: unknown): void {
  let status = 500;
  let message = 'internal error';
  if (error instanceof FilesError || error instanceof BodyError) {
    ({ status, message } = error);
  } else if (error instanceof SandboxError) {
    status = STATUS[error.kind] ?? 500;
    message = error.message;
  }
  if (status === 500) console.error('sandboxd: file request failed:', error);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, status, { message, code: status });
}
