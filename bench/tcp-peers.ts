// The other ends of the tunnel row, each in a process of its own as a service and a relay
// would be: `source BYTES` sends BYTES (4 MiB of random bytes, over and over) to every
// connection and ends it; `relay PORT` carries every connection to 127.0.0.1:PORT with
// Node's own pipe, the least a relay written in Node does. Started by tunnel.ts with fork();
// each sends its port as its first message.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';

const [role, argument] = process.argv.slice(2);
const server =
  role === 'source' ? createServer((socket) => void send(socket, Number(argument))) : createServer(relay);
server.listen(0, '127.0.0.1', () => process.send?.((server.address() as AddressInfo).port));
process.on('disconnect', () => process.exit(0));

async function send(socket: Socket, bytes: number): Promise<void> {
  const block = randomBytes(4 * 1024 * 1024);
  socket.on('error', () => {});
  for (let sent = 0; sent < bytes && !socket.destroyed; ) {
    const piece = block.subarray(0, Math.min(block.length, bytes - sent));
    sent += piece.length;
    if (!socket.write(piece)) await once(socket, 'drain');
  }
  socket.end();
}

function relay(client: Socket): void {
  const service = connect({ host: '127.0.0.1', port: Number(argument) });
  for (const socket of [client, service]) socket.on('error', () => client.destroy());
  service.pipe(client);
  client.pipe(service);
}
