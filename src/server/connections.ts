import { readFileSync } from 'node:fs';
import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import { rawResponse } from '../http/raw-response.ts';

export interface ConnectionLimits {
  /** Open connections, all ports together; beyond it a new one is answered 503 and closed. */
  max: number;
  /** A connection that sends no complete request head within this long is closed. */
  headersTimeoutMs: number;
}

const refusal = (status: number, reason: string, code: string, message: string) =>
  rawResponse(status, reason, JSON.stringify({ error: message, code, message }));
const TIMEOUT = refusal(408, 'Request Timeout', 'REQUEST_TIMEOUT', 'no request head in time');
const BUSY = refusal(503, 'Service Unavailable', 'UNAVAILABLE', 'too many connections');

/**
 * The most connections the daemon should hold: well below its descriptor limit, so that the
 * processes it starts, their pipes, spill files and watches still get descriptors.
 */
export function defaultMaxConnections(): number {
  let softLimit = 1024;
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').match(/^Max open files\s+(\d+|unlimited)/m)?.[1];
    if (line && line !== 'unlimited') softLimit = Number(line);
    else if (line === 'unlimited') softLimit = 1 << 20;
  } catch {
    // Not Linux, or no /proc: the usual soft limit.
  }
  return Math.max(32, Math.floor(softLimit / 2));
}

/**
 * Guards the servers' connections: a cap on how many are open at once (answered 503 beyond
 * it), and a time limit on the request head — Node times out a head that is half sent, but
 * not a connection that sends nothing at all, which would otherwise be held for ever.
 */
export function guardConnections(servers: Server[], limits: ConnectionLimits): void {
  let open = 0;
  // The request head arriving ends a connection's wait; Node reads the socket itself, so no
  // 'data' event would tell.
  const waiting = new WeakMap<Socket, NodeJS.Timeout>();
  const onConnection = (socket: Socket) => {
    open++;
    socket.once('close', () => {
      open--;
      clearTimeout(waiting.get(socket));
    });
    if (open > limits.max) {
      socket.end(BUSY);
      return;
    }
    const answer = () => socket.end(TIMEOUT, () => socket.destroy());
    waiting.set(socket, setTimeout(answer, limits.headersTimeoutMs));
  };
  const onHead = (req: IncomingMessage) => {
    const timer = waiting.get(req.socket);
    if (timer === undefined) return;
    clearTimeout(timer);
    waiting.delete(req.socket);
  };
  for (const server of servers) {
    server.headersTimeout = limits.headersTimeoutMs;
    server.on('connection', onConnection);
    server.on('request', onHead);
    server.on('upgrade', onHead);
  }
}
