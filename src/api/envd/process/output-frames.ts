import type { StreamName } from '../../../core/log-record.ts';

/**
 * The one message of the process service that is encoded by hand: a Start or Connect response
 * holding a data event, `{event: {data: {stdout | stderr | pty: bytes}}}`, as a whole Connect
 * streaming frame (1 flag byte, 4-byte big-endian length, payload). It is nearly all the
 * bytes a busy stream sends, and the library's encoding of it costs several copies of the
 * output (and, for JSON, a JSON.stringify and a TextEncoder pass over the base64 text). Both
 * StartResponse and ConnectResponse hold the event as field 1, so one encoding serves both.
 * test/connect-output-encoder.test.ts proves it byte-equal to protobuf-es and connect-es.
 */

// Wire type 2 (length-delimited) tags: StartResponse.event = 1, ProcessEvent.data = 2, and
// DataEvent.stdout/stderr/pty = 1/2/3.
const EVENT_TAG = 0x0a;
const DATA_TAG = 0x12;
const OUTPUT_TAGS: Record<StreamName, number> = { stdout: 0x0a, stderr: 0x12, pty: 0x1a };

// A Connect frame's header: a flag byte (0: an uncompressed message) and the payload length.
const ENVELOPE_BYTES = 5;
// Three tags and three varint lengths of at most 5 bytes each (a frame is under 4 GiB).
const MAX_PREFIX_BYTES = 3 * (1 + 5);

/**
 * The binary frame as chunks: a header of envelope, tags and lengths, then the data as it came
 * (no copy of it). `data` may be empty.
 */
export function binaryDataFrame(stream: StreamName, data: readonly Uint8Array[]): Uint8Array[] {
  let size = 0;
  for (const part of data) size += part.length;
  const outputBytes = 1 + varintBytes(size) + size;
  const eventBytes = 1 + varintBytes(outputBytes) + outputBytes;
  const payloadBytes = 1 + varintBytes(eventBytes) + eventBytes;
  const header = Buffer.allocUnsafe(ENVELOPE_BYTES + MAX_PREFIX_BYTES);
  header[0] = 0;
  header.writeUInt32BE(payloadBytes, 1);
  let at = ENVELOPE_BYTES;
  header[at++] = EVENT_TAG;
  at = writeVarint(header, at, eventBytes);
  header[at++] = DATA_TAG;
  at = writeVarint(header, at, outputBytes);
  header[at++] = OUTPUT_TAGS[stream];
  at = writeVarint(header, at, size);
  return [header.subarray(0, at), ...data.filter((part) => part.length > 0)];
}

// The JSON text around the base64 of the data: field names as protobuf-es's toJson writes
// them (json_name, which is the proto name for these three fields, so `useProtoFieldName`
// changes nothing), no whitespace, as JSON.stringify.
const JSON_PREFIXES: Record<StreamName, Buffer> = {
  stdout: Buffer.from('{"event":{"data":{"stdout":"', 'latin1'),
  stderr: Buffer.from('{"event":{"data":{"stderr":"', 'latin1'),
  pty: Buffer.from('{"event":{"data":{"pty":"', 'latin1'),
};
const JSON_SUFFIX = Buffer.from('"}}}', 'latin1');

/**
 * The JSON frame as one buffer. Bytes are standard base64 with padding, as protobuf-es writes
 * them; base64 needs no JSON escaping, so it is written into the frame as it is.
 */
export function jsonDataFrame(stream: StreamName, data: readonly Uint8Array[]): Uint8Array {
  const base64 = joined(data).toString('base64');
  const prefix = JSON_PREFIXES[stream];
  const payloadBytes = prefix.length + base64.length + JSON_SUFFIX.length;
  const frame = Buffer.allocUnsafe(ENVELOPE_BYTES + payloadBytes);
  frame[0] = 0;
  frame.writeUInt32BE(payloadBytes, 1);
  let at = ENVELOPE_BYTES + prefix.copy(frame, ENVELOPE_BYTES);
  at += frame.write(base64, at, 'latin1');
  JSON_SUFFIX.copy(frame, at);
  return frame;
}

/** The parts as one Buffer, copied only when there are several. */
function joined(data: readonly Uint8Array[]): Buffer {
  if (data.length === 1) {
    const [only] = data as [Uint8Array];
    return Buffer.isBuffer(only) ? only : Buffer.from(only.buffer, only.byteOffset, only.length);
  }
  return Buffer.concat(data);
}

function varintBytes(value: number): number {
  let bytes = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    bytes++;
  }
  return bytes;
}

function writeVarint(target: Buffer, at: number, value: number): number {
  while (value >= 0x80) {
    target[at++] = (value % 0x80) | 0x80;
    value = Math.floor(value / 0x80);
  }
  target[at++] = value;
  return at;
}
