import type { FileSystem } from '../../files/file-system.ts';
import { answerFileRead } from '../../http/file-response.ts';
import { sendJson } from '../../http/json.ts';
import type { RouteContext } from '../../http/router.ts';
import { ApiError } from './errors.ts';
import { sendNoContent } from './respond.ts';
import type { FileList } from './responses.ts';
import { filesQuery } from './schemas.ts';

/** Read, write, delete and list files: `/api/v1/files?path=` and `/api/v1/files/list?path=`. */
export function fileRoutes(files: FileSystem) {
  const target = ({ url }: RouteContext) =>
    files.resolve(filesQuery.parse(Object.fromEntries(url.searchParams)).path);

  return {
    /** The bytes, or the part a `Range` header asks for (206; 416 beyond the end). */
    async read(context: RouteContext) {
      const file = await files.open(target(context));
      await answerFileRead(context.req, context.res, file, {
        beyondEnd: (size) => new ApiError(416, 'RANGE_NOT_SATISFIABLE', `the file has ${size} bytes`),
      });
    },

    /** The body replaces the file atomically; parents are created. */
    async write(context: RouteContext) {
      const { req, res } = context;
      try {
        await files.write(target(context), req);
      } catch (error) {
        // The rest of the body may still be on its way: answer, then close.
        if (!req.complete) res.setHeader('connection', 'close');
        throw error;
      }
      sendNoContent(res);
    },

    /** A file, a link or a whole tree. */
    async remove(context: RouteContext) {
      await files.remove(target(context));
      sendNoContent(context.res);
    },

    /** Directories first, then files, each by name. */
    async list(context: RouteContext) {
      const path = target(context);
      const entries = (await files.list(path)).map((entry) => ({
        name: entry.name,
        is_dir: entry.type === 'directory',
        size: entry.type === 'directory' ? null : entry.size,
        modified_at: Math.floor(entry.modifiedMs),
      }));
      entries.sort(
        (a, b) => Number(b.is_dir) - Number(a.is_dir) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
      );
      sendJson(context.res, 200, { path, entries } satisfies FileList);
    },
  };
}
