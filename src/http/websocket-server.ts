import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ServerOptions, WebSocket, WebSocketServer } from 'ws';

/**
 * A `ws` server for upgrades, made on the first one: ws is a sizeable part of the daemon's code,
 * and most sandboxes never open a terminal or a tunnel. Only that first upgrade waits for it
 * to load (a few ms); the upgrade listener has put an error handler on the socket meanwhile.
 */
export function lazyWebSocketServer(options: Omit<ServerOptions, 'noServer'>) {
  let server: Promise<WebSocketServer> | undefined;
  const load = async () => {
    const { WebSocketServer: Server } = await import('ws');
    return new Server({ ...options, noServer: true });
  };
  return {
    /** ws's handleUpgrade, once ws is loaded. */
    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, done: (ws: WebSocket) => void): void {
      server ??= load();
      void server.then((loaded) => loaded.handleUpgrade(req, socket, head, done));
    },
  };
}
