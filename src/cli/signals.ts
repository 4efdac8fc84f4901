import { constants } from 'node:os';
import { InvalidArgumentError } from 'commander';
import { DaemonError, type SandboxClient, UnreachableError } from '../client/index.ts';
import { signalExitCode } from '../core/signal-numbers.ts';

/**
 * Sends the signals this process receives to a remote process group instead of dying of them.
 * Signals that arrive before the remote pid is known are sent once it is.
 */
export function forwardSignals(client: SandboxClient, names: NodeJS.Signals[]) {
  let pid: number | undefined;
  const pending: number[] = [];
  const send = (signal: number) => {
    if (pid === undefined) {
      pending.push(signal);
      return;
    }
    client.signal(pid, signal).catch((error: unknown) => {
      // It has ended meanwhile: its end is on its way to the reader.
      if (error instanceof DaemonError && ['PROCESS_NOT_RUNNING', 'NOT_FOUND'].includes(error.code)) return;
      process.stderr.write(`sandboxd: could not pass on signal ${signal}: ${(error as Error).message}\n`);
      // Nobody to pass it to: the signal was meant to end something, so this ends.
      if (error instanceof UnreachableError) process.exit(signalExitCode(signal));
    });
  };
  const handlers = names.map((name) => {
    const handler = () => send(constants.signals[name]);
    process.on(name, handler);
    return [name, handler] as const;
  });
  return {
    target(remote: number) {
      pid = remote;
      for (const signal of pending.splice(0)) send(signal);
    },
    stop() {
      for (const [name, handler] of handlers) process.off(name, handler);
    },
  };
}

/** `TERM`, `SIGTERM`, `term` or `15` → 15. */
export function parseSignal(text: string): number {
  if (/^\d+$/.test(text)) return Number(text);
  const name = text.toUpperCase().replace(/^(SIG)?/, 'SIG') as NodeJS.Signals;
  const number = constants.signals[name];
  if (number === undefined) {
    throw new InvalidArgumentError(
      `'${text}' is not a signal: use a name such as TERM, SIGKILL or HUP, or a number`,
    );
  }
  return number;
}
