import { type Command, InvalidArgumentError } from 'commander';
import { DaemonError } from '../client/index.ts';
import { parsePort } from '../ports/port-number.ts';
import { type ConnectionOptions, example, run, withConnection } from './connection.ts';
import { milliseconds } from './milliseconds.ts';

const DEFAULT_TIMEOUT_MS = 30_000;

export function waitPortCommand(program: Command): void {
  withConnection(program.command('wait-port'))
    .description('wait until a port in the sandbox accepts TCP connections (on 127.0.0.1 or ::1)')
    .argument('<port>', 'the port, 1 to 65535', portArgument)
    .option('--timeout <ms>', 'give up after this long, exit code 1', milliseconds, DEFAULT_TIMEOUT_MS)
    .addHelpText(
      'after',
      example(
        'sandboxd wait-port 3000',
        'sandboxd wait-port 5432 --timeout 60000 && sandboxd exec -- psql -h 127.0.0.1',
      ),
    )
    .action((port: number, options: ConnectionOptions & { timeout: number }) =>
      run(options, async (client) => {
        try {
          const ready = await client.waitForPort(port, options.timeout);
          process.stdout.write(
            `port ${port} accepts connections on ${ready.address} (waited ${ready.waited_ms} ms)\n`,
          );
          return 0;
        } catch (error) {
          if (!(error instanceof DaemonError && error.status === 408)) throw error;
          process.stderr.write(`sandboxd: ${error.message}\n`);
          return 1;
        }
      }),
    );
}

function portArgument(text: string): number {
  const port = parsePort(text);
  if (port === undefined) throw new InvalidArgumentError('expected a port, 1 to 65535');
  return port;
}
