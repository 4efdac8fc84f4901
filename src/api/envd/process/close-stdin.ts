import type { ProcessTable } from '../../../core/process-table.ts';
import type { CloseStdinRequest } from '../../../gen/process/process_pb.ts';
import { translated } from '../errors.ts';
import { selectProcess } from './selector.ts';

/** CloseStdin: EOF after the input accepted before it; idempotent; an error for a terminal. */
export function closeStdin(table: ProcessTable) {
  return async (request: CloseStdinRequest) => {
    const target = selectProcess(table, request.process);
    await translated(() => target.closeStdin());
    return {};
  };
}
