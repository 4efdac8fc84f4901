import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ProxyServer } from 'http-proxy-3';
import { LoopbackAgent } from './loopback-agent.ts';
import { brokenPage, type Page, refuseWithPage, sendPage, unreachablePage } from './pages.ts';

/** Passes requests and WebSocket upgrades on to a port of the sandbox's loopback. */
export interface LoopbackProxy {
  web(req: IncomingMessage, res: ServerResponse, port: number): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, port: number): void;
  /** Closes the pooled connections to the apps. */
  close(): void;
}

// Whatever the app does, the proxy never waits on the app's behalf: a request lives as long as
// its client and its app both keep it open (an event stream may last hours).
const NO_TIMEOUT = 0;

const PROXY_OPTIONS = {
  // The request target goes on exactly as the client sent it (no URL normalising).
  toProxy: true,
  prependPath: false,
  // X-Forwarded-* are set by the caller (see forward-headers.ts), the same for upgrades.
  xfwd: false,
  proxyTimeout: NO_TIMEOUT,
};

/**
 * The HTTP details (hop-by-hop headers, bodies streamed both ways, upgrades) are
 * http-proxy-3's; this adds where to connect, and what the client sees when the app fails.
 */
export function loopbackProxy(): LoopbackProxy {
  // Requests reuse connections to the app, as a browser would; upgraded connections leave
  // the pool, so they get an agent of their own that keeps none.
  const pooled = new LoopbackAgent({ keepAlive: true });
  const upgrades = new LoopbackAgent({ keepAlive: false });
  // Made on the first preview: http-proxy-3 (with follow-redirects and debug) is code most
  // sandboxes never run. Only that first request waits for it, a few ms.
  let loaded: Promise<ProxyServer> | undefined;
  const proxied = () => {
    // Node's import() names the CommonJS module's exports; a bundle's chunk of it exports only
    // `default`, the module itself; and tsx's `default` is the module's own default export.
    loaded ??= import('http-proxy-3').then((library) => {
      const bundled = library.default as unknown as Partial<typeof library>; // see above
      const Server = library.ProxyServer ?? bundled.ProxyServer;
      return configure(new Server(PROXY_OPTIONS));
    });
    return loaded;
  };
  // Upgraded connections are no longer the HTTP server's to close at shutdown: they are ours.
  const upgraded = new Set<Duplex>();

  return {
    web(req, res, port) {
      void proxied().then((proxy) =>
        proxy.web(req, res, { target: target(port), agent: pooled }, (error) =>
          fail(res, pageFor(error, port)),
        ),
      );
    },
    upgrade(req, socket, head, port) {
      upgraded.add(socket);
      socket.once('close', () => upgraded.delete(socket));
      void proxied().then((proxy) =>
        proxy.ws(req, socket as Socket, head, { target: target(port), agent: upgrades }, (error) =>
          fail(socket, pageFor(error, port)),
        ),
      );
    },
    close() {
      pooled.destroy();
      upgrades.destroy();
      for (const socket of upgraded) socket.destroy();
    },
  };
}

function configure(proxy: ProxyServer): ProxyServer {
  // Errors arrive through each call's callback; this catches those the library emits itself
  // (a client socket's error during an upgrade), which would otherwise be thrown.
  proxy.on('error', (_error, _req, res) => fail(res, undefined));
  // An app that closes in the middle of its answer: the client must see the answer cut off
  // (a reset, not a clean end), and not wait forever for the rest.
  proxy.on('proxyRes', (proxyRes, _req, res) => {
    proxyRes.once('error', () => res.destroy());
  });
  // A client socket closed while the app has yet to answer its upgrade (a reset, shutdown): the
  // connection to the app goes too; the library closes it only once upgraded.
  proxy.on('proxyReqWs', (proxyReq, _req, socket) => {
    socket.once('close', () => proxyReq.destroy());
  });
  return proxy;
}

const target = (port: number) => ({ protocol: 'http:', host: '127.0.0.1', port });

function pageFor(error: Error, port: number): Page {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ECONNREFUSED' || code === 'EADDRNOTAVAIL' ? unreachablePage(port) : brokenPage(port);
}

/** Answers with the page when nothing has been sent yet; otherwise cuts the connection off. */
function fail(res: ServerResponse | Duplex, page: Page | undefined): void {
  if ('writeHead' in res) {
    if (page && !res.headersSent) sendPage(res, page);
    else res.destroy();
    return;
  }
  // Once the app's 101 (or any answer) has gone out, the socket carries the app's bytes.
  const answered = (res as Socket).bytesWritten > 0;
  if (page && res.writable && !answered) refuseWithPage(res, page);
  else res.destroy();
}
