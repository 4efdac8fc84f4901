import type { HandlerContext } from '@connectrpc/connect';
import type { FileSystem } from '../../../files/file-system.ts';
import type { MoveRequest } from '../../../gen/filesystem/filesystem_pb.ts';
import { translated } from '../errors.ts';
import { entryInfo } from './entry-info.ts';
import { requestUser } from './user.ts';

/** Move: a file or a tree; the destination's parents are created. */
export function move(files: FileSystem) {
  return (request: MoveRequest, context: HandlerContext) =>
    translated(async () => {
      const user = await requestUser(files, context);
      const source = files.resolve(request.source, user);
      const destination = files.resolve(request.destination, user);
      return { entry: entryInfo(await files.move(source, destination, user)) };
    });
}
