import { Code, ConnectError } from '@connectrpc/connect';
import type { SandboxProcess } from '../../../core/process.ts';
import type { ProcessTable } from '../../../core/process-table.ts';
import type { StreamInputRequest } from '../../../gen/process/process_pb.ts';
import { deliverInput } from './input.ts';
import { selectProcess } from './selector.ts';

/** StreamInput: the first message selects the process; data messages follow, in order. */
export function streamInput(table: ProcessTable) {
  return async (requests: AsyncIterable<StreamInputRequest>) => {
    let target: SandboxProcess | undefined;
    for await (const { event } of requests) {
      if (event.case === 'start') {
        target = selectProcess(table, event.value.process);
      } else if (event.case === 'data') {
        if (!target)
          throw new ConnectError('the first message must select the process', Code.FailedPrecondition);
        await deliverInput(target, event.value.input);
      }
    }
    return {};
  };
}
