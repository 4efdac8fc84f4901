import type { Command } from 'commander';
import { DaemonError, type PtySessionInfo, type SandboxClient } from '../client/index.ts';
import { type ConnectionOptions, example, run, withConnection } from './connection.ts';
import { detachKeysOption, explainTerminalEnd, joinTerminal } from './terminal.ts';

interface AttachOptions extends ConnectionOptions {
  detachKeys: number[];
}

export function attachCommand(program: Command): void {
  withConnection(program.command('attach'))
    .summary('join a terminal session; detach keys leave it running')
    .description(
      'join a terminal session (one started by `exec -t`, or through POST /api/v1/pty): its ' +
        'scrollback, then live; the detach keys leave it running, and this exits with its code when it ends',
    )
    .argument('<terminal>', "a terminal session's id or its process's pid")
    .addOption(detachKeysOption('the keys that leave it running; "" for none'))
    .addHelpText(
      'after',
      example('sandboxd attach 4242', 'sandboxd attach --detach-keys ctrl-a,d 8BG2wQ3vX1kL0pYt'),
    )
    .action((ref: string, options: AttachOptions) =>
      run(
        options,
        async (client) => {
          const session = await findSession(client, ref);
          const connection = await client.attachTerminal(session.session_id);
          const outcome = await joinTerminal(client, connection, {
            pid: session.pid,
            detachKeys: options.detachKeys,
          });
          return explainTerminalEnd(outcome, session.session_id, 1);
        },
        { subject: { kind: 'terminal session', ref } },
      ),
    );
}

async function findSession(client: SandboxClient, ref: string): Promise<PtySessionInfo> {
  const sessions = await client.terminals();
  const found =
    sessions.find((session) => session.session_id === ref) ??
    (/^\d+$/.test(ref) ? sessions.find((session) => session.pid === Number(ref)) : undefined);
  if (found) return found;
  // A process that exists but has no terminal deserves a better word than "not found".
  const info = await client.get(ref).catch((error: unknown) => {
    if (error instanceof DaemonError && error.status === 404) return undefined;
    throw error;
  });
  if (info) {
    throw new Error(
      `process ${info.pid} (${info.command}) runs without a terminal; \`sandboxd logs -f ${ref}\` follows its output`,
    );
  }
  throw new DaemonError(404, 'SESSION_NOT_FOUND', `terminal session ${ref} not found`);
}
