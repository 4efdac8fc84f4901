import type { HandlerContext } from '@connectrpc/connect';
import type { ProcessTable } from '../../../core/process-table.ts';
import type { ConnectRequest } from '../../../gen/process/process_pb.ts';
import { processEvents } from './events.ts';
import { selectProcess } from './selector.ts';

/** Connect: attach to a process; what it printed before is replayed, then live output, then its end. */
export function connect(table: ProcessTable) {
  return async function* (request: ConnectRequest, context: HandlerContext) {
    yield* processEvents(selectProcess(table, request.process), context);
  };
}
