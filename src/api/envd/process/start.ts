import { Code, ConnectError, type HandlerContext } from '@connectrpc/connect';
import { SandboxError } from '../../../core/errors.ts';
import type { ProcessTable } from '../../../core/process-table.ts';
import type { FileSystem } from '../../../files/file-system.ts';
import type { StartRequest } from '../../../gen/process/process_pb.ts';
import { translated } from '../errors.ts';
import { basicUserName } from '../filesystem/user.ts';
import { processEvents } from './events.ts';
import { toCoreStart } from './start-request.ts';

/**
 * Start: spawn, then stream start, output and end. `Connect-Timeout-Ms` is the command's
 * lifetime: at the deadline the process and its descendants are killed. A client that merely disconnects
 * leaves the process running. A user named in `Authorization: Basic` runs it, from their home.
 */
export function start(table: ProcessTable, files: FileSystem) {
  return async function* (request: StartRequest, context: HandlerContext) {
    if (!request.process?.cmd) throw new ConnectError('process.cmd is required', Code.InvalidArgument);
    const name = basicUserName(context);
    if (name !== undefined) await files.user(name).catch(invalidUsername(name));
    const started = await translated(() => table.start(toCoreStart(request, name, context.timeoutMs())));
    // The stream's own deadline may pass a moment before the process's: what the stream
    // reports as timed out is killed, whichever comes first.
    const onDeadline = () => {
      if (isDeadline(context.signal.reason)) started.expire();
    };
    context.signal.addEventListener('abort', onDeadline, { once: true });
    try {
      yield* processEvents(started, context);
    } finally {
      context.signal.removeEventListener('abort', onDeadline);
    }
    if (started.timedOut)
      throw new ConnectError('the command outlived Connect-Timeout-Ms and was killed', Code.DeadlineExceeded);
  };
}

/** envd's answer to a name with no account. */
function invalidUsername(name: string) {
  return (error: unknown): never => {
    if (error instanceof SandboxError && error.kind === 'invalid_user')
      throw new ConnectError(`invalid username: '${name}'`, Code.Unauthenticated);
    throw error;
  };
}
const isDeadline = (reason: unknown) =>
  reason instanceof ConnectError && reason.code === Code.DeadlineExceeded;
