import { Code, ConnectError } from '@connectrpc/connect';
import type { ProcessTable } from '../../../core/process-table.ts';
import { SIGTERM } from '../../../core/signals.ts';
import { type SendSignalRequest, Signal } from '../../../gen/process/process_pb.ts';
import { translated } from '../errors.ts';
import { selectProcess } from './selector.ts';

/** SendSignal: SIGTERM to the whole process group, or SIGKILL to every descendant. */
export function sendSignal(table: ProcessTable) {
  return async (request: SendSignalRequest) => {
    const target = selectProcess(table, request.process);
    if (!target.running) throw new ConnectError(`process with pid ${target.pid} not found`, Code.NotFound);
    if (request.signal === Signal.SIGKILL) await table.kill(target);
    else if (request.signal === Signal.SIGTERM) await translated(() => target.sendSignal(SIGTERM));
    else
      throw new ConnectError(
        `signal ${request.signal} is not supported: use SIGTERM or SIGKILL`,
        Code.InvalidArgument,
      );
    return {};
  };
}
