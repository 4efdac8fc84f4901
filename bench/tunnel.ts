// Rows 10-11: the TCP tunnel (GET /api/v1/tunnels/tcp). Row 10: bytes a service on the
// loopback sends, read through a tunnel with the `ws` library (what the SDKs use), against the
// same bytes read straight from the service over loopback TCP, interleaved in each round; the
// note gives the same through a relay that is nothing but Node's pipe, for scale. Row
// 11: the daemon's resident memory with 1000 tunnels open and idle, against the same daemon
// before (after a few tunnels opened and closed, so that loading the code is not counted). A
// fresh daemon each round.
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import {
  type BenchDaemon,
  type BenchOptions,
  benchDaemon,
  elapsedMs,
  inBatches,
  MiB,
  median,
  type Row,
  row,
} from './common.ts';

const PEERS = fileURLToPath(new URL('./tcp-peers.ts', import.meta.url));

/** A process of tcp-peers.ts, once it listens. */
async function peer(...args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(PEERS, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [port] = (await once(child, 'message')) as [number];
  return { child, port };
}

async function stopPeer({ child }: { child: ChildProcess }): Promise<void> {
  const exited = once(child, 'exit');
  child.disconnect();
  await exited;
}

/** A service that sends back what it gets. */
async function echo(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

async function closeServer(server: Server): Promise<void> {
  server.close();
  await once(server, 'close');
}

function openTunnel(daemon: BenchDaemon, port: number): Promise<WebSocket> {
  const ws = new WebSocket(`${daemon.url.replace(/^http/, 'ws')}/api/v1/tunnels/tcp?port=${port}`, {
    perMessageDeflate: false,
  });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_request, response) =>
      reject(new Error(`tunnel refused: ${response.statusCode}`)),
    );
    ws.once('error', reject);
  });
}

/** MB/s of reading the whole of what the source sends, straight over loopback TCP. */
async function readDirect(port: number, bytes: number): Promise<number> {
  const started = performance.now();
  const socket: Socket = connect({ host: '127.0.0.1', port });
  let received = 0;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
  });
  await once(socket, 'close');
  if (received !== bytes) throw new Error(`direct: ${received} of ${bytes} bytes`);
  return bytes / MiB / (elapsedMs(started) / 1000);
}

/** MiB/s of reading the whole of what the source sends, through a tunnel. */
async function readThroughTunnel(daemon: BenchDaemon, port: number, bytes: number): Promise<number> {
  const started = performance.now();
  const ws = await openTunnel(daemon, port);
  let received = 0;
  ws.on('message', (data: Buffer) => {
    received += data.length;
  });
  const [code] = await once(ws, 'close');
  if (received !== bytes || code !== 1000)
    throw new Error(`tunnel: ${received} of ${bytes} bytes, close ${code}`);
  return bytes / MiB / (elapsedMs(started) / 1000);
}

export async function tunnelThroughput(options: BenchOptions): Promise<Row[]> {
  const bytes = (options.quick ? 32 : 1024) * MiB;
  const source = await peer('source', String(bytes));
  const relay = await peer('relay', String(source.port));
  const rounds: { figure: number; baseline: number }[] = [];
  const relayed: number[] = [];
  try {
    for (let round = 0; round < options.rounds; round++) {
      const daemon = await benchDaemon(options, `tunnel-throughput-${round + 1}`);
      try {
        // The first pass compiles the code on each path.
        await readDirect(source.port, bytes);
        await readDirect(relay.port, bytes);
        await readThroughTunnel(daemon, source.port, bytes);
        const baseline = await readDirect(source.port, bytes);
        const figure = await readThroughTunnel(daemon, source.port, bytes);
        relayed.push(await readDirect(relay.port, bytes));
        rounds.push({ figure, baseline });
        options.log(
          `10: round ${round + 1}: tunnel ${figure.toFixed(0)} MiB/s, direct ${baseline.toFixed(0)} MiB/s, ` +
            `a Node pipe relay ${relayed.at(-1)?.toFixed(0)} MiB/s`,
        );
      } finally {
        await daemon.stop();
      }
    }
  } finally {
    await stopPeer(relay);
    await stopPeer(source);
  }
  return [
    row(
      {
        id: '10',
        what: `TCP tunnel, ${bytes / MiB} MiB service → client`,
        unit: 'MiB/s',
        baselineIs: 'direct TCP',
        note: `goal ≥ 0.5; a Node pipe relay: ${median(relayed).toFixed(0)} MiB/s`,
      },
      rounds,
    ),
  ];
}

export async function idleTunnels(options: BenchOptions): Promise<Row[]> {
  const count = options.quick ? 100 : 1000;
  const service = await echo();
  const rounds: { figure: number; baseline: number }[] = [];
  const roundTrip = async (ws: WebSocket) => {
    ws.send(Buffer.of(1));
    await once(ws, 'message');
  };
  try {
    for (let round = 0; round < options.rounds; round++) {
      const daemon = await benchDaemon(options, `idle-tunnels-${round + 1}`);
      let open: WebSocket[] = [];
      try {
        for (const ws of await inBatches(Array.from({ length: 10 }), 10, () =>
          openTunnel(daemon, service.port),
        )) {
          await roundTrip(ws);
          ws.close();
          await once(ws, 'close');
        }
        const idle = await daemon.rssMiB();
        open = await inBatches(Array.from({ length: count }), 50, async () => {
          const ws = await openTunnel(daemon, service.port);
          await roundTrip(ws);
          return ws;
        });
        const loaded = await daemon.rssMiB();
        rounds.push({ figure: loaded, baseline: idle });
        options.log(
          `11: round ${round + 1}: RSS ${loaded.toFixed(0)} MiB with ${count} tunnels (idle ${idle.toFixed(0)})`,
        );
      } finally {
        await inBatches(open, 50, async (ws) => {
          ws.close();
          await once(ws, 'close');
        });
        await daemon.stop();
      }
    }
  } finally {
    await closeServer(service.server);
  }
  const result = row(
    { id: '11', what: `RSS, ${count} idle TCP tunnels`, unit: 'MiB', baselineIs: 'idle daemon' },
    rounds,
  );
  result.note = `+${(result.figure - result.baseline).toFixed(1)} MiB (goal ≤ +50)`;
  return [result];
}
