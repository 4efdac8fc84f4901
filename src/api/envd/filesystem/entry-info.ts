import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import type { Entry, EntryType } from '../../../files/entry.ts';
import type { WatchEvent, WatchEventType } from '../../../files/watch.ts';
import {
  type EntryInfoSchema,
  EventType,
  type FilesystemEventSchema,
  FileType,
} from '../../../gen/filesystem/filesystem_pb.ts';

const FILE_TYPES: Record<EntryType, FileType> = {
  file: FileType.FILE,
  directory: FileType.DIRECTORY,
  symlink: FileType.SYMLINK,
  other: FileType.UNSPECIFIED,
};

const EVENT_TYPES: Record<WatchEventType, EventType> = {
  create: EventType.CREATE,
  write: EventType.WRITE,
  remove: EventType.REMOVE,
  rename: EventType.RENAME,
  chmod: EventType.CHMOD,
};

export function entryInfo(entry: Entry): MessageInitShape<typeof EntryInfoSchema> {
  return {
    name: entry.name,
    type: FILE_TYPES[entry.type],
    path: entry.path,
    size: BigInt(entry.size),
    mode: entry.mode,
    permissions: entry.permissions,
    owner: entry.owner,
    group: entry.group,
    modifiedTime: timestampFromMs(Math.floor(entry.modifiedMs)),
    symlinkTarget: entry.symlinkTarget,
    metadata: entry.metadata ?? {},
  };
}

export function filesystemEvent(event: WatchEvent): MessageInitShape<typeof FilesystemEventSchema> {
  return {
    name: event.name,
    type: EVENT_TYPES[event.type],
    ...(event.entry ? { entry: entryInfo(event.entry) } : {}),
  };
}
