import type { ServerResponse } from 'node:http';
import './zod-setup.ts';
import * as z from 'zod';

export const DEFAULT_WAIT_MS = 30_000;
// The answer says nothing until the wait is over, and proxies cut a request silent for long
// (a minute is common; Node's own fetch gives up on headers after 5): a longer wait is several
// in a row, which is what the client does.
export const MAX_WAIT_MS = 120_000;

const waitMessage = `expected milliseconds, an integer from 0 to ${MAX_WAIT_MS}`;

/** `timeout_ms` of a route that waits. */
export const waitTimeout = z
  .string()
  .regex(/^\d{1,9}$/, waitMessage)
  .transform(Number)
  .refine((ms) => ms <= MAX_WAIT_MS, waitMessage)
  .optional()
  .describe(`how long to wait (default ${DEFAULT_WAIT_MS}, at most ${MAX_WAIT_MS}; 0 tries once)`);

/**
 * Runs a wait that ends when the client goes away (then nothing is answered: `undefined`) and
 * otherwise answers as `wait` does.
 */
export async function whileClientWaits<T>(
  res: ServerResponse,
  wait: (clientGone: AbortSignal) => Promise<T>,
): Promise<T | undefined> {
  const clientGone = new AbortController();
  const onClose = () => clientGone.abort();
  res.once('close', onClose);
  try {
    return await wait(clientGone.signal);
  } catch (error) {
    if (clientGone.signal.aborted) return undefined; // Nobody to answer.
    throw error;
  } finally {
    res.off('close', onClose);
  }
}
