import type { Command } from 'commander';
import type { SandboxClient } from '../client/index.ts';
import { type ConnectionOptions, example, run, withConnection } from './connection.ts';

export interface ListCommand<T> {
  name: string;
  description: string;
  /** What the JSON objects are, in the daemon's words. */
  objects: string;
  examples: string[];
  list(client: SandboxClient): Promise<T[]>;
  table(items: T[]): string;
}

/** A command that prints a list of the daemon's: a table for a person, or `--json` as the daemon gave it. */
export function listCommand<T>(program: Command, command: ListCommand<T>): void {
  withConnection(program.command(command.name))
    .description(command.description)
    .option('--json', `print the list as JSON (the daemon's ${command.objects} objects)`)
    .addHelpText('after', example(...command.examples))
    .action((options: ConnectionOptions & { json?: boolean }) =>
      run(options, async (client) => {
        const items = await command.list(client);
        process.stdout.write(options.json ? `${JSON.stringify(items, null, 2)}\n` : command.table(items));
        return 0;
      }),
    );
}
