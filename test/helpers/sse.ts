export interface SseMessage {
  id?: string;
  event?: string;
  data: string;
}

/**
 * Reads a text/event-stream response body message by message. Returning from the loop early
 * (break) cancels the body, which closes the connection: that is how a test disconnects.
 */
export async function* readSse(response: Response): AsyncGenerator<SseMessage> {
  if (!response.body) throw new Error('response has no body');
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      // Only the new text (and the newline before it) can complete a message.
      const searchFrom = Math.max(0, buffer.length - 1);
      buffer += decoder.decode(value, { stream: true });
      let end = buffer.indexOf('\n\n', searchFrom);
      while (end !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf('\n\n');
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
        if (data.length === 0 && message.id === undefined && message.event === undefined) continue;
        message.data = data.join('\n');
        yield message;
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}
