import type { Command } from 'commander';
import type { ListeningPortInfo } from '../client/index.ts';
import { type ConnectionOptions, example, run, withConnection } from './connection.ts';
import { formatTable } from './table.ts';

export function portsCommand(program: Command): void {
  withConnection(program.command('ports'))
    .description('list the TCP ports that processes in the sandbox listen on, and who holds each')
    .option('--json', "print the list as JSON (the daemon's ListeningPort objects)")
    .addHelpText(
      'after',
      example('sandboxd ports', "sandboxd ports --json | jq '.[] | select(.process_pid) | .port'"),
    )
    .action((options: ConnectionOptions & { json?: boolean }) =>
      run(options, async (client) => {
        const ports = await client.listPorts();
        process.stdout.write(options.json ? `${JSON.stringify(ports, null, 2)}\n` : table(ports));
        return 0;
      }),
    );
}

/** PROCESS is the daemon's process the holder belongs to: what `sandboxd ps` lists. */
function table(ports: ListeningPortInfo[]): string {
  return formatTable([
    ['PORT', 'ADDRESS', 'PID', 'PROCESS', 'PUBLIC', 'COMMAND'],
    ...ports.map((p) => [
      String(p.port),
      p.address,
      p.pid === null ? '-' : String(p.pid),
      p.process_pid === undefined ? '-' : String(p.process_pid),
      p.public ? 'yes' : 'no',
      p.command ?? '-',
    ]),
  ]);
}
