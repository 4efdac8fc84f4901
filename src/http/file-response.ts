import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import parseRange from 'range-parser';
import type { OpenFile } from '../files/read.ts';

export interface ByteRange {
  start: number;
  end: number;
}

/**
 * The part of a file a `Range` header asks for: undefined for the whole file (no header, one
 * that is malformed, or several ranges, which are served whole), 'unsatisfiable' for a range
 * beyond the end.
 */
export function requestedRange(req: IncomingMessage, size: number): ByteRange | 'unsatisfiable' | undefined {
  const header = req.headers.range;
  if (header === undefined) return undefined;
  const ranges = parseRange(size, header, { combine: true });
  if (ranges === -1) return 'unsatisfiable';
  if (ranges === -2 || ranges.type !== 'bytes' || ranges.length !== 1) return undefined;
  const [range] = ranges as parseRange.Range[];
  return range;
}

/** Whether the client takes a gzip body (`Accept-Encoding: gzip` with a non-zero q). */
export function acceptsGzip(req: IncomingMessage): boolean {
  const header = req.headers['accept-encoding'] ?? '';
  return header.split(',').some((part) => {
    const [coding = '', ...params] = part.trim().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return coding.trim().toLowerCase() === 'gzip' && (q === undefined || Number(q.slice(2)) > 0);
  });
}

/**
 * Streams an open file (or a range of it, or all of it gzipped) as the response; the file is
 * closed when done. A client that goes away mid-way just ends it.
 */
export async function sendFile(
  res: ServerResponse,
  file: OpenFile,
  { range, gzip = false }: { range?: ByteRange; gzip?: boolean } = {},
): Promise<void> {
  // The size at open: bytes appended later are not this response's.
  const whole = { start: 0, end: file.size - 1 };
  const headers: OutgoingHttpHeaders = {
    'content-type': 'application/octet-stream',
    'accept-ranges': 'bytes',
    'last-modified': new Date(file.modifiedMs).toUTCString(),
    vary: 'accept-encoding',
  };
  if (file.size === 0) await file.close();
  const content = () => (file.size === 0 ? Readable.from([]) : file.stream(range ?? whole));
  if (gzip) {
    res.writeHead(200, { ...headers, 'content-encoding': 'gzip' });
    await pipeline(content(), createGzip(), res).catch(() => {});
    return;
  }
  if (range) {
    res.writeHead(206, {
      ...headers,
      'content-range': `bytes ${range.start}-${range.end}/${file.size}`,
      'content-length': range.end - range.start + 1,
    });
  } else {
    res.writeHead(200, { ...headers, 'content-length': file.size });
  }
  await pipeline(content(), res).catch(() => {});
}

/**
 * Answers a read of a file: the part a `Range` asks for (206), or the whole of it, gzipped
 * when `gzip` and no range was asked for. A range beyond the end closes the file, gives
 * the file's size in `Content-Range` and throws what `beyondEnd` makes: the dialect's own 416.
 */
export async function answerFileRead(
  req: IncomingMessage,
  res: ServerResponse,
  file: OpenFile,
  { gzip = false, beyondEnd }: { gzip?: boolean; beyondEnd: (size: number) => Error },
): Promise<void> {
  const range = requestedRange(req, file.size);
  if (range === 'unsatisfiable') {
    await file.close();
    res.setHeader('content-range', `bytes */${file.size}`);
    throw beyondEnd(file.size);
  }
  await sendFile(res, file, { range, gzip: range === undefined && gzip });
}
