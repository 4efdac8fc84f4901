// The hand encoding of the process stream's data event (src/api/envd/process/output-frames.ts)
// against the libraries' own: protobuf-es's toBinary and connect-es's JSON serialization for the
// payload, connect-es's serialize-and-envelope transforms for the frame, and, through the real
// rpcHandler on a local server, a whole response stream sent both ways.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import {
  create,
  type DescMessage,
  type DescMethodStreaming,
  type JsonWriteOptions,
  type MessageInitShape,
  type MessageShape,
  toBinary,
  toJsonString,
} from '@bufbuild/protobuf';
import { Code, ConnectError, type ConnectRouter, createClient } from '@connectrpc/connect';
import {
  createAsyncIterable,
  createMethodSerializationLookup,
  encodeEnvelope,
  pipe,
  readAllBytes,
  transformJoinEnvelopes,
  transformSerializeEnvelope,
} from '@connectrpc/connect/protocol';
import { createConnectTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import { dataResponse } from '../src/api/envd/process/events.ts';
import { binaryDataFrame, jsonDataFrame } from '../src/api/envd/process/output-frames.ts';
import { preEncodedFrames, rpcHandler } from '../src/api/envd/rpc-handler.ts';
import type { StreamName } from '../src/core/log-record.ts';
import {
  ConnectResponseSchema,
  Process,
  type ProcessEventSchema,
  StartResponseSchema,
} from '../src/gen/process/process_pb.ts';

const STREAMS: StreamName[] = ['stdout', 'stderr', 'pty'];
const SCHEMAS = [StartResponseSchema, ConnectResponseSchema] as const;
// The limits the router applies by default (validateReadWriteMaxBytes): no cap that matters here.
const LIMITS = { readMaxBytes: 0xffffffff, writeMaxBytes: 0xffffffff, compressMinBytes: 1024 };

/** A deterministic generator (mulberry32), so that a failing case can be run again. */
function random(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function randomBytes(next: () => number, length: number): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) bytes[i] = Math.floor(next() * 256);
  return bytes;
}

/** The data cut into parts at the given lengths (the rest is the last part). */
function cut(data: Buffer, lengths: number[]): Buffer[] {
  const parts: Buffer[] = [];
  let at = 0;
  for (const length of lengths) {
    parts.push(data.subarray(at, Math.min(data.length, at + length)));
    at = Math.min(data.length, at + length);
  }
  parts.push(data.subarray(at));
  return parts;
}

const everyByte = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const seeded = random(1);
const CASES: { name: string; data: Buffer }[] = [
  { name: 'empty', data: Buffer.alloc(0) },
  { name: '1 byte, 0x00', data: Buffer.of(0) },
  { name: '1 byte, 0xff', data: Buffer.of(0xff) },
  { name: '2 bytes (base64 padding ==)', data: Buffer.of(0xfb, 0xff) },
  { name: '3 bytes (no padding)', data: Buffer.of(0xfb, 0xef, 0xbe) },
  { name: 'every byte value 0..255', data: everyByte },
  { name: 'every byte value, reversed', data: Buffer.from(everyByte).reverse() },
  {
    name: 'invalid UTF-8: lone continuation, overlong, surrogate, past U+10FFFF, cut sequence',
    data: Buffer.of(0x80, 0xbf, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xf4, 0x90, 0x80, 0x80, 0xe2, 0x82, 0xfe, 0xff),
  },
  { name: 'text with JSON specials', data: Buffer.from('"quoted" \\ back\nslash\t</script>\u2028 é 😀\r\n') },
  // The data, event and payload lengths crossing varint widths (1/2/3 bytes).
  ...[121, 122, 123, 124, 125, 126, 127, 128, 129, 130, 16_377, 16_380, 16_383, 16_384, 16_385].map((n) => ({
    name: `${n} random bytes`,
    data: randomBytes(seeded, n),
  })),
  { name: '64 KiB random', data: randomBytes(seeded, 64 * 1024) },
  { name: '64 KiB + 1 random', data: randomBytes(seeded, 64 * 1024 + 1) },
  { name: '2 MiB + 3 of one byte (4-byte varint)', data: Buffer.alloc(2 * 1024 * 1024 + 3, 0x41) },
];

function libraryMessage(schema: (typeof SCHEMAS)[number], stream: StreamName, data: Uint8Array) {
  return create(schema, {
    event: { event: { case: 'data', value: { output: { case: stream, value: data } } } },
  });
}

/** What connect-es sends for one message: its serialization for the method, then its envelope. */
async function libraryFrame<O extends DescMessage>(
  method: DescMethodStreaming<DescMessage, O>,
  binary: boolean,
  message: MessageShape<O>,
): Promise<Uint8Array> {
  const serialization = createMethodSerializationLookup(method, undefined, undefined, LIMITS);
  const chunks = pipe(
    createAsyncIterable([message]),
    transformSerializeEnvelope(serialization.getO(binary)),
    transformJoinEnvelopes(),
  );
  return readAllBytes(chunks, Number.MAX_SAFE_INTEGER);
}

const handFrame = (binary: boolean, stream: StreamName, parts: Buffer[]): Buffer =>
  Buffer.concat(binary ? binaryDataFrame(stream, parts) : [jsonDataFrame(stream, parts)]);

/** Every equality the hand encoding owes the libraries, for one data event. */
async function assertSameAsLibrary(stream: StreamName, parts: Buffer[], label: string): Promise<void> {
  const data = Buffer.concat(parts);
  for (const schema of SCHEMAS) {
    const message = libraryMessage(schema, stream, data);
    const binary = handFrame(true, stream, parts);
    const json = handFrame(false, stream, parts);
    const where = `${label}, ${stream}, ${schema.typeName}`;
    // Payloads against protobuf-es itself.
    assert.deepEqual(binary.subarray(5), Buffer.from(toBinary(schema, message)), `binary payload: ${where}`);
    assert.equal(
      json.subarray(5).toString('latin1'),
      toJsonString(schema, message),
      `JSON payload: ${where}`,
    );
    // Options that a router could be given change nothing for this message.
    const options: Partial<JsonWriteOptions>[] = [{ useProtoFieldName: true }, { alwaysEmitImplicit: true }];
    for (const option of options) {
      assert.equal(json.subarray(5).toString('latin1'), toJsonString(schema, message, option), where);
    }
    // Frames against connect-es's own serialization and envelope.
    const frame = (useBinary: boolean) =>
      message.$typeName === 'process.StartResponse'
        ? libraryFrame(Process.method.start, useBinary, message)
        : libraryFrame(Process.method.connect, useBinary, message);
    assert.deepEqual(binary, Buffer.from(await frame(true)), `binary frame: ${where}`);
    assert.deepEqual(json, Buffer.from(await frame(false)), `JSON frame: ${where}`);
    assert.deepEqual(binary, Buffer.from(encodeEnvelope(0, toBinary(schema, message))), where);
  }
}

describe('the hand-encoded data event is byte-equal to the libraries', () => {
  for (const { name, data } of CASES) {
    test(name, async () => {
      for (const stream of STREAMS) await assertSameAsLibrary(stream, [data], name);
    });
  }

  test('data in several parts, empty parts among them, equals the same data whole', async () => {
    const data = randomBytes(random(2), 1000);
    const cuts = [[0], [1], [1, 1], [2, 0, 3], [333, 333], [999], [1000], [0, 0, 500, 0]];
    for (const lengths of cuts) {
      for (const stream of STREAMS) await assertSameAsLibrary(stream, cut(data, lengths), `cut ${lengths}`);
    }
  });

  test('400 random events: random stream, length, bytes and cuts', async () => {
    const next = random(3);
    for (let i = 0; i < 400; i++) {
      // Mostly short, some past the 1- and 2-byte varint widths, a few large.
      const roll = next();
      const length = Math.floor(roll < 0.6 ? next() * 300 : roll < 0.9 ? next() * 40_000 : next() * 300_000);
      const data = randomBytes(next, length);
      const lengths = Array.from({ length: Math.floor(next() * 4) }, () => Math.floor(next() * length));
      const stream = STREAMS[Math.floor(next() * STREAMS.length)] as StreamName;
      await assertSameAsLibrary(stream, cut(data, lengths), `random #${i} (${length} bytes)`);
    }
  });

  test('the binary frame does not copy the data', () => {
    const data = randomBytes(random(4), 1000);
    const parts = cut(data, [400]);
    const [, ...rest] = binaryDataFrame('stdout', parts);
    assert.equal(rest.length, 2);
    for (const [i, chunk] of rest.entries()) assert.equal(chunk, parts[i]);
  });
});

/**
 * A local server with the real rpcHandler and a Start that sends a fixed script of events:
 * data through dataResponse, pre-encoded or (header x-library: 1) not, and everything else as
 * messages, ending with an error or not.
 */
async function scriptServer(script: Script) {
  const seenFrames: boolean[] = [];
  const handle = rpcHandler((router: ConnectRouter) => {
    router.service(Process, {
      async *start(_request, context) {
        const frames = context.values.get(preEncodedFrames);
        seenFrames.push(frames !== undefined);
        const chosen = context.requestHeader.get('x-library') === '1' ? undefined : frames;
        yield { event: { event: { case: 'start', value: { pid: 7 } } } };
        for (const step of script.steps) {
          if ('stream' in step) {
            const size = step.parts.reduce((sum, part) => sum + part.length, 0);
            yield dataResponse(step.stream, step.parts, size, chosen);
          } else yield { event: { event: step.event } };
        }
        if (script.error) throw new ConnectError('the script fails', Code.DeadlineExceeded);
      },
    });
  }, {});
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => res.destroy(error as Error));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, server, seenFrames };
}

type Step =
  | { stream: StreamName; parts: Buffer[] }
  | { event: MessageInitShape<typeof ProcessEventSchema>['event'] };
interface Script {
  steps: Step[];
  error: boolean;
}

/** The raw response body of a Connect streaming Start (HTTP chunking undone by node:http). */
function rawStart(url: string, binary: boolean, library: boolean): Promise<{ status: number; body: Buffer }> {
  const payload = binary
    ? toBinary(Process.method.start.input, create(Process.method.start.input, { process: { cmd: 'x' } }))
    : Buffer.from(JSON.stringify({ process: { cmd: 'x' } }));
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/process.Process/Start`,
      {
        method: 'POST',
        headers: {
          'content-type': binary ? 'application/connect+proto' : 'application/connect+json',
          ...(library ? { 'x-library': '1' } : {}),
        },
      },
      async (res) => {
        const chunks: Buffer[] = [];
        for await (const chunk of res) chunks.push(chunk as Buffer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) });
      },
    );
    req.once('error', reject);
    req.end(encodeEnvelope(0, payload));
  });
}

describe('a whole stream through rpcHandler, pre-encoded or not', () => {
  const data = randomBytes(random(5), 70_000);
  const steps: Step[] = [
    { stream: 'stdout', parts: [Buffer.from('hello\n')] },
    { stream: 'stderr', parts: [everyByte] },
    { event: { case: 'keepalive', value: {} } },
    { stream: 'pty', parts: cut(data, [1, 65_536]) },
    { event: { case: 'truncated', value: { stream: 'stdout', bytes: 12n } } },
    { stream: 'stdout', parts: [Buffer.alloc(0)] },
    { stream: 'stdout', parts: [Buffer.of(0xff, 0xc0, 0xaf)] },
    { event: { case: 'end', value: { exitCode: 0, exited: true, status: 'exit status 0' } } },
  ];

  for (const error of [false, true]) {
    for (const binary of [true, false]) {
      test(`${binary ? 'binary' : 'JSON'}, ${error ? 'ending in an error' : 'ending well'}: the same bytes`, async () => {
        const { url, server, seenFrames } = await scriptServer({ steps, error });
        try {
          const fast = await rawStart(url, binary, false);
          const library = await rawStart(url, binary, true);
          assert.deepEqual(seenFrames, [true, true]);
          assert.equal(fast.status, 200);
          assert.equal(library.status, 200);
          assert.equal(fast.body.length, library.body.length);
          assert.ok(fast.body.equals(library.body), 'the bodies differ');
        } finally {
          server.close();
        }
      });
    }
  }

  test('Connect and gRPC-web clients read the pre-encoded stream; gRPC-web gets no pre-encoding', async () => {
    const { url, server, seenFrames } = await scriptServer({ steps, error: false });
    try {
      for (const [protocol, binary] of [
        ['connect', true],
        ['connect', false],
        ['grpc-web', true],
      ] as const) {
        const options = { baseUrl: url, httpVersion: '1.1' as const, useBinaryFormat: binary };
        const transport =
          protocol === 'connect' ? createConnectTransport(options) : createGrpcWebTransport(options);
        const outputs: string[] = [];
        for await (const { event } of createClient(Process, transport).start({ process: { cmd: 'x' } })) {
          const value = event?.event;
          if (value?.case === 'data') {
            outputs.push(
              `${value.value.output.case}:${Buffer.from(value.value.output.value ?? []).toString('hex')}`,
            );
          } else outputs.push(value?.case ?? 'none');
        }
        assert.deepEqual(outputs, [
          'start',
          `stdout:${Buffer.from('hello\n').toString('hex')}`,
          `stderr:${everyByte.toString('hex')}`,
          'keepalive',
          `pty:${data.toString('hex')}`,
          'truncated',
          'stdout:',
          'stdout:ffc0af',
          'end',
        ]);
      }
      assert.deepEqual(seenFrames, [true, true, false]);
    } finally {
      server.close();
    }
  });
});
