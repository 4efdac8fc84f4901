export interface SseMessage {
  id?: string;
  event?: string;
  data: string;
}

export interface ReadSseOptions {
  /**
   * Throws SseIdleError when nothing (not even a heartbeat comment) arrives for this long, so a
   * connection that died without a word does not hang its reader.
   */
  idleMs?: number;
}

export class SseIdleError extends Error {}

/**
 * Reads a text/event-stream response body message by message. Returning from the loop early
 * (break) cancels the body, which closes the connection. A message cut off by the end of the
 * body is not yielded.
 */
export async function* readSse(response: Response, options: ReadSseOptions = {}): AsyncGenerator<SseMessage> {
  for await (const messages of readSseBatches(response, options)) yield* messages;
}

/** As readSse, but the messages completed by each read of the body come together. */
export async function* readSseBatches(
  response: Response,
  { idleMs }: ReadSseOptions = {},
): AsyncGenerator<SseMessage[]> {
  if (!response.body) throw new Error('response has no body');
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { value, done } = await (idleMs === undefined ? reader.read() : readWithin(reader, idleMs));
      if (done) return;
      // Only the new text (and the newline before it) can complete a message.
      const searchFrom = Math.max(0, buffer.length - 1);
      buffer += decoder.decode(value, { stream: true });
      const messages: SseMessage[] = [];
      let end = buffer.indexOf('\n\n', searchFrom);
      while (end !== -1) {
        const message = parseMessage(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf('\n\n');
        if (message) messages.push(message);
      }
      if (messages.length > 0) yield messages;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** One message's block of field lines; undefined for a block of comments only (a heartbeat). */
function parseMessage(block: string): SseMessage | undefined {
  const message: SseMessage = { data: '' };
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':') || line === '') continue;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'id') message.id = value;
    else if (field === 'event') message.event = value;
    else if (field === 'data') data.push(value);
  }
  if (data.length === 0 && message.id === undefined && message.event === undefined) return undefined;
  message.data = data.join('\n');
  return message;
}

async function readWithin(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  ms: number,
): Promise<ReadableStreamReadResult<Uint8Array>> {
  let timer: NodeJS.Timeout | undefined;
  const idle = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SseIdleError(`no data for ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([reader.read(), idle]);
  } finally {
    clearTimeout(timer);
  }
}
