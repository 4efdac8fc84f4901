import type { Command } from 'commander';
import type { ListeningPortInfo } from '../client/index.ts';
import { listCommand } from './list-command.ts';
import { formatTable } from './table.ts';

export function portsCommand(program: Command): void {
  listCommand(program, {
    name: 'ports',
    description: 'list the TCP ports that processes in the sandbox listen on, and who holds each',
    objects: 'ListeningPort',
    examples: ['sandboxd ports', "sandboxd ports --json | jq '.[] | select(.process_pid) | .port'"],
    list: (client) => client.listPorts(),
    table,
  });
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
