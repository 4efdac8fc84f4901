import type { IncomingMessage } from 'node:http';

export class BodyError extends Error {
  constructor(
    readonly status: 400 | 413,
    message: string,
    /** The body may still be arriving with no end in sight: the response closes the connection. */
    readonly closesConnection = false,
  ) {
    super(message);
  }
}

/**
 * Reads a request body, refusing (413) one larger than `limit` bytes before reading it all.
 * On refusal the rest of the body is read and thrown away, so that the connection stays in
 * step; a body of unknown length is refused once it passes the limit, and the response to it
 * should close the connection, since its end may be far off.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) {
    req.resume();
    return Promise.reject(new BodyError(413, `request body is ${declared} bytes; the limit is ${limit}`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      req.off('data', onData);
      req.off('end', onEnd);
      req.resume();
      reject(new BodyError(413, `request body is larger than the limit of ${limit} bytes`, true));
    };
    const onEnd = () => resolve(Buffer.concat(chunks, size));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', reject);
  });
}

/** Reads and parses a JSON body; an empty body is `{}`. */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const body = await readBody(req, limit);
  if (body.length === 0) return {};
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new BodyError(400, `malformed JSON: ${(error as Error).message}`);
  }
}
