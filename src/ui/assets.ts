import { readFile } from 'node:fs/promises';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { extname } from 'node:path';
import { gzip } from 'node:zlib';
import { PACKAGE_ROOT } from '../package-root.ts';

// Not util.promisify: on Node 24, the bundle's copy of node:util's exports loads 34 of Node's
// modules that the daemon never uses (scripts/build.ts reads builtins by require()).
const compress = (body: Buffer) =>
  new Promise<Buffer>((resolve, reject) =>
    gzip(body, (error, zipped) => (error ? reject(error) : resolve(zipped))),
  );

/** Where `npm run build` puts the console, whether the daemon runs from source or from dist/. */
const WEB_ROOT = new URL('dist/web/', PACKAGE_ROOT);

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
};

interface Asset {
  body: Buffer;
  gzipped: Buffer;
  type: string;
}

/** A page or a built file under assets/ (names with a content hash, cached for good). */
export class Assets {
  private readonly immutable = new Map<string, Promise<Asset | undefined>>();

  constructor(private readonly root: URL = WEB_ROOT) {}

  /** Sends `name`; false when there is no such file (nothing is sent then). */
  async send(req: IncomingMessage, res: ServerResponse, name: string, headers: OutgoingHttpHeaders = {}) {
    if (!/^(assets\/)?[\w.-]+$/.test(name) || name.includes('..')) return false;
    const hashed = name.startsWith('assets/');
    let asset: Promise<Asset | undefined> | undefined = hashed ? this.immutable.get(name) : undefined;
    if (!asset) {
      asset = this.load(name);
      if (hashed) this.immutable.set(name, asset);
    }
    const found = await asset;
    if (!found) {
      this.immutable.delete(name);
      return false;
    }
    const gzipped = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const body = gzipped ? found.gzipped : found.body;
    res.writeHead(200, {
      'content-type': found.type,
      'content-length': body.length,
      'cache-control': hashed ? 'public, max-age=31536000, immutable' : 'no-store',
      vary: 'accept-encoding',
      'x-content-type-options': 'nosniff',
      ...(gzipped ? { 'content-encoding': 'gzip' } : {}),
      ...headers,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  }

  /** A page's text, read anew each time (pages are small, and a rebuild changes them). */
  async page(name: string): Promise<string | undefined> {
    try {
      return await readFile(new URL(name, this.root), 'utf8');
    } catch {
      return undefined;
    }
  }

  private async load(name: string): Promise<Asset | undefined> {
    let body: Buffer;
    try {
      body = await readFile(new URL(name, this.root));
    } catch {
      return undefined;
    }
    return { body, gzipped: await compress(body), type: TYPES[extname(name)] ?? 'application/octet-stream' };
  }
}
