import type { HandlerContext } from '@connectrpc/connect';
import { SandboxError } from '../../../core/errors.ts';
import type { FileSystem } from '../../../files/file-system.ts';
import type { RemoveRequest } from '../../../gen/filesystem/filesystem_pb.ts';
import { translated } from '../errors.ts';
import { requestUser } from './user.ts';

/** Remove: a file or a whole tree. Nothing there is no error, as with the reference daemon. */
export function remove(files: FileSystem) {
  return (request: RemoveRequest, context: HandlerContext) =>
    translated(async () => {
      const user = await requestUser(files, context);
      try {
        await files.remove(files.resolve(request.path, user));
      } catch (error) {
        if (!(error instanceof SandboxError && error.kind === 'not_found')) throw error;
      }
      return {};
    });
}
