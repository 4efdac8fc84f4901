import type { MessageInitShape } from '@bufbuild/protobuf';
import type { HandlerContext } from '@connectrpc/connect';
import type { LogRecord, StreamName } from '../../../core/log-record.ts';
import type { ExitStatus, SandboxProcess } from '../../../core/process.ts';
import { signalName } from '../../../core/signals.ts';
import type { ProcessEventSchema } from '../../../gen/process/process_pb.ts';
import { KEEPALIVE, keepaliveMs, throwIfDeadlinePassed, withKeepalives } from '../keepalive.ts';
import { type PreEncoded, preEncodedFrames } from '../rpc-handler.ts';
import { binaryDataFrame, jsonDataFrame } from './output-frames.ts';

type ProcessEventInit = MessageInitShape<typeof ProcessEventSchema>;
/** A Start or Connect response (the two are alike); `{}` stands for a pre-encoded one. */
type ResponseInit = { event?: ProcessEventInit };
const response = (event: ProcessEventInit['event']): ResponseInit => ({ event: { event } });

/**
 * A process's events for one watcher, as Start or Connect responses: start, everything it has
 * printed so far, live output, then its end. Each watcher reads the log at its own pace, so a
 * slow or vanished watcher holds up neither the process nor the other watchers. On a Connect
 * streaming call, data events go out pre-encoded (output-frames.ts), the rest through the
 * library.
 */
export async function* processEvents(
  watched: SandboxProcess,
  context: HandlerContext,
): AsyncGenerator<ResponseInit> {
  const frames = context.values.get(preEncodedFrames);
  yield response({ case: 'start', value: { pid: watched.pid } });
  const batches = watched.log.follow(watched.log.startSeq, context.signal);
  const sentUpTo = new Map<StreamName, number>();
  try {
    for await (const batch of withKeepalives(batches, keepaliveMs(context))) {
      if (batch === KEEPALIVE) yield response({ case: 'keepalive', value: {} });
      else yield* dataEvents(batch, sentUpTo, frames);
    }
  } finally {
    await batches.return(undefined);
  }
  throwIfDeadlinePassed(context);
  if (context.signal.aborted) return;
  yield response({ case: 'end', value: endEvent(await watched.exited) });
}

/** One data event: pre-encoded where the call allows it, else a message for the library. */
export function dataResponse(
  stream: StreamName,
  parts: Buffer[],
  size: number,
  frames: PreEncoded | undefined,
): ResponseInit {
  if (frames)
    return frames.send(frames.binary ? binaryDataFrame(stream, parts) : [jsonDataFrame(stream, parts)]);
  const value = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, size);
  return response({ case: 'data', value: { output: { case: stream, value } } });
}

// Small records of one stream are joined into messages of up to this size; a record this big
// goes out on its own, without a copy.
const MESSAGE_BYTES = 64 * 1024;

/**
 * Records go out as data events, as they were read; small adjacent ones of one stream are
 * joined. Where a stream's records do not follow on from the last ones sent (output dropped
 * past the retention cap before this watcher read it), a truncated event says how many bytes
 * are missing.
 */
function* dataEvents(
  records: LogRecord[],
  sentUpTo: Map<StreamName, number>,
  frames: PreEncoded | undefined,
): Generator<ResponseInit> {
  let stream: StreamName = 'stdout';
  let parts: Buffer[] = [];
  let size = 0;
  const flush = function* (): Generator<ResponseInit> {
    if (parts.length === 0) return;
    const data = dataResponse(stream, parts, size, frames);
    parts = [];
    size = 0;
    yield data;
  };
  for (const record of records) {
    const { data } = record;
    if (data.length === 0) continue;
    const missing = record.offset - (sentUpTo.get(record.stream) ?? 0);
    sentUpTo.set(record.stream, record.offset + data.length);
    if (missing > 0 || record.stream !== stream || size + data.length > MESSAGE_BYTES) yield* flush();
    if (missing > 0) {
      yield response({ case: 'truncated', value: { stream: record.stream, bytes: BigInt(missing) } });
    }
    stream = record.stream;
    parts.push(data);
    size += data.length;
  }
  yield* flush();
}

// How Go's os.ProcessState spells a signal in "signal: killed", which clients may show.
const SIGNAL_WORDS: Record<string, string> = {
  SIGHUP: 'hangup',
  SIGINT: 'interrupt',
  SIGQUIT: 'quit',
  SIGILL: 'illegal instruction',
  SIGTRAP: 'trace/breakpoint trap',
  SIGABRT: 'aborted',
  SIGBUS: 'bus error',
  SIGFPE: 'floating point exception',
  SIGKILL: 'killed',
  SIGUSR1: 'user defined signal 1',
  SIGSEGV: 'segmentation fault',
  SIGUSR2: 'user defined signal 2',
  SIGPIPE: 'broken pipe',
  SIGALRM: 'alarm clock',
  SIGTERM: 'terminated',
};

/**
 * The end as the reference daemon reports it, from Go's os.ProcessState: `exited` only for a
 * normal exit, and `error` (Go's wait error) for anything but exit status 0. An OOM kill has no
 * word of its own there: it reads as the SIGKILL (or exit) it was.
 */
function endEvent(exit: ExitStatus) {
  if (exit.signal === null) {
    const status = `exit status ${exit.exitCode}`;
    return {
      exitCode: exit.exitCode ?? 0,
      exited: true,
      status,
      ...(exit.exitCode === 0 ? {} : { error: status }),
    };
  }
  const name = signalName(exit.signal as number);
  const status = `signal: ${SIGNAL_WORDS[name] ?? name}`;
  return { exitCode: -1, exited: false, status, error: status };
}
