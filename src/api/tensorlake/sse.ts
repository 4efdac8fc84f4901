import type { ServerResponse } from 'node:http';
import { writeOrWait } from './respond.ts';

export interface SseEvent {
  id?: number;
  event?: string;
  data: unknown;
}

const HEARTBEAT_MS = 15_000;

/**
 * A Server-Sent Events response. Writes wait for the client to drain, so a slow client is
 * served at its own pace; `signal` aborts when the client goes away.
 */
export class EventStream {
  private readonly aborter = new AbortController();
  private readonly heartbeat: NodeJS.Timeout;

  constructor(private readonly res: ServerResponse) {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.flushHeaders();
    res.on('close', () => {
      clearInterval(this.heartbeat);
      this.aborter.abort();
    });
    // Comment lines keep proxies and idle timers from closing a quiet stream.
    this.heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
  }

  get signal(): AbortSignal {
    return this.aborter.signal;
  }

  /** Sends events in one write. */
  async send(events: readonly SseEvent[]): Promise<void> {
    if (this.signal.aborted) return;
    let text = '';
    for (const { id, event, data } of events) {
      if (id !== undefined) text += `id: ${id}\n`;
      if (event !== undefined) text += `event: ${event}\n`;
      text += `data: ${JSON.stringify(data)}\n\n`;
    }
    await writeOrWait(this.res, text);
  }

  end(): void {
    clearInterval(this.heartbeat);
    this.res.end();
  }
}
