import { constants } from 'node:os';
import { SandboxError } from './errors.ts';

export { exitCodeOf, SIGHUP, SIGINT, SIGKILL, SIGPIPE, SIGTERM, signalName } from './signal-numbers.ts';

// Linux: 1..31 are the classic signals, 34..64 the real-time range (SIGRTMIN..SIGRTMAX as the
// kernel sees them; glibc reserves 32 and 33 for itself).
const REALTIME_MIN = 34;
const REALTIME_MAX = 64;

export function isValidSignal(signal: unknown): signal is number {
  if (typeof signal !== 'number' || !Number.isInteger(signal)) return false;
  return (signal >= 1 && signal <= 31) || (signal >= REALTIME_MIN && signal <= REALTIME_MAX);
}

/** Checks a signal number before it can reach kill(2), where 0 or junk would mean something else. */
export function validateSignal(signal: unknown): number {
  if (!isValidSignal(signal)) {
    throw new SandboxError(
      'invalid_signal',
      `invalid signal ${JSON.stringify(signal)}: expected a number in 1..31 or ${REALTIME_MIN}..${REALTIME_MAX}`,
    );
  }
  return signal;
}

/** The number of a signal Node names (as in a child's 'exit' event). */
export function signalNumber(name: NodeJS.Signals): number {
  return constants.signals[name];
}
