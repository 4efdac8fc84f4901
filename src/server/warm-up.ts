import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { PACKAGE_ROOT } from '../package-root.ts';

/** Below this many allowed connections, the one the warm-up holds could be a client's. */
export const WARM_UP_MIN_CONNECTIONS = 64;

/**
 * Requests of the daemon's own, sent once it listens, so that a client's first requests do not
 * pay for what V8 and Node do once (compiling each function on its first call, Node's first
 * HTTP exchange, Connect's and protobuf's tables of a method): the health check, a file read
 * (the package's own package.json), and a process start and a Connect Start that are refused
 * before anything starts (no command). Nothing changes: no process, no file. One connection,
 * one request at a time, a few ms in all; a failure is of no consequence and is ignored.
 */
export async function warmUp(url: string, token: string | undefined): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const json = { ...auth, 'content-type': 'application/json' };
  const ownFile = encodeURIComponent(fileURLToPath(new URL('package.json', PACKAGE_ROOT)));
  // A Connect streaming request: one message in an envelope (flags 0, then its length).
  const message = Buffer.from(JSON.stringify({ process: {} }));
  const envelope = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), message]);
  envelope.writeUInt32BE(message.length, 1);
  try {
    await send(agent, 'GET', `${url}/api/v1/health`, {});
    await send(agent, 'GET', `${url}/api/v1/files?path=${ownFile}`, auth);
    await send(agent, 'POST', `${url}/api/v1/processes`, json, '{}');
    await send(
      agent,
      'POST',
      `${url}/process.Process/Start`,
      {
        ...auth,
        'content-type': 'application/connect+json',
      },
      envelope,
    );
  } catch {
    // The daemon is stopping, or refused: it is only slower on its first requests.
  } finally {
    agent.destroy();
  }
}

function send(
  agent: Agent,
  method: string,
  url: string,
  headers: Record<string, string>,
  body?: string | Buffer,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent }, (response) => {
      response.resume();
      response.once('end', resolve);
      response.once('error', reject);
    });
    req.once('error', reject);
    req.end(body);
  });
}
