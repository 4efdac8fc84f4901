import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FileSystem } from '../../../files/file-system.ts';
import { acceptsGzip, answerFileRead } from '../../../http/file-response.ts';
import { FilesError } from './errors.ts';
import { requiredPath } from './query.ts';

/**
 * GET /files?path=P[&username=U]: the file's bytes; a `Range` is honoured (and then the bytes
 * go as they are), otherwise `Accept-Encoding: gzip` gets them gzipped.
 */
export async function download(files: FileSystem, req: IncomingMessage, res: ServerResponse, url: URL) {
  const user = await files.user(url.searchParams.get('username') ?? undefined);
  const file = await files.open(files.resolve(requiredPath(url), user));
  await answerFileRead(req, res, file, {
    gzip: acceptsGzip(req),
    beyondEnd: (size) => new FilesError(416, `the file has ${size} bytes`),
  });
}
