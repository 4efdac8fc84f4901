import { Agent, type AgentOptions, type ClientRequestArgs } from 'node:http';
import type { Duplex } from 'node:stream';
import { dialLoopback } from '../ports/loopback-dial.ts';

type Connected = (error: Error | null, socket: Duplex) => void;

// As a tunnel waits for a service that does not accept (a full backlog drops the handshake).
const DIAL_TIMEOUT_MS = 5000;

/**
 * An HTTP agent for the sandbox's own services, which dials as a tunnel does (dialLoopback:
 * 127.0.0.1, then [::1] when refused). The address is chosen before the request is written, so
 * a request body is never half sent to the wrong one; pooled connections are reused whichever
 * address they went to.
 */
export class LoopbackAgent extends Agent {
  constructor(options: AgentOptions) {
    super(options);
  }

  override createConnection(options: ClientRequestArgs, connected?: Connected): undefined {
    const done = connected ?? (() => {});
    dialLoopback(Number(options.port), { timeoutMs: DIAL_TIMEOUT_MS }).then(
      (socket) => {
        // The dial hands the socket back paused; the HTTP client reads it as it likes.
        socket.resume();
        done(null, socket);
      },
      (error: Error) => done(error, undefined as unknown as Duplex), // Node's agent ignores the socket on an error.
    );
    return undefined;
  }
}
