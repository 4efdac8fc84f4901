import type { Duplex } from 'node:stream';
import { rawResponse } from './raw-response.ts';

/** Answers an upgrade request with a plain HTTP error and closes the connection. */
export function refuseUpgrade(socket: Duplex, status: number, reason: string, body = ''): void {
  socket.end(rawResponse(status, reason, body));
}
