export type {
  DaemonInfo,
  ListeningPortInfo,
  OutputPage,
  PortReady,
  PreviewLink,
  ProcessInfo,
  PtyCreated,
  PtySessionInfo,
  TruncatedEvent,
} from '../api/tensorlake/responses.ts';
export {
  type ClientOptions,
  type FileStat,
  type FollowedLine,
  type FollowOptions,
  type OutputView,
  type PtyCreateRequest,
  SandboxClient,
  type StartRequest,
} from './client.ts';
export { DaemonError, UnreachableError } from './errors.ts';
export type { TerminalConnection, TerminalEnd } from './terminal.ts';
