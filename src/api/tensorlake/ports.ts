import './zod-setup.ts';
import * as z from 'zod';
import { sendJson } from '../../http/json.ts';
import type { RouteContext } from '../../http/router.ts';
import type { ListeningPort, ListeningPorts } from '../../ports/listening.ts';
import { parsePort } from '../../ports/port-number.ts';
import { waitForPort } from '../../ports/wait.ts';
import { ApiError } from './errors.ts';
import type { ListeningPortInfo, PortReady } from './responses.ts';
import { DEFAULT_WAIT_MS, waitTimeout, whileClientWaits } from './waiting.ts';

export const waitQuery = z.object({ timeout_ms: waitTimeout });

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
      await whileClientWaits(res, async (clientGone) => {
        const ready = await waitForPort(port, { timeoutMs, signal: clientGone });
        if (!ready) {
          throw new ApiError(
            408,
            'REQUEST_TIMEOUT',
            `port ${port} accepted no connection within ${timeoutMs} ms`,
          );
        }
        const body: PortReady = { port, address: ready.address, waited_ms: ready.waitedMs };
        sendJson(res, 200, body);
      });
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
