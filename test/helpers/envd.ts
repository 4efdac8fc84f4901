import { type Client, createClient } from '@connectrpc/connect';
import { createConnectTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import { Process, type ProcessEvent } from '../../src/gen/process/process_pb.ts';
import type { TestDaemon } from './daemon.ts';

export type ProcessClient = Client<typeof Process>;

/** A Connect client for the process service: binary protobuf by default, JSON on request. */
export function processClient(
  daemon: TestDaemon,
  { binary = true, protocol = 'connect' }: { binary?: boolean; protocol?: 'connect' | 'grpc-web' } = {},
): ProcessClient {
  const options = { baseUrl: daemon.url, httpVersion: '1.1' as const, useBinaryFormat: binary };
  const transport =
    protocol === 'connect' ? createConnectTransport(options) : createGrpcWebTransport(options);
  return createClient(Process, transport);
}

export interface Collected {
  pid: number;
  stdout: string;
  stderr: string;
  pty: string;
  end?: { exitCode: number; exited: boolean; status: string; error?: string };
  keepalives: number;
}

/** Reads a Start/Connect stream to its end, or until `until` says stop. */
export async function collect(
  stream: AsyncIterable<{ event?: ProcessEvent }>,
  until: (seen: Collected) => boolean = () => false,
): Promise<Collected> {
  const seen: Collected = { pid: 0, stdout: '', stderr: '', pty: '', keepalives: 0 };
  for await (const { event } of stream) {
    const value = event?.event;
    if (value?.case === 'start') seen.pid = value.value.pid;
    else if (value?.case === 'keepalive') seen.keepalives++;
    else if (value?.case === 'end') {
      const { exitCode, exited, status, error } = value.value;
      seen.end = { exitCode, exited, status, error };
    } else if (value?.case === 'data' && value.value.output.case) {
      seen[value.value.output.case] += Buffer.from(value.value.output.value).toString();
    }
    if (until(seen)) break;
  }
  return seen;
}

/** Waits for the first event (start) of a stream and hands back the pid and the rest of the stream. */
export async function started(stream: AsyncIterable<{ event?: ProcessEvent }>) {
  const iterator = stream[Symbol.asyncIterator]();
  const first = await iterator.next();
  const event = first.value?.event?.event;
  if (event?.case !== 'start') throw new Error(`expected a start event, got ${event?.case}`);
  return { pid: event.value.pid, rest: { [Symbol.asyncIterator]: () => iterator } };
}
