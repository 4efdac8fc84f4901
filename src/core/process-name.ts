import { SandboxError } from './errors.ts';

const MAX_NAME_BYTES = 255;

// C0 controls, DEL and C1 controls: they cannot be typed, shown or logged safely.
// Half of a UTF-16 pair alone: not text, and UTF-8 has no bytes for it.
const LONE_SURROGATE = /\p{Cs}/u;

const CONTROL = /\p{Cc}/u;

/**
 * Why a process name is refused, or undefined when it is fine: any UTF-8 text of 1 to 255
 * bytes without `/` or control characters, not all digits (digits address a pid), and not `.`
 * or `..`. A name stands in a URL path percent-encoded.
 */
export function processNameProblem(name: string): string | undefined {
  if (name === '') return 'must not be empty';
  if (LONE_SURROGATE.test(name)) return 'must be valid Unicode text';
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) return `must be at most ${MAX_NAME_BYTES} bytes of UTF-8`;
  if (name.includes('/')) return "must not contain '/'";
  if (CONTROL.test(name)) return 'must not contain control characters';
  if (/^\d+$/.test(name)) return 'must not be all digits (digits address a pid)';
  // URLs fold these path segments away, percent-encoded or not: no route could name them.
  if (name === '.' || name === '..') return "must not be '.' or '..'";
  return undefined;
}

export function assertProcessName(name: string): void {
  const problem = processNameProblem(name);
  if (problem === undefined) return;
  const shown = name.length > 40 ? `${JSON.stringify(name.slice(0, 40))}…` : JSON.stringify(name);
  throw new SandboxError('invalid_argument', `name ${shown}: ${problem}`);
}

/** A pid, when the reference is one: a number, or text of digits only. */
export function pidOf(ref: number | string): number | undefined {
  if (typeof ref === 'number') return ref;
  return /^\d+$/.test(ref) ? Number(ref) : undefined;
}
