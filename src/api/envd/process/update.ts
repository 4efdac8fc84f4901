import { Code, ConnectError } from '@connectrpc/connect';
import type { ProcessTable } from '../../../core/process-table.ts';
import type { UpdateRequest } from '../../../gen/process/process_pb.ts';
import { translated } from '../errors.ts';
import { selectProcess } from './selector.ts';

/** Update: resize a process's terminal. */
export function update(table: ProcessTable) {
  return async (request: UpdateRequest) => {
    const target = selectProcess(table, request.process);
    const size = request.pty?.size;
    if (!size) return {};
    if (size.cols < 1 || size.rows < 1)
      throw new ConnectError('pty.size: cols and rows must be positive', Code.InvalidArgument);
    await translated(() => target.resize({ cols: size.cols, rows: size.rows }));
    return {};
  };
}
