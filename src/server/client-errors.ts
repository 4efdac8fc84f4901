import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dialect } from '../http/dialect.ts';
import { rawResponse } from '../http/raw-response.ts';

const REASONS: Record<number, [string, string]> = {
  400: ['Bad Request', 'malformed request'],
  408: ['Request Timeout', 'no request head in time'],
  431: [
    'Request Header Fields Too Large',
    'request head too large (the request line and headers must fit in 16 KiB)',
  ],
};

/**
 * Node answers a request it cannot parse (400), one whose head is too large (431) or too slow
 * (408) itself, with no body. The daemon answers instead, in the error shape of the dialect
 * that owns the path, when the start of the request shows it.
 */
export function answerClientErrors(servers: Server[], dialects: Dialect[]): void {
  for (const server of servers) {
    server.on('clientError', (error: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Duplex) => {
      if (error.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy();
        return;
      }
      const status =
        error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      const [reason, message] = REASONS[status] as [string, string];
      const body = JSON.stringify(errorBody(dialects, error.rawPacket, status, message));
      socket.end(rawResponse(status, reason, body));
    });
  }
}

function errorBody(dialects: Dialect[], raw: Buffer | undefined, status: number, message: string): unknown {
  const target = raw
    ?.subarray(0, 8192)
    .toString('latin1')
    .match(/^[A-Z]+ (\/\S*)/)?.[1];
  let url: URL | undefined;
  try {
    url = target === undefined ? undefined : new URL(target, 'http://sandboxd');
  } catch {
    url = undefined;
  }
  const dialect = url && dialects.find((d) => d.owns(url));
  if (url && dialect) return dialect.errorBody(url, status, message);
  return { error: message, code: status === 431 ? 'HEADERS_TOO_LARGE' : 'INVALID_REQUEST', message };
}
