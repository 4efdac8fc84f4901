import {
  appListening,
  type BenchOptions,
  benchDaemon,
  call,
  elapsedMs,
  freePort,
  keepAliveAgent,
  killProcess,
  percentile,
  type Row,
  row,
  startProcess,
} from './common.ts';

const APP = `
const http = require('node:http');
const body = Buffer.from('{"hello":"from the app"}');
http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}).listen(Number(process.argv[1]), '127.0.0.1', () => console.log('listening'));
`;

export async function previewLatency(options: BenchOptions): Promise<Row[]> {
  const samples = options.quick ? 200 : 3000;
  const daemon = await benchDaemon(options, 'preview');
  const port = await freePort();
  const pid = await startProcess(daemon, { command: process.execPath, args: ['-e', APP, String(port)] });
  const rounds: { figure: number; baseline: number }[] = [];
  try {
    await appListening(daemon.api, pid);
    const direct = `http://127.0.0.1:${port}/`;
    const preview = `${daemon.url}/`;
    const host = { host: `${port}-bench.localhost:${new URL(daemon.url).port}` };
    const directAgent = keepAliveAgent();
    const previewAgent = keepAliveAgent();
    // Connections made and code paths warmed before anything is counted.
    for (let i = 0; i < 200; i++) {
      await call(direct, { agent: directAgent });
      await call(preview, { agent: previewAgent, headers: host });
    }
    for (let round = 0; round < options.rounds; round++) {
      const directMs: number[] = [];
      const previewMs: number[] = [];
      for (let i = 0; i < samples; i++) {
        let started = performance.now();
        await call(direct, { agent: directAgent });
        directMs.push(elapsedMs(started));
        started = performance.now();
        await call(preview, { agent: previewAgent, headers: host });
        previewMs.push(elapsedMs(started));
      }
      const figure = percentile(previewMs, 0.5);
      const baseline = percentile(directMs, 0.5);
      rounds.push({ figure, baseline });
      options.log(
        `12: round ${round + 1}: preview p50 ${figure.toFixed(3)} ms, p99 ${percentile(previewMs, 0.99).toFixed(3)} ms; ` +
          `direct p50 ${baseline.toFixed(3)} ms, p99 ${percentile(directMs, 0.99).toFixed(3)} ms`,
      );
    }
    directAgent.destroy();
    previewAgent.destroy();
  } finally {
    await killProcess(daemon, pid);
    await daemon.stop();
  }
  const done = row(
    { id: '12', what: 'HTTP preview GET, p50', unit: 'ms', baselineIs: 'the app directly' },
    rounds,
  );
  const added = done.figure - done.baseline;
  return [{ ...done, note: `+${added.toFixed(3)} ms (goal ≤ +0.3 ms)` }];
}
