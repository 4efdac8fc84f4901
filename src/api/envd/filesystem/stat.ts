import type { HandlerContext } from '@connectrpc/connect';
import type { FileSystem } from '../../../files/file-system.ts';
import type { StatRequest } from '../../../gen/filesystem/filesystem_pb.ts';
import { translated } from '../errors.ts';
import { entryInfo } from './entry-info.ts';
import { requestUser } from './user.ts';

/** Stat: what a path is; a symbolic link tells what it leads to. */
export function stat(files: FileSystem) {
  return (request: StatRequest, context: HandlerContext) =>
    translated(async () => {
      const user = await requestUser(files, context);
      return { entry: entryInfo(await files.stat(files.resolve(request.path, user))) };
    });
}
