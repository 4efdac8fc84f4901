import { type Command, Option } from 'commander';
import { DaemonError } from '../client/index.ts';
import { type ConnectionOptions, example, run, withConnection } from './connection.ts';
import { milliseconds } from './milliseconds.ts';

const DEFAULT_TIMEOUT_MS = 30_000;

type Until = 'running' | 'healthy' | 'exited';

export function waitCommand(program: Command): void {
  withConnection(program.command('wait'))
    .description('wait until a process (by pid or name) is running, healthy or has exited')
    .argument('<process>', 'a pid, or a name')
    .addOption(new Option('--healthy', 'until its health check passes').conflicts(['running', 'exited']))
    .addOption(new Option('--running', 'until it runs (a managed one: its next incarnation)'))
    .addOption(new Option('--exited', 'until it has exited (the default)'))
    .option('--timeout <ms>', 'give up after this long, exit code 1', milliseconds, DEFAULT_TIMEOUT_MS)
    .addHelpText(
      'after',
      example(
        'sandboxd wait db --healthy && sandboxd exec --name app -- ./serve',
        'sandboxd wait 4242 --timeout 60000',
      ),
    )
    .action(
      (ref: string, options: ConnectionOptions & { healthy?: boolean; running?: boolean; timeout: number }) =>
        run(options, async (client) => {
          const until: Until = options.healthy ? 'healthy' : options.running ? 'running' : 'exited';
          try {
            const info = await client.waitForProcess(ref, until, options.timeout);
            process.stdout.write(`process ${info.pid}${info.name ? ` (${info.name})` : ''} is ${until}\n`);
            return 0;
          } catch (error) {
            if (!(error instanceof DaemonError && (error.status === 408 || error.status === 400)))
              throw error;
            process.stderr.write(`sandboxd: ${error.message}\n`);
            return 1;
          }
        }),
    );
}
