import { once } from 'node:events';
import WebSocket from 'ws';
import { EXIT, INPUT, OUTPUT, READY, RESIZE } from '../api/tensorlake/pty-frames.ts';
import { openDaemonSocket } from './websocket.ts';

export interface TerminalEnd {
  /** The exit code from the exit frame (128 + N after signal N); undefined if none came. */
  exitCode: number | undefined;
  /** The WebSocket close code: 1000 after an exit, 1001 when the session was deleted. */
  closeCode: number;
  reason: string;
}

/**
 * One client of a terminal session's WebSocket. Output starts flowing once `ready()` is
 * called: the scrollback first, then live output.
 */
export class TerminalConnection {
  /** Resolves when the socket has closed, however that happened. */
  readonly ended: Promise<TerminalEnd>;
  private exitCode: number | undefined;
  private onOutput: (bytes: Buffer) => void = () => {};

  private constructor(private readonly socket: WebSocket) {
    socket.on('message', (frame: Buffer) => {
      if (frame[0] === OUTPUT) this.onOutput(frame.subarray(1));
      else if (frame[0] === EXIT && frame.length >= 5) this.exitCode = frame.readInt32BE(1);
    });
    this.ended = once(socket, 'close').then(([closeCode, reason]) => ({
      exitCode: this.exitCode,
      closeCode: closeCode as number,
      reason: String(reason),
    }));
    // After the handshake a socket error is followed by a close, which `ended` reports.
    socket.on('error', () => {});
  }

  /** Connects; a refusal becomes a DaemonError, no answer at all an UnreachableError. */
  static async open(url: string, headers: Record<string, string>, daemonUrl: string) {
    return new TerminalConnection(await openDaemonSocket(url, daemonUrl, { headers }));
  }

  /** Where output goes; set it before calling ready(). */
  output(listener: (bytes: Buffer) => void): void {
    this.onOutput = listener;
  }

  ready(): void {
    this.send(Buffer.of(READY));
  }

  write(bytes: Uint8Array): void {
    this.send(Buffer.concat([Buffer.of(INPUT), bytes]));
  }

  resize({ cols, rows }: { cols: number; rows: number }): void {
    const frame = Buffer.alloc(5);
    frame[0] = RESIZE;
    frame.writeUInt16BE(Math.min(cols, 0xffff), 1);
    frame.writeUInt16BE(Math.min(rows, 0xffff), 3);
    this.send(frame);
  }

  /** Stops reading output (the daemon then holds it in its log) until resume(). */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Leaves the session running. */
  close(): void {
    this.socket.close(1000, 'detached');
  }

  private send(frame: Buffer): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(frame);
  }
}
