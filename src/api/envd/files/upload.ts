import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type busboy from 'busboy';
import type { FileSystem, FileUser } from '../../../files/file-system.ts';
import { sendJson } from '../../../http/json.ts';
import { FilesError } from './errors.ts';

const METADATA_HEADER = 'x-metadata-';

/**
 * POST /files?path=P[&username=U]: one file as `application/octet-stream` (path required), or
 * one or many `file` parts of a `multipart/form-data` body (a part's filename is its path when
 * `path` is absent). The body may be gzipped (`Content-Encoding: gzip`). Each file is written
 * atomically; `X-Metadata-<key>` headers are stored with it. Answers the files written.
 */
export async function upload(files: FileSystem, req: IncomingMessage, res: ServerResponse, url: URL) {
  const user = await files.user(url.searchParams.get('username') ?? undefined);
  const path = url.searchParams.get('path') || undefined;
  const metadata = metadataHeaders(req);
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  let written: string[];
  try {
    // Loaded before the body is touched, so that nothing of it flows while this waits.
    const multipart = type === 'multipart/form-data' ? (await import('busboy')).default : undefined;
    const body = decoded(req);
    if (type === 'application/octet-stream') {
      if (!path) throw new FilesError(400, 'path: required for an application/octet-stream upload');
      const target = files.resolve(path, user);
      await files.write(target, body, user, metadata);
      written = [target];
    } else if (multipart) {
      written = await writeParts(multipart, files, req.headers, body, user, path, metadata);
    } else {
      throw new FilesError(
        400,
        `unsupported content type '${type}': send multipart/form-data or application/octet-stream`,
      );
    }
  } catch (error) {
    // The rest of the body may still be on its way: answer, then close.
    if (!req.complete) res.setHeader('connection', 'close');
    if ((error as NodeJS.ErrnoException).code?.startsWith('Z_')) {
      throw new FilesError(400, `the gzip body is malformed: ${(error as Error).message}`);
    }
    throw error;
  }
  sendJson(
    res,
    200,
    written.map((target) => ({
      path: target,
      name: basename(target),
      type: 'file',
      ...(metadata ? { metadata } : {}),
    })),
  );
}

/** `X-Metadata-<key>: value` headers, keys as the client spelled them. */
function metadataHeaders(req: IncomingMessage): Record<string, string> | undefined {
  let metadata: Record<string, string> | undefined;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i] as string;
    if (!name.toLowerCase().startsWith(METADATA_HEADER)) continue;
    metadata ??= {};
    metadata[name.slice(METADATA_HEADER.length)] = req.rawHeaders[i + 1] as string;
  }
  return metadata;
}

/** The body as sent, or ungzipped. */
function decoded(req: IncomingMessage): Readable {
  const encoding = (req.headers['content-encoding'] ?? '').trim().toLowerCase();
  if (encoding === '' || encoding === 'identity') return req;
  if (encoding !== 'gzip')
    throw new FilesError(400, `unsupported content encoding '${encoding}': send gzip or none`);
  const gunzip = createGunzip();
  // Malformed data fails the write that reads it; until then the error must not go unheard.
  gunzip.on('error', () => {});
  req.pipe(gunzip);
  req.once('close', () => {
    if (!req.complete) gunzip.destroy(new Error('the upload was cut off'));
  });
  return gunzip;
}

/** Writes the `file` parts of a multipart body, one after another as they arrive. */
function writeParts(
  parse: typeof busboy,
  files: FileSystem,
  headers: IncomingHttpHeaders,
  body: Readable,
  user: FileUser,
  path: string | undefined,
  metadata: Record<string, string> | undefined,
): Promise<string[]> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = parse({ headers, preservePath: true, limits: { fieldSize: 64 * 1024 } });
    } catch (error) {
      reject(new FilesError(400, `malformed multipart request: ${(error as Error).message}`));
      return;
    }
    const targets: string[] = [];
    const writes: Promise<unknown>[] = [];
    let current: Readable | undefined;
    let failed = false;
    const fail = (error: unknown) => {
      if (failed) return;
      failed = true;
      body.unpipe(parser);
      // A part being written ends here, so that its write stops and cleans up.
      current?.destroy(new Error('the upload failed'));
      reject(error);
    };
    parser.on('file', (field, stream, { filename }) => {
      if (field !== 'file' || failed) {
        stream.resume();
        return;
      }
      const name = path ?? filename;
      if (!name) {
        stream.resume();
        fail(new FilesError(400, "a file part without a filename needs the 'path' parameter"));
        return;
      }
      let target: string;
      try {
        target = files.resolve(name, user);
      } catch (error) {
        stream.resume();
        fail(error);
        return;
      }
      if (targets.includes(target)) {
        stream.resume();
        fail(new FilesError(400, `two files of one upload go to '${target}'`));
        return;
      }
      targets.push(target);
      current = stream;
      writes.push(files.write(target, stream, user, metadata).catch(fail));
    });
    parser.on('error', (error: Error) =>
      fail(new FilesError(400, `malformed multipart body: ${error.message}`)),
    );
    body.on('error', fail);
    parser.on('close', () => {
      void Promise.all(writes).then(() => {
        if (failed) return;
        if (targets.length === 0) fail(new FilesError(400, "the upload holds no part named 'file'"));
        else resolve(targets);
      });
    });
    body.pipe(parser);
  });
}
