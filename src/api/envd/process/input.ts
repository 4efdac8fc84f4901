import { Code, ConnectError } from '@connectrpc/connect';
import type { SandboxProcess } from '../../../core/process.ts';
import type { ProcessInput } from '../../../gen/process/process_pb.ts';
import { translated } from '../errors.ts';

/** Delivers one piece of input: stdin bytes to the pipe, pty bytes to the terminal. */
export function deliverInput(target: SandboxProcess, input: ProcessInput | undefined): Promise<void> {
  return translated(async () => {
    const choice = input?.input;
    if (choice?.case === 'stdin') await target.writeStdin(Buffer.from(choice.value));
    else if (choice?.case === 'pty') target.writeTerminal(Buffer.from(choice.value));
    else throw new ConnectError('input: give stdin or pty bytes', Code.InvalidArgument);
  });
}
