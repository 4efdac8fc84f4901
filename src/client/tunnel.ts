import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { DaemonError, networkReason, UnreachableError } from './errors.ts';

/**
 * Opens a TCP tunnel's WebSocket (`GET /api/v1/tunnels/tcp?port=N`). The daemon answers only
 * once it has reached the service, so a refusal (400, 401, 502) becomes a DaemonError here, and
 * no answer at all an UnreachableError. The socket comes back paused (the service may have
 * spoken, or even closed, in the same packet as the answer): resume() it once listening.
 */
export async function openTunnelSocket(
  daemonUrl: string,
  port: number,
  headers: Record<string, string>,
): Promise<WebSocket> {
  const url = `${daemonUrl.replace(/^http/, 'ws')}/api/v1/tunnels/tcp?port=${port}`;
  const socket = new WebSocket(url, { headers, perMessageDeflate: false });
  const refused = new Promise<never>((_, reject) => {
    let answered = false;
    socket.once('unexpected-response', (_request, response: IncomingMessage) => {
      answered = true;
      void DaemonError.fromHandshake(response)
        .then(reject, reject)
        .finally(() => socket.terminate());
    });
    socket.on('error', (error) => {
      if (!answered) reject(new UnreachableError(daemonUrl, networkReason(error)));
    });
  });
  // Paused in the event itself: frames that came with the answer are read on the next tick,
  // before whoever awaits this could listen for them.
  socket.once('open', () => socket.pause());
  await Promise.race([once(socket, 'open'), refused]);
  return socket;
}
