// Linux's signal numbers (x86-64 and arm64 alike), as plain data: the daemon, its client and
// the console (which runs in a browser, without node:os) all read them from here.
export const SIGNAL_NUMBERS = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPWR: 30,
  SIGSYS: 31,
} as const;

export type SignalName = keyof typeof SIGNAL_NUMBERS;

export const { SIGHUP, SIGINT, SIGKILL, SIGPIPE, SIGTERM } = SIGNAL_NUMBERS;

const NAMES = new Map<number, string>(Object.entries(SIGNAL_NUMBERS).map(([name, number]) => [number, name]));

/** "SIGKILL" for 9; the real-time range has no names, so "SIG40" for 40. */
export function signalName(signal: number): string {
  return NAMES.get(signal) ?? `SIG${signal}`;
}

/** How a shell reports a death by signal N: 128 + N. */
export function signalExitCode(signal: number): number {
  return 128 + signal;
}

/** One number for how a process ended, as a shell reports it: the exit status, or 128 + N after signal N. */
export function exitCodeOf({
  exitCode,
  signal,
}: {
  exitCode: number | null;
  signal: number | null;
}): number | null {
  return exitCode ?? (signal === null ? null : signalExitCode(signal));
}
