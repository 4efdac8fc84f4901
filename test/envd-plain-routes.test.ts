import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, useDaemon } from './helpers/daemon.ts';

// --envd-port 0: a second free port stands in for envd's 49983, which may be taken here.
const daemon = useDaemon(['--envd', '--envd-port', '0'], { SANDBOXD_TEST_MARKER: 'marker-value' });

test('--envd listens on a second port that serves the same daemon', async () => {
  const listening = () =>
    [...daemon.output().matchAll(/listening on (http:\/\/\S+)/g)].map((m) => m[1] as string);
  // The daemon prints one line per port; the second may still be on its way.
  await eventually(() => listening().length === 2);
  const urls = listening();
  assert.notEqual(urls[0], urls[1]);
  const started = await fetch(`${urls[1]}/api/v1/processes`, {
    method: 'POST',
    body: JSON.stringify({ command: 'sleep', args: ['1000'] }),
  });
  const { pid } = (await started.json()) as { pid: number };
  try {
    const seen = await fetch(`${urls[0]}/api/v1/processes/${pid}`);
    assert.equal(((await seen.json()) as { status: string }).status, 'running');
  } finally {
    await fetch(`${urls[0]}/api/v1/processes/${pid}`, { method: 'DELETE' });
  }
});

test('GET /health is 204 with no body and Cache-Control: no-store', async () => {
  const response = await fetch(`${daemon.url}/health`);
  assert.equal(response.status, 204);
  assert.equal(response.headers.get('cache-control'), 'no-store');
  assert.equal(await response.text(), '');
});

test('GET /envs is the environment processes start from', async () => {
  const response = await fetch(`${daemon.url}/envs`);
  assert.equal(response.status, 200);
  const envs = (await response.json()) as Record<string, string>;
  assert.equal(envs.SANDBOXD_TEST_MARKER, 'marker-value');
  assert.equal(typeof envs.PATH, 'string');
});

test('GET /metrics reports numbers for cpu, memory and disk', async () => {
  const response = await fetch(`${daemon.url}/metrics`);
  const metrics = (await response.json()) as Record<string, unknown>;
  for (const field of [
    'ts',
    'cpu_count',
    'cpu_used_pct',
    'mem_total',
    'mem_used',
    'disk_used',
    'disk_total',
  ]) {
    assert.equal(typeof metrics[field], 'number', field);
  }
  assert.ok((metrics.mem_used as number) <= (metrics.mem_total as number));
  assert.ok((metrics.disk_used as number) <= (metrics.disk_total as number));
  assert.ok((metrics.cpu_used_pct as number) >= 0 && (metrics.cpu_used_pct as number) <= 100);
  assert.equal((await fetch(`${daemon.url}/metrics`, { method: 'POST' })).status, 405);
});
