import { Code, ConnectError, type HandlerContext } from '@connectrpc/connect';
import type { FileSystem } from '../../../files/file-system.ts';
import type { DirectoryWatch } from '../../../files/watch.ts';
import type {
  CreateWatcherRequest,
  GetWatcherEventsRequest,
  RemoveWatcherRequest,
} from '../../../gen/filesystem/filesystem_pb.ts';
import { crypto } from '../../../node-on-demand.ts';
import { translated } from '../errors.ts';
import { filesystemEvent } from './entry-info.ts';
import { requestUser } from './user.ts';

interface Watcher {
  watch: DirectoryWatch;
  polledAt: number;
}

/**
 * Watchers that clients poll: CreateWatcher, GetWatcherEvents (takes what accumulated) and
 * RemoveWatcher. One that nobody polls for `idleMs` is removed, so that a client that forgets
 * its watchers does not hold their inotify watches for ever.
 */
export function watcherRoutes(files: FileSystem, { idleMs }: { idleMs: number }) {
  const watchers = new Map<string, Watcher>();
  setInterval(
    () => {
      const cutoff = Date.now() - idleMs;
      for (const { watch, polledAt } of watchers.values()) if (polledAt < cutoff) watch.close();
    },
    Math.min(idleMs, 60_000),
  ).unref();

  const find = (id: string): Watcher => {
    const watcher = watchers.get(id);
    if (!watcher) throw new ConnectError(`watcher with id ${id} not found`, Code.NotFound);
    return watcher;
  };

  return {
    createWatcher: (request: CreateWatcherRequest, context: HandlerContext) =>
      translated(async () => {
        const user = await requestUser(files, context);
        const path = files.resolve(request.path, user);
        const watch = await files.watch(path, {
          recursive: request.recursive,
          includeEntry: request.includeEntry,
        });
        const id = `w${crypto().randomBytes(8).toString('hex')}`;
        watchers.set(id, { watch, polledAt: Date.now() });
        watch.onClose(() => watchers.delete(id));
        return { watcherId: id };
      }),

    getWatcherEvents: (request: GetWatcherEventsRequest) =>
      translated(() => {
        const watcher = find(request.watcherId);
        watcher.polledAt = Date.now();
        return { events: watcher.watch.take().map(filesystemEvent) };
      }),

    removeWatcher: (request: RemoveWatcherRequest) =>
      translated(() => {
        find(request.watcherId).watch.close();
        return {};
      }),
  };
}
