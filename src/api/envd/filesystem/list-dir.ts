import type { HandlerContext } from '@connectrpc/connect';
import type { FileSystem } from '../../../files/file-system.ts';
import type { ListDirRequest } from '../../../gen/filesystem/filesystem_pb.ts';
import { translated } from '../errors.ts';
import { entryInfo } from './entry-info.ts';
import { requestUser } from './user.ts';

/** ListDir: `depth` levels (0 means 1); a symbolic link to a directory is followed. */
export function listDir(files: FileSystem) {
  return (request: ListDirRequest, context: HandlerContext) =>
    translated(async () => {
      const user = await requestUser(files, context);
      const entries = await files.list(files.resolve(request.path, user), Math.max(1, request.depth));
      return { entries: entries.map(entryInfo) };
    });
}
