import { Agent, type AgentOptions, type ClientRequestArgs } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

type Connected = (error: Error | null, socket: Duplex) => void;

/**
 * An HTTP agent for the sandbox's own services: it connects to 127.0.0.1 and, when nothing
 * listens there, to [::1] (a server bound to `localhost` may have taken only the IPv6 one).
 * The choice is made before the request is written, so a request body is never half sent to
 * the wrong address; pooled connections are reused whichever address they went to.
 */
export class LoopbackAgent extends Agent {
  constructor(options: AgentOptions) {
    super(options);
  }

  override createConnection(options: ClientRequestArgs, connected?: Connected): undefined {
    const port = Number(options.port);
    const done = connected ?? (() => {});
    dial('127.0.0.1', port, (error, socket) => {
      if (!error) return done(null, socket);
      if ((error as NodeJS.ErrnoException).code !== 'ECONNREFUSED') return done(error, socket);
      dial('::1', port, (errorV6, socketV6) => {
        // Either way, the error to report is the IPv4 refusal: IPv6 may be off altogether.
        done(errorV6 ? error : null, socketV6);
      });
    });
    return undefined;
  }
}

function dial(host: string, port: number, then: (error: Error | null, socket: Socket) => void): void {
  const socket = connect({ host, port, noDelay: true });
  const onError = (error: Error) => {
    socket.off('connect', onConnect);
    socket.destroy();
    then(error, socket);
  };
  const onConnect = () => {
    socket.off('error', onError);
    then(null, socket);
  };
  socket.once('error', onError);
  socket.once('connect', onConnect);
}
