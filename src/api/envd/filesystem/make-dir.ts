import type { HandlerContext } from '@connectrpc/connect';
import type { FileSystem } from '../../../files/file-system.ts';
import type { MakeDirRequest } from '../../../gen/filesystem/filesystem_pb.ts';
import { translated } from '../errors.ts';
import { entryInfo } from './entry-info.ts';
import { requestUser } from './user.ts';

/** MakeDir: with its parents, owned by the user; already_exists when it is there. */
export function makeDir(files: FileSystem) {
  return (request: MakeDirRequest, context: HandlerContext) =>
    translated(async () => {
      const user = await requestUser(files, context);
      return { entry: entryInfo(await files.makeDirectory(files.resolve(request.path, user), user)) };
    });
}
