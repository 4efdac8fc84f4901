// What the proxy library costs: a keep-alive GET of a small app on loopback, straight to it,
// through http-proxy-3 (as src/preview uses it: a keep-alive agent to the app), and through a
// minimal pipe written by hand with node:http. p50 and p99 of each, samples interleaved, all in
// this one process. The measurement behind choosing the library; not a row of `npm run bench`.
//
//   node --import tsx bench/preview-proxy-choice.ts [--samples 3000]
import { once } from 'node:events';
import { Agent, createServer, get, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { ProxyServer } from 'http-proxy-3';
import { percentile } from './common.ts';

const { values } = parseArgs({ options: { samples: { type: 'string', default: '3000' } } });
const samples = Number(values.samples);

async function listening(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

const body = Buffer.from('{"hello":"from the app"}');
const app = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
});
const appPort = await listening(app);
const toApp = new Agent({ keepAlive: true });

const library = new ProxyServer({ target: `http://127.0.0.1:${appPort}`, agent: toApp, toProxy: true });
const viaLibrary = createServer((req, res) =>
  library.web(req, res, {}, () => {
    res.writeHead(502);
    res.end();
  }),
);
const viaHand = createServer((req, res) => {
  const upstream = request(
    {
      host: '127.0.0.1',
      port: appPort,
      method: req.method,
      path: req.url,
      headers: req.headers,
      agent: toApp,
    },
    (answer: IncomingMessage) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', () => {
    res.writeHead(502);
    res.end();
  });
  req.pipe(upstream);
});
const ports = {
  direct: appPort,
  'http-proxy-3': await listening(viaLibrary),
  'hand pipe': await listening(viaHand),
};

const client = new Agent({ keepAlive: true, maxSockets: 1 });
function timedGet(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    get({ host: '127.0.0.1', port, path: '/x?y=1', agent: client }, (res) => {
      res.resume();
      res.on('end', () => resolve(performance.now() - started));
    }).on('error', reject);
  });
}

const times: Record<string, number[]> = Object.fromEntries(Object.keys(ports).map((name) => [name, []]));
for (let i = 0; i < 300 + samples; i++) {
  for (const [name, port] of Object.entries(ports)) {
    const ms = await timedGet(port);
    if (i >= 300) times[name]?.push(ms);
  }
}
console.log(`node ${process.version}, ${samples} samples each, after 300 to warm up`);
for (const [name, ms] of Object.entries(times)) {
  console.log(
    `${name.padEnd(14)} p50 ${percentile(ms, 0.5).toFixed(3)} ms   p99 ${percentile(ms, 0.99).toFixed(3)} ms`,
  );
}
client.destroy();
toApp.destroy();
for (const server of [app, viaLibrary, viaHand]) server.close();
