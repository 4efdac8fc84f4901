import type { MessageInitShape } from '@bufbuild/protobuf';
import type { HandlerContext } from '@connectrpc/connect';
import type { FileSystem } from '../../../files/file-system.ts';
import type { DirectoryWatch, WatchEvent } from '../../../files/watch.ts';
import type { WatchDirRequest, WatchDirResponseSchema } from '../../../gen/filesystem/filesystem_pb.ts';
import { translated } from '../errors.ts';
import { KEEPALIVE, keepaliveMs, throwIfDeadlinePassed, withKeepalives } from '../keepalive.ts';
import { filesystemEvent } from './entry-info.ts';
import { requestUser } from './user.ts';

type WatchDirResponseInit = MessageInitShape<typeof WatchDirResponseSchema>;

/**
 * WatchDir: start, then the directory's events as they happen, with keepalives in between,
 * until the client goes or its deadline passes. A client too slow to take the events ends
 * with resource_exhausted (it must look at the directory again) rather than grow the daemon.
 */
export function watchDir(files: FileSystem) {
  return async function* (
    request: WatchDirRequest,
    context: HandlerContext,
  ): AsyncGenerator<WatchDirResponseInit> {
    const watch = await translated(async () => {
      const user = await requestUser(files, context);
      const path = files.resolve(request.path, user);
      return files.watch(path, { recursive: request.recursive, includeEntry: request.includeEntry });
    });
    try {
      yield { event: { case: 'start', value: {} } };
      const batches = eventBatches(watch, context.signal);
      for await (const batch of withKeepalives(batches, keepaliveMs(context))) {
        if (batch === KEEPALIVE) {
          yield { event: { case: 'keepalive', value: {} } };
          continue;
        }
        for (const event of batch) yield { event: { case: 'filesystem', value: filesystemEvent(event) } };
      }
      throwIfDeadlinePassed(context);
    } finally {
      watch.close();
    }
  };
}

async function* eventBatches(watch: DirectoryWatch, signal: AbortSignal): AsyncGenerator<WatchEvent[]> {
  for (;;) {
    await watch.waitForEvents(signal);
    if (signal.aborted || watch.isClosed) return;
    const events = await translated(() => watch.take());
    if (events.length > 0) yield events;
  }
}
