import { InvalidArgumentError } from 'commander';

/** A `--timeout <ms>` argument. */
export function milliseconds(text: string): number {
  if (!/^\d{1,12}$/.test(text)) throw new InvalidArgumentError('expected milliseconds, a whole number');
  return Number(text);
}
