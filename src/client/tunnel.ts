import type WebSocket from 'ws';
import { openDaemonSocket } from './websocket.ts';

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
  return openDaemonSocket(url, daemonUrl, {
    headers,
    perMessageDeflate: false,
    // Paused in the event itself: frames that came with the answer are read on the next tick,
    // before whoever awaits this could listen for them.
    onOpen: (socket) => socket.pause(),
  });
}
