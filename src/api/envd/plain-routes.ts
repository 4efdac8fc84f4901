import { statfs } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { cpus, freemem, totalmem } from 'node:os';
import { sendJson } from '../../http/json.ts';

const NO_STORE = { 'cache-control': 'no-store' };

export function health(res: ServerResponse): void {
  res.writeHead(204, NO_STORE);
  res.end();
}

export function envs(res: ServerResponse, baseEnv: Record<string, string>): void {
  sendJson(res, 200, baseEnv, NO_STORE);
}

/** CPU use is measured between two calls (since start-up for the first). */
export function metricsRoute() {
  let last = cpuTimes();
  return async (res: ServerResponse) => {
    const now = cpuTimes();
    const total = now.total - last.total;
    const busy = total - (now.idle - last.idle);
    last = now;
    const disk = await statfs('/');
    sendJson(
      res,
      200,
      {
        ts: Math.floor(Date.now() / 1000),
        cpu_count: cpus().length,
        cpu_used_pct: total > 0 ? Math.round((busy / total) * 10_000) / 100 : 0,
        mem_total: totalmem(),
        mem_used: totalmem() - freemem(),
        disk_total: disk.blocks * disk.bsize,
        disk_used: (disk.blocks - disk.bfree) * disk.bsize,
      },
      NO_STORE,
    );
  };
}

function cpuTimes(): { idle: number; total: number } {
  let idle = 0;
  let total = 0;
  for (const { times } of cpus()) {
    idle += times.idle;
    total += times.user + times.nice + times.sys + times.idle + times.irq;
  }
  return { idle, total };
}
