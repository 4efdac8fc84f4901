import type { Command } from 'commander';
import { DaemonError } from '../client/index.ts';
import { type ConnectionOptions, example, explain, run, withConnection } from './connection.ts';

export function killCommand(program: Command): void {
  withConnection(program.command('kill'))
    .description("SIGKILL a process's whole group (no error if it has already ended)")
    .argument('<process...>', 'pids or process names')
    .addHelpText('after', example('sandboxd kill 4242', 'sandboxd kill web worker'))
    .action((refs: string[], options: ConnectionOptions) =>
      run(options, async (client) => {
        // Each one is tried, as kill(1) does; the exit code says whether any failed.
        let code = 0;
        for (const ref of refs) {
          await client.kill(ref).catch((error: unknown) => {
            if (!(error instanceof DaemonError && error.status === 404)) throw error;
            code = explain(error, client, 1, { kind: 'process', ref });
          });
        }
        return code;
      }),
    );
}
