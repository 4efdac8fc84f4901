import { isUtf8 } from 'node:buffer';
import { type LineItem, type LineRun, type OutputLine, runLines } from '../../core/lines.ts';
import { frame } from './sse.ts';

/** How the lines of one kind of stream look as SSE frames. */
export interface LineFrameShape {
  /** `id:` and `event: output` lines (a follow), or a bare `data:` (run-and-wait). */
  named: boolean;
  /** Whether `data` says which stream the line came from. */
  withStream: boolean;
}

/**
 * Line items written out as SSE frames, ready to send. Runs of plain lines (valid UTF-8 with
 * nothing to escape in JSON, which is most output) are copied into the frames byte for byte,
 * without making a string of each line: the one hot loop of following output.
 */
export function lineFrames(items: readonly LineItem[], shape: LineFrameShape): Buffer {
  const pieces: Buffer[] = [];
  let text = '';
  const flushText = () => {
    if (text === '') return;
    pieces.push(Buffer.from(text));
    text = '';
  };
  for (const item of items) {
    if (item.kind === 'truncated') {
      text += frame({
        id: item.id,
        event: 'truncated',
        data: { truncated_bytes: item.bytes, stream: item.stream },
      });
    } else if (item.kind === 'line') {
      text += lineFrame(item, shape);
    } else if (isPlain(item)) {
      flushText();
      pieces.push(plainRunFrames(item, shape));
    } else {
      for (const line of runLines(item)) text += lineFrame(line, shape);
    }
  }
  flushText();
  return pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces);
}

function lineFrame(line: OutputLine, { named, withStream }: LineFrameShape): string {
  const data = `{"line":${JSON.stringify(line.text)},"timestamp":${line.timestamp}${withStream ? `,"stream":"${line.stream}"` : ''}}`;
  return named ? `id: ${line.id}\nevent: output\ndata: ${data}\n\n` : `data: ${data}\n\n`;
}

/** Whether a run's lines can stand in a JSON string as they are: valid UTF-8, nothing to escape. */
function isPlain({ record, start, end }: LineRun): boolean {
  const data = record.data;
  for (let i = start; i < end; i++) {
    const byte = data[i] as number;
    if (byte >= 0x20 ? byte === 0x22 || byte === 0x5c : byte !== 10 && !(byte === 13 && data[i + 1] === 10)) {
      return false;
    }
  }
  return isUtf8(data.subarray(start, end));
}

function plainRunFrames(run: LineRun, { named, withStream }: LineFrameShape): Buffer {
  const { record, start, end } = run;
  const data = record.data;
  const opening = named ? '\nevent: output\ndata: {"line":"' : 'data: {"line":"';
  const closing = Buffer.from(
    `","timestamp":${record.timestamp}${withStream ? `,"stream":"${record.stream}"` : ''}}\n\n`,
    'latin1',
  );
  const count = run.id - run.firstId + 1;
  const idBytes = named ? 4 + String(run.id).length : 0;
  const out = Buffer.allocUnsafe(end - start + count * (idBytes + opening.length + closing.length));
  let pos = 0;
  let id = run.firstId;
  for (let at = start; at < end; id++) {
    const newline = data.indexOf(10, at);
    const lineEnd = newline > at && data[newline - 1] === 13 ? newline - 1 : newline;
    // Short pieces are copied byte by byte, which beats a call to write() or copy().
    const head = named ? `id: ${id}${opening}` : opening;
    for (let i = 0; i < head.length; i++) out[pos++] = head.charCodeAt(i);
    if (lineEnd - at > 64) pos += data.copy(out, pos, at, lineEnd);
    else for (let i = at; i < lineEnd; i++) out[pos++] = data[i] as number;
    for (let i = 0; i < closing.length; i++) out[pos++] = closing[i] as number;
    at = newline + 1;
  }
  return out.subarray(0, pos);
}
