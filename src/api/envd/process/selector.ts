import { Code, ConnectError } from '@connectrpc/connect';
import type { SandboxProcess } from '../../../core/process.ts';
import type { ProcessTable } from '../../../core/process-table.ts';
import type { ProcessSelector } from '../../../gen/process/process_pb.ts';

/** The process a selector names, by pid or by tag; `not_found` when there is none. */
export function selectProcess(table: ProcessTable, selector: ProcessSelector | undefined): SandboxProcess {
  const choice = selector?.selector;
  if (choice?.case === 'pid') {
    const found = table.find(choice.value);
    if (found) return found;
    throw new ConnectError(`process with pid ${choice.value} not found`, Code.NotFound);
  }
  if (choice?.case === 'tag') {
    // A tag may be all digits: it is looked up as a name, never as a pid.
    const found = table.named(choice.value);
    if (found) return found;
    throw new ConnectError(`process with tag ${choice.value} not found`, Code.NotFound);
  }
  throw new ConnectError('process selector: give a pid or a tag', Code.InvalidArgument);
}
