import { InvalidArgumentError, Option } from 'commander';
import type { SandboxClient, TerminalConnection } from '../client/index.ts';
import { forwardSignals } from './signals.ts';

const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

export function detachKeysOption(description: string): Option {
  return new Option('--detach-keys <keys>', description)
    .argParser(parseDetachKeys)
    .default(parseDetachKeys(DEFAULT_DETACH_KEYS), DEFAULT_DETACH_KEYS);
}

/** `ctrl-p,ctrl-q` → [0x10, 0x11]; `ctrl-x` is the key with Ctrl, a single character is itself. */
export function parseDetachKeys(text: string): number[] {
  if (text === '') return [];
  return text.split(',').map((key) => {
    const ctrl = /^ctrl-(.)$/i.exec(key)?.[1];
    if (ctrl !== undefined) {
      const code = ctrl.toUpperCase().charCodeAt(0);
      if (code >= 0x40 && code <= 0x5f) return code & 0x1f;
    } else if (key.length === 1) {
      return key.charCodeAt(0);
    }
    throw new InvalidArgumentError(
      `'${key}' is not a key: use a character or ctrl-<letter>, such as ctrl-p,ctrl-q`,
    );
  });
}

/**
 * Watches typed bytes for the detach sequence. Bytes that could start it are held back until
 * the next byte tells; a sequence that does not complete is passed on as typed.
 */
export class DetachMatcher {
  private matched = 0;

  constructor(private readonly keys: readonly number[]) {}

  /** The bytes to pass on, and whether the sequence is complete (what follows it is dropped). */
  feed(chunk: Uint8Array): { forward: Uint8Array; detach: boolean } {
    if (this.keys.length === 0) return { forward: chunk, detach: false };
    const forward: number[] = [];
    for (const byte of chunk) {
      if (byte === this.keys[this.matched]) {
        this.matched += 1;
        if (this.matched === this.keys.length) return { forward: Uint8Array.from(forward), detach: true };
        continue;
      }
      forward.push(...this.keys.slice(0, this.matched));
      this.matched = byte === this.keys[0] ? 1 : 0;
      if (this.matched === 0) forward.push(byte);
    }
    return { forward: Uint8Array.from(forward), detach: false };
  }
}

export function localSize(): { cols: number; rows: number } {
  const { columns, rows } = process.stdout;
  return process.stdout.isTTY && columns && rows ? { cols: columns, rows } : { cols: 80, rows: 24 };
}

export interface TerminalOutcome {
  /** The program's exit code (128 + N after signal N), if it ended. */
  exitCode: number | undefined;
  detached: boolean;
  /** How the socket closed, when it was neither an exit nor a detach. */
  closeCode: number;
}

/**
 * Joins this terminal to a remote one until the program ends or the user detaches: local raw
 * mode, keystrokes out, output in, window size changes (SIGWINCH) passed on. SIGTERM, SIGHUP
 * and SIGINT sent to this process go to the remote process group. The local terminal's mode is
 * restored on the way out, however that comes about.
 */
export async function joinTerminal(
  client: SandboxClient,
  connection: TerminalConnection,
  { pid, detachKeys }: { pid: number; detachKeys: number[] },
): Promise<TerminalOutcome> {
  const { stdin, stdout } = process;
  const raw = stdin.isTTY === true;
  const restore = () => {
    if (raw && stdin.isRaw) stdin.setRawMode(false);
  };
  process.on('exit', restore);
  if (raw) stdin.setRawMode(true);
  const signals = forwardSignals(client, ['SIGTERM', 'SIGHUP', 'SIGINT']);
  signals.target(pid);

  let detached = false;
  const matcher = new DetachMatcher(detachKeys);
  const onInput = (chunk: Buffer) => {
    const { forward, detach } = matcher.feed(chunk);
    if (forward.length > 0) connection.write(forward);
    if (detach) {
      detached = true;
      connection.close();
    }
  };
  const onResize = () => connection.resize(localSize());
  connection.output((bytes) => {
    if (!stdout.write(bytes)) {
      connection.pause();
      stdout.once('drain', () => connection.resume());
    }
  });
  stdin.on('data', onInput);
  if (stdout.isTTY) stdout.on('resize', onResize);
  connection.resize(localSize());
  connection.ready();
  try {
    const end = await connection.ended;
    return { exitCode: end.exitCode, detached, closeCode: end.closeCode };
  } finally {
    stdin.off('data', onInput);
    stdout.off('resize', onResize);
    signals.stop();
    restore();
    stdin.pause();
  }
}

/** What to say when a terminal connection closed without an exit code; the exit code to use. */
export function explainTerminalEnd(outcome: TerminalOutcome, sessionId: string, failure: number): number {
  if (outcome.detached) {
    process.stderr.write(`\r\nsandboxd: detached; \`sandboxd attach ${sessionId}\` returns to it\r\n`);
    return 0;
  }
  if (outcome.exitCode !== undefined) return outcome.exitCode;
  process.stderr.write(
    outcome.closeCode === 1001
      ? `\r\nsandboxd: the terminal session ${sessionId} was ended\r\n`
      : `\r\nsandboxd: lost the connection to terminal session ${sessionId}; it may still run: \`sandboxd attach ${sessionId}\`\r\n`,
  );
  return failure;
}
