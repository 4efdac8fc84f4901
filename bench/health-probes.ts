// What health checks cost the daemon's event loop: a thousand monitors probing a local server
// every second, beside the idle loop and beside bare node:http GETs (or node:net connections)
// on the same schedule, which is what the probes cannot do without. The server runs in a child
// process of its own, so that only the probing side is measured. Run:
//   node --import tsx bench/health-probes.ts [--type http|tcp] [--monitors 1000]
//     [--interval 1000] [--seconds 5] [--burst]
// --burst starts every monitor at once, instead of spread over the first interval as processes
// started one after another would be.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { Agent, createServer, get } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { HealthCheck } from '../src/core/health/check.ts';
import { HealthMonitor } from '../src/core/health/monitor.ts';

interface Window {
  p50: number;
  p99: number;
  max: number;
  /** Event loop utilisation, 0..1. */
  elu: number;
  /** CPU time of this process over wall time, in percent of one core. */
  cpu: number;
}

const RESOLUTION_MS = 5;

// The histogram holds the time between its timer's runs; less the resolution, the delay.
async function measure(seconds: number): Promise<Window> {
  const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  const elu = performance.eventLoopUtilization();
  const cpu = process.cpuUsage();
  const started = performance.now();
  delay.enable();
  await sleep(seconds * 1000);
  delay.disable();
  const wall = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const ms = (ns: number) => Math.max(0, ns / 1e6 - RESOLUTION_MS);
  return {
    p50: ms(delay.percentile(50)),
    p99: ms(delay.percentile(99)),
    max: ms(delay.max),
    elu: performance.eventLoopUtilization(elu).utilization,
    cpu: ((used.user + used.system) / 1000 / wall) * 100,
  };
}

/** Bare probes on the monitors' schedule: each GET or connection, then the interval, again. */
function bare(type: 'http' | 'tcp', port: number, count: number, intervalMs: number, burst: boolean) {
  const agent = new Agent({ keepAlive: false });
  let stopped = false;
  let probes = 0;
  const loop = (delay: number) =>
    setTimeout(() => {
      if (stopped) return;
      const next = () => {
        probes++;
        loop(intervalMs);
      };
      if (type === 'http') {
        const req = get({ agent, host: '127.0.0.1', port, path: '/health' }, (res) => {
          res.resume();
          res.once('end', next);
        });
        req.once('error', next);
      } else {
        const socket = connect({ host: '127.0.0.1', port });
        socket.once('connect', () => {
          socket.destroy();
          next();
        });
        socket.once('error', next);
      }
    }, delay);
  for (let i = 0; i < count; i++) loop(burst ? 0 : Math.floor((i * intervalMs) / count));
  return {
    take: () => {
      const taken = probes;
      probes = 0;
      return taken;
    },
    stop: () => {
      stopped = true;
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      type: { type: 'string', default: 'http' },
      monitors: { type: 'string', default: '1000' },
      interval: { type: 'string', default: '1000' },
      seconds: { type: 'string', default: '5' },
      burst: { type: 'boolean', default: false },
    },
  });
  const type = values.type === 'tcp' ? 'tcp' : 'http';
  const count = Number(values.monitors);
  const intervalMs = Number(values.interval);
  const seconds = Number(values.seconds);
  const burst = values.burst;

  const server = fork(fileURLToPath(import.meta.url), ['server'], { stdio: 'inherit' });
  const [port] = (await once(server, 'message')) as [number];
  // A moment for the child and this process's lazily loaded modules to settle.
  await sleep(500);
  const idle = await measure(Math.min(2, seconds));

  const plain = bare(type, port, count, intervalMs, burst);
  await sleep(intervalMs + 200);
  plain.take();
  const plainWindow = await measure(seconds);
  const plainProbes = plain.take();
  plain.stop();
  await sleep(intervalMs);

  let probes = 0;
  let failures = 0;
  let lastFailure: string | undefined;
  const onProbe = (result: { ok: boolean; reason?: string }) => {
    probes++;
    if (!result.ok) {
      failures++;
      lastFailure = result.reason;
    }
  };
  const monitors: HealthMonitor[] = [];
  for (let i = 0; i < count; i++) {
    const check: HealthCheck = {
      type,
      port,
      ...(type === 'http' ? { path: '/health' } : {}),
      initialDelayMs: burst ? 0 : Math.floor((i * intervalMs) / count),
      intervalMs,
      timeoutMs: 500,
      failureThreshold: 3,
    };
    monitors.push(new HealthMonitor(check, { onProbe }).start());
  }
  // One interval for every monitor to have begun, then the measured window.
  await sleep(intervalMs + 200);
  probes = 0;
  failures = 0;
  const loaded = await measure(seconds);
  const measuredProbes = probes;
  const measuredFailures = failures;
  for (const monitor of monitors) monitor.stop();
  const healthy = monitors.filter((m) => m.status === 'healthy').length;
  server.disconnect();
  server.kill();

  const row = (name: string, w: Window, done?: number) =>
    `${name.padEnd(36)} p50 ${w.p50.toFixed(2).padStart(6)} ms  p99 ${w.p99.toFixed(2).padStart(6)} ms  max ${w.max
      .toFixed(2)
      .padStart(
        6,
      )} ms  ELU ${(w.elu * 100).toFixed(1).padStart(5)} %  CPU ${w.cpu.toFixed(1).padStart(5)} %` +
    (done === undefined ? '' : `  ${(done / seconds).toFixed(0)} probes/s`);
  const schedule = `${count} × every ${intervalMs} ms${burst ? ', burst' : ''}`;
  console.log(`event loop delay over ${seconds} s (monitorEventLoopDelay), node ${process.version}`);
  console.log(row('idle', idle));
  console.log(row(`bare ${type === 'http' ? 'GETs' : 'connects'}, ${schedule}`, plainWindow, plainProbes));
  console.log(row(`${type} monitors, ${schedule}`, loaded, measuredProbes));
  console.log(
    `monitors: failed probes ${measuredFailures}${lastFailure ? ` (last: ${lastFailure})` : ''}; ` +
      `healthy at the end ${healthy}/${count}`,
  );
}

if (process.argv[2] === 'server') {
  const server = createServer((_req, res) => res.end('ok'));
  server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
    process.send?.((server.address() as AddressInfo).port);
  });
  process.on('disconnect', () => process.exit(0));
} else {
  await main();
}
