import type { HandlerContext } from '@connectrpc/connect';
import type { FileSystem, FileUser } from '../../../files/file-system.ts';

/**
 * The user a filesystem call acts for: the name in `Authorization: Basic base64(name:)`, as
 * the clients send it, or the daemon's own user.
 */
export function requestUser(files: FileSystem, context: HandlerContext): Promise<FileUser> {
  const basic = context.requestHeader.get('authorization')?.match(/^Basic\s+(\S+)$/i)?.[1];
  const name = basic === undefined ? undefined : Buffer.from(basic, 'base64').toString('utf8').split(':')[0];
  return files.user(name);
}
