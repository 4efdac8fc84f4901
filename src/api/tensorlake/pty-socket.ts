import type { WebSocket } from 'ws';
import { EXIT, INPUT, OUTPUT, READY, RESIZE } from './pty-frames.ts';
import type { PtySession, PtySessions } from './pty-sessions.ts';

export interface PtySocketOptions {
  /** The scrollback replayed on every attach. */
  scrollbackBytes: number;
  /** Input bytes a client may send per second, sustained; bursts up to four times that. */
  inputBytesPerSecond: number;
  /** A client that answers no ping within this long is dropped. */
  pingIntervalMs: number;
}

const CLOSE_EXIT = 1000;
const CLOSE_GOING_AWAY = 1001;
const CLOSE_POLICY = 1008;

/**
 * One client attached to a terminal session. Output is held until the client says it is
 * ready; then the scrollback is replayed and live output follows, read from the log at the
 * client's own pace. When the process ends the client gets the exit frame and a close.
 */
export function serveTerminal(
  socket: WebSocket,
  session: PtySession,
  sessions: PtySessions,
  options: PtySocketOptions,
): void {
  const stop = new AbortController();
  const client = { terminate: () => socket.close(CLOSE_GOING_AWAY, 'session terminated') };
  sessions.attach(session, client);
  let streaming = false;
  let alive = true;
  let allowance = options.inputBytesPerSecond * 4;
  let allowanceAt = Date.now();

  const pinger = setInterval(() => {
    if (!alive) {
      socket.terminate();
      return;
    }
    alive = false;
    socket.ping();
  }, options.pingIntervalMs);
  socket.on('pong', () => {
    alive = true;
  });

  socket.on('close', () => {
    clearInterval(pinger);
    stop.abort();
    sessions.detach(session, client);
  });
  // ws ends the connection itself after an error, sending the close code first (1009 for a
  // frame too large); terminating here cut that frame off, and the client saw only 1006.
  socket.on('error', () => {});

  socket.on('message', (frame: Buffer) => {
    try {
      handleFrame(frame);
    } catch {
      // Input or a resize racing the process's exit: the exit frame is on its way.
    }
  });

  const handleFrame = (frame: Buffer) => {
    const opcode = frame[0];
    if (opcode === INPUT) {
      const now = Date.now();
      allowance = Math.min(
        options.inputBytesPerSecond * 4,
        allowance + ((now - allowanceAt) / 1000) * options.inputBytesPerSecond,
      );
      allowanceAt = now;
      allowance -= frame.length - 1;
      if (allowance < 0) {
        socket.close(CLOSE_POLICY, 'input rate limit exceeded');
        return;
      }
      if (session.child.running) session.child.writeTerminal(frame.subarray(1));
    } else if (opcode === RESIZE && frame.length >= 5) {
      const size = { cols: frame.readUInt16BE(1), rows: frame.readUInt16BE(3) };
      if (session.child.running) session.child.resize(size);
    } else if (opcode === READY && !streaming) {
      streaming = true;
      stream(socket, session, options, stop.signal).catch(() => socket.terminate());
    }
  };
}

async function stream(
  socket: WebSocket,
  session: PtySession,
  options: PtySocketOptions,
  signal: AbortSignal,
): Promise<void> {
  const { log } = session.child;
  const from = await log.tailStart('pty', options.scrollbackBytes);
  for await (const batch of log.follow(from, signal)) {
    const frame = Buffer.concat([Buffer.of(OUTPUT), ...batch.map((record) => record.data)]);
    // Waiting for each send to be written keeps a slow client's backlog in the log, not in memory.
    await new Promise<void>((resolve) => socket.send(frame, () => resolve()));
  }
  if (signal.aborted) return;
  await session.child.done;
  const exit = Buffer.alloc(5);
  exit[0] = EXIT;
  const code = session.exitCode ?? 0;
  exit.writeInt32BE(code, 1);
  socket.send(exit);
  socket.close(CLOSE_EXIT, `exit:${code}`);
}
