import { once } from 'node:events';
import { createServer, type IncomingMessage, type RequestListener, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A web app for previews to reach: a real server on the loopback, on a port of its own. */
export interface TestApp {
  port: number;
  server: Server;
  close(): Promise<void>;
}

/** Starts an app on 127.0.0.1 (or `host`) on a free port. */
export async function startApp(listener: RequestListener, host = '127.0.0.1'): Promise<TestApp> {
  const server = createServer(listener);
  server.listen(0, host);
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    server,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** An app that answers every request with what it received, as JSON. */
export function echoApp(host?: string): Promise<TestApp> {
  return startApp((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => {
      const text = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(text);
    });
  }, host);
}

/** What an echo app saw. */
export interface Echo {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** A port nothing listens on (one the OS just gave out and took back). */
export async function freePort(): Promise<number> {
  const app = await startApp(() => {});
  await app.close();
  return app.port;
}

export interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** One request to the daemon with the Host a browser would send; the whole answer. */
export async function requestWithHost(
  daemonUrl: string,
  host: string,
  path: string,
  {
    method = 'GET',
    headers = {},
    body,
  }: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const req = request(`${daemonUrl}${path}`, { method, headers: { ...headers, host }, agent: false });
  req.end(body);
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  res.setEncoding('utf8');
  let text = '';
  for await (const chunk of res) text += chunk;
  return { status: res.statusCode ?? 0, headers: res.headers, body: text };
}
