import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of the daemon that cuts its first connection in the middle of the
 * response, right inside the text `cutInside` once the daemon has sent it; later connections
 * pass through untouched. It remembers the request head of every connection.
 */
export class CuttingProxy {
  readonly requests: string[] = [];
  /** Resolves when the first connection has been cut. */
  readonly cut: Promise<void>;
  private markCut: () => void = () => {};
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {
    this.cut = new Promise((resolve) => {
      this.markCut = resolve;
    });
  }

  static async start(target: string, cutInside: string): Promise<CuttingProxy> {
    const { hostname, port } = new URL(target);
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const proxy = new CuttingProxy(server, `http://127.0.0.1:${(server.address() as { port: number }).port}`);
    server.on('connection', (client) => proxy.relay(client, hostname, Number(port), cutInside));
    return proxy;
  }

  private relay(client: Socket, host: string, port: number, cutInside: string): void {
    const index = this.requests.push('') - 1;
    const cutting = index === 0;
    const upstream = connect(port, host);
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => {});
    }
    client.on('data', (chunk: Buffer) => {
      this.requests[index] += chunk.toString();
      upstream.write(chunk);
    });
    let seen = '';
    let cutStarted = false;
    upstream.on('data', (chunk: Buffer) => {
      if (cutStarted) return;
      if (!cutting) {
        client.write(chunk);
        return;
      }
      const before = seen.length;
      seen += chunk.toString('latin1');
      const at = seen.indexOf(cutInside);
      if (at === -1) {
        client.write(chunk);
        return;
      }
      // Up to the middle of that text, then the connection breaks: a message cut in half.
      const end = at + Math.floor(cutInside.length / 2);
      cutStarted = true;
      client.write(chunk.subarray(0, end - before), () => {
        client.destroy();
        upstream.destroy();
        this.markCut();
      });
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
    await once(this.server, 'close');
  }
}
