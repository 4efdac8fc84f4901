import { once } from 'node:events';
import type { ServerResponse } from 'node:http';

export function sendNoContent(res: ServerResponse): void {
  res.writeHead(204);
  res.end();
}

/** Writes, then waits while the client is slow to take it; false once the client has gone. */
export async function writeOrWait(res: ServerResponse, text: string | Buffer): Promise<boolean> {
  if (res.destroyed) return false;
  if (res.write(text)) return true;
  const stopWaiting = new AbortController();
  const { signal } = stopWaiting;
  await Promise.race([once(res, 'drain', { signal }), once(res, 'close', { signal })])
    .catch(() => {})
    .finally(() => stopWaiting.abort());
  return !res.destroyed;
}
