import type { Command } from 'commander';
import { type ConnectionOptions, example, run, withConnection } from './connection.ts';
import { parseSignal } from './signals.ts';

export function signalCommand(program: Command): void {
  withConnection(program.command('signal'))
    .description("send a signal to a process's group (to the process alone with --leader-only)")
    .argument('<process>', 'a pid or a process name')
    .argument('<signal>', 'a name or number: TERM, SIGTERM and 15 are the same', parseSignal)
    .option('--leader-only', 'signal the process itself, not its process group')
    .addHelpText('after', example('sandboxd signal web HUP', 'sandboxd signal 4242 SIGUSR1'))
    .action((ref: string, signal: number, options: ConnectionOptions & { leaderOnly?: boolean }) =>
      run(
        options,
        async (client) => {
          await client.signal(ref, signal, { group: !options.leaderOnly });
          return 0;
        },
        { subject: { kind: 'process', ref } },
      ),
    );
}
