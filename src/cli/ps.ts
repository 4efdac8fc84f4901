import type { Command } from 'commander';
import type { ProcessInfo } from '../client/index.ts';
import { signalName } from '../core/signals.ts';
import { listCommand } from './list-command.ts';
import { formatTable } from './table.ts';

export function psCommand(program: Command): void {
  listCommand(program, {
    name: 'ps',
    description: 'list the processes the daemon has started, running and finished',
    objects: 'ProcessInfo',
    examples: ['sandboxd ps', 'sandboxd ps --json | jq \'.[] | select(.status == "running") | .pid\''],
    list: (client) => client.list(),
    table,
  });
}

function table(processes: ProcessInfo[]): string {
  const now = Date.now();
  const rows = [
    ['PID', 'NAME', 'STATUS', 'EXIT', 'MANAGED', 'HEALTH', 'AGE', 'COMMAND'],
    ...processes.map((p) => [
      String(p.pid),
      p.name ?? '-',
      p.status,
      p.status === 'running' ? '-' : p.signal !== null ? signalName(p.signal) : String(p.exit_code),
      p.managed ? `${p.managed.status}${p.managed.restart_count ? ` ×${p.managed.restart_count}` : ''}` : '-',
      p.managed && p.managed.health_status !== 'disabled' ? p.managed.health_status : '-',
      age(now - p.started_at),
      [p.command, ...p.args].map(quote).join(' '),
    ]),
  ];
  return formatTable(rows);
}

function age(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}

/** As a shell would need it typed, when it is not plain. */
function quote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}
