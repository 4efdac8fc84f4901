import { z } from 'zod';
import { sendJson } from '../../http/json.ts';
import type { RouteContext } from '../../http/router.ts';
import type { ListeningPort, ListeningPorts } from '../../ports/listening.ts';
import { parsePort } from '../../ports/port-number.ts';
import { waitForPort } from '../../ports/wait.ts';
import { ApiError } from './errors.ts';
import type { ListeningPortInfo, PortReady } from './responses.ts';

export const DEFAULT_WAIT_MS = 30_000;
// The answer says nothing until the wait is over, and proxies cut a request silent for long
// (a minute is common; Node's own fetch gives up on headers after 5): a longer wait is several
// in a row, which is what the client does.
export const MAX_WAIT_MS = 120_000;

const waitMessage = `expected milliseconds, an integer from 0 to ${MAX_WAIT_MS}`;
export const waitQuery = z.object({
  timeout_ms: z
    .string()
    .regex(/^\d{1,9}$/, waitMessage)
    .transform(Number)
    .refine((ms) => ms <= MAX_WAIT_MS, waitMessage)
    .optional()
    .describe(`how long to wait (default ${DEFAULT_WAIT_MS}, at most ${MAX_WAIT_MS}; 0 tries once)`),
});

/** The sandbox's listening ports, and a wait for one to accept connections. */
export function portRoutes(ports: ListeningPorts) {
  return {
    async list({ res }: RouteContext) {
      sendJson(res, 200, { ports: (await ports.list()).map(toWire) });
    },

    async wait({ res, url, params }: RouteContext) {
      const port = parsePort(params.port);
      if (port === undefined) {
        throw new ApiError(400, 'INVALID_REQUEST', `port: '${params.port}' is not a port (1 to 65535)`);
      }
      const timeoutMs = waitQuery.parse(Object.fromEntries(url.searchParams)).timeout_ms ?? DEFAULT_WAIT_MS;
      const clientGone = new AbortController();
      const onClose = () => clientGone.abort();
      res.once('close', onClose);
      try {
        const ready = await waitForPort(port, { timeoutMs, signal: clientGone.signal });
        if (!ready) {
          throw new ApiError(
            408,
            'REQUEST_TIMEOUT',
            `port ${port} accepted no connection within ${timeoutMs} ms`,
          );
        }
        const body: PortReady = { port, address: ready.address, waited_ms: ready.waitedMs };
        sendJson(res, 200, body);
      } catch (error) {
        if (clientGone.signal.aborted) return; // Nobody to answer.
        throw error;
      } finally {
        res.off('close', onClose);
      }
    },
  };
}

function toWire({ port, address, pid, processPid, command, public: open }: ListeningPort): ListeningPortInfo {
  return {
    port,
    address,
    pid,
    ...(processPid === undefined ? {} : { process_pid: processPid }),
    command,
    public: open,
  };
}
