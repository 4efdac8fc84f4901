import { type Command, InvalidArgumentError } from 'commander';
import type { SandboxClient } from '../client/index.ts';
import { type ConnectionOptions, example, reconnectNotice, run, withConnection } from './connection.ts';
import { reportTruncation, writeLines } from './lines.ts';

interface LogsOptions extends ConnectionOptions {
  follow?: boolean;
  after?: number;
}

const PAGE = 1000;

export function logsCommand(program: Command): void {
  withConnection(program.command('logs'))
    .summary("print or follow a process's output")
    .description(
      "print a process's output lines (stdout and stderr, in the order they were read); with -f, " +
        'follow them until the process ends, resuming where it was after a dropped connection',
    )
    .argument('<process>', 'a pid or a process name')
    .option('-f, --follow', 'follow new lines until the process ends')
    .option('--after <id>', 'only lines after this line id (an SSE id of the follow stream)', lineId)
    .addHelpText('after', example('sandboxd logs web', 'sandboxd logs -f 4242 | grep -i error'))
    .action((ref: string, options: LogsOptions) =>
      run(
        options,
        (client) => (options.follow ? follow(client, ref, options) : snapshot(client, ref, options)),
        {
          subject: { kind: 'process', ref },
        },
      ),
    );
}

function lineId(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError('expected a line id (a non-negative integer)');
  return Number(text);
}

async function follow(client: SandboxClient, ref: string, { after }: LogsOptions): Promise<number> {
  for await (const lines of client.follow(ref, {
    after,
    onRetry: reconnectNotice(),
    onTruncated: reportTruncation,
  }))
    await writeLines(lines, { split: false });
  return 0;
}

/** The complete lines so far, a page at a time. */
async function snapshot(client: SandboxClient, ref: string, { after }: LogsOptions): Promise<number> {
  let cursor = after;
  for (;;) {
    const page = await client.output(ref, { after: cursor, limit: PAGE });
    if (page.lines.length > 0) {
      const text = `${page.lines.join('\n')}\n`;
      if (!process.stdout.write(text)) await new Promise((resolve) => process.stdout.once('drain', resolve));
    }
    if (page.line_count < PAGE) return 0;
    cursor = page.next_after;
  }
}
