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
    await this.sendFrames(events.map(frame).join(''));
  }

  /** Sends frames already written out (see frame()), in one write. */
  async sendFrames(text: string | Buffer): Promise<void> {
    if (this.signal.aborted) return;
    await writeOrWait(this.res, text);
  }

  end(): void {
    clearInterval(this.heartbeat);
    this.res.end();
  }
}

/** One event as an SSE frame. */
export function frame({ id, event, data }: SseEvent): string {
  return `${id === undefined ? '' : `id: ${id}\n`}${event === undefined ? '' : `event: ${event}\n`}data: ${JSON.stringify(data)}\n\n`;
}
