import type { HandlerContext } from '@connectrpc/connect';
import type { FileSystem, FileUser } from '../../../files/file-system.ts';

/** The name in `Authorization: Basic base64(name:)`, as the clients send it; undefined when absent. */
export function basicUserName(context: HandlerContext): string | undefined {
  const basic = context.requestHeader.get('authorization')?.match(/^Basic\s+(\S+)$/i)?.[1];
  if (basic === undefined) return undefined;
  const name = Buffer.from(basic, 'base64').toString('utf8').split(':')[0];
  return name === '' ? undefined : name;
}

/** The user a call acts for: the one its Authorization names, or the daemon's own user. */
export function requestUser(files: FileSystem, context: HandlerContext): Promise<FileUser> {
  return files.user(basicUserName(context));
}
