import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FileSystem } from '../../../files/file-system.ts';
import { acceptsGzip, requestedRange, sendFile } from '../../../http/file-response.ts';
import { FilesError } from './errors.ts';
import { requiredPath } from './query.ts';

/**
 * GET /files?path=P[&username=U]: the file's bytes; a `Range` is honoured (and then the bytes
 * go as they are), otherwise `Accept-Encoding: gzip` gets them gzipped.
 */
export async function download(files: FileSystem, req: IncomingMessage, res: ServerResponse, url: URL) {
  const user = await files.user(url.searchParams.get('username') ?? undefined);
  const file = await files.open(files.resolve(requiredPath(url), user));
  const range = requestedRange(req, file.size);
  if (range === 'unsatisfiable') {
    await file.close();
    res.setHeader('content-range', `bytes */${file.size}`);
    throw new FilesError(416, `the file has ${file.size} bytes`);
  }
  await sendFile(res, file, { range, gzip: range === undefined && acceptsGzip(req) });
}
