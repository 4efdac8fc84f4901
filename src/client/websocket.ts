import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import WebSocket, { type ClientOptions } from 'ws';
import { DaemonError, networkReason, UnreachableError } from './errors.ts';

/**
 * Opens a WebSocket to the daemon and resolves once it is open. A refusal (the daemon's answer
 * to the handshake) becomes a DaemonError, no answer at all an UnreachableError. `onOpen` runs
 * in the open event itself, before anything that comes with the answer is read.
 */
export async function openDaemonSocket(
  url: string,
  daemonUrl: string,
  options: ClientOptions & { onOpen?: (socket: WebSocket) => void },
): Promise<WebSocket> {
  const { onOpen, ...socketOptions } = options;
  const socket = new WebSocket(url, socketOptions);
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
  if (onOpen) socket.once('open', () => onOpen(socket));
  await Promise.race([once(socket, 'open'), refused]);
  return socket;
}
