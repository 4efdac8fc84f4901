import type { ProcessTable } from '../../../core/process-table.ts';
import type { SendInputRequest } from '../../../gen/process/process_pb.ts';
import { deliverInput } from './input.ts';
import { selectProcess } from './selector.ts';

/** SendInput: stdin or pty bytes, applied in the order they arrive. */
export function sendInput(table: ProcessTable) {
  return async (request: SendInputRequest) => {
    await deliverInput(selectProcess(table, request.process), request.input);
    return {};
  };
}
