import { Code, ConnectError } from '@connectrpc/connect';
import type { ProcessTable } from '../../../core/process-table.ts';
import { SIGTERM } from '../../../core/signals.ts';
import { type SendSignalRequest, Signal } from '../../../gen/process/process_pb.ts';
import { translated } from '../errors.ts';
import { selectProcess } from './selector.ts';

/** SendSignal: SIGTERM to the whole process group, or SIGKILL to every descendant. */
export function sendSignal(table: ProcessTable) {
  return async (request: SendSignalRequest) => {
    const process = selectProcess(table, request.process);
    if (!process.running) throw new ConnectError(`process with pid ${process.pid} not found`, Code.NotFound);
    if (request.signal === Signal.SIGKILL) await table.kill(process);
    else if (request.signal === Signal.SIGTERM) await translated(() => process.sendSignal(SIGTERM));
    else
      throw new ConnectError(
        `signal ${request.signal} is not supported: use SIGTERM or SIGKILL`,
        Code.InvalidArgument,
      );
    return {};
  };
}
