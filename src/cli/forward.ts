import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { Command } from 'commander';
import type { SandboxClient } from '../client/index.ts';
import { parsePort } from '../ports/port-number.ts';
import { Tunnel } from '../ports/tunnel.ts';
import { Tunnels } from '../ports/tunnels.ts';
import { type ConnectionOptions, example, run, UsageError, withConnection } from './connection.ts';

interface ForwardOptions extends ConnectionOptions {
  address: string;
}

/** One `[LOCAL:]REMOTE`: a local port (0: any free one) carried to a port of the sandbox. */
interface Mapping {
  local: number;
  remote: number;
}

// What one forwarded connection holds at most, as in the daemon.
const LIMITS = { maxQueuedBytes: 512 * 1024, lingerMs: 5000 };

export function forwardCommand(program: Command): void {
  withConnection(program.command('forward'))
    .summary('forward local ports to ports in the sandbox, until Ctrl-C')
    .description(
      "listen on local ports and carry each connection to a port on the sandbox's loopback, through " +
        "the daemon's TCP tunnel (one WebSocket per connection); Ctrl-C closes them all",
    )
    .argument(
      '<mappings...>',
      '[LOCAL:]REMOTE: REMOTE alone listens on the same port here; :REMOTE on any free one',
    )
    .option('--address <address>', 'the local address to listen on', '127.0.0.1')
    .addHelpText(
      'after',
      example(
        'sandboxd forward 3000',
        'sandboxd forward 8080:80 5432',
        'sandboxd forward --address 0.0.0.0 :5901',
      ),
    )
    .action((specs: string[], options: ForwardOptions) =>
      run(options, async (client) => {
        const mappings = specs.map(parseMapping);
        // A wrong token or URL is better told now than at the first connection.
        await client.info();
        return forward(client, mappings, options.address);
      }),
    );
}

function parseMapping(spec: string): Mapping {
  const parts = spec.split(':');
  const [localText, remoteText] = parts.length === 1 ? [parts[0], parts[0]] : parts;
  const remote = parsePort(remoteText);
  const local = localText === '' ? 0 : parsePort(localText);
  if (parts.length > 2 || remote === undefined || local === undefined) {
    throw new UsageError(`'${spec}' is not [LOCAL:]REMOTE, where each port is an integer from 1 to 65535`);
  }
  return { local, remote };
}

/** Listens for every mapping, then carries connections until SIGINT or SIGTERM. */
async function forward(client: SandboxClient, mappings: Mapping[], address: string): Promise<number> {
  const tunnels = new Tunnels();
  const servers: Server[] = [];
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  try {
    for (const { local, remote } of mappings) {
      const server = createServer((socket) => void carry(client, socket, remote, tunnels));
      servers.push(server);
      server.listen(local, address);
      await Promise.race([once(server, 'listening'), once(server, 'error')]).catch((error: unknown) => {
        throw new Error(`cannot listen on ${hostPort(address, local)}: ${(error as Error).message}`);
      });
      const { port } = server.address() as { port: number };
      process.stdout.write(`Forwarding ${hostPort(address, port)} -> ${remote}\n`);
    }
    await stopped;
    return 0;
  } finally {
    for (const server of servers) server.close();
    await tunnels.closeAll(1000);
  }
}

/** One local connection, over one tunnel; a tunnel that cannot be opened closes the connection. */
async function carry(client: SandboxClient, local: Socket, remote: number, tunnels: Tunnels): Promise<void> {
  local.on('error', () => {});
  local.setNoDelay(true);
  const from = `${hostPort(local.remoteAddress ?? '?', local.remotePort ?? 0)}`;
  try {
    const socket = await client.openTunnel(remote);
    if (local.destroyed) {
      socket.close();
      return;
    }
    const tunnel = new Tunnel(local, socket, LIMITS);
    tunnels.track(tunnel, tunnel.closed);
  } catch (error) {
    local.destroy();
    process.stderr.write(`sandboxd: ${from} -> ${remote}: ${(error as Error).message}\n`);
  }
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
