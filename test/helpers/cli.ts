import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { ROOT, type TestDaemon } from './daemon.ts';

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Points SANDBOXD_URL and SANDBOXD_TOKEN at this daemon. */
  daemon?: TestDaemon;
  env?: Record<string, string | undefined>;
  /** Written to stdin, which is then closed; without it stdin is /dev/null. */
  input?: string | Buffer;
  /** Keep stdin an open pipe, for the test to write to. */
  stdinPipe?: boolean;
}

/** A running `sandboxd` client command (the CLI, through tsx), as a user would start it. */
export class CliProcess {
  stdout = '';
  stderr = '';
  readonly result: Promise<CliResult>;
  private waiters: { needle: string; resolve: () => void }[] = [];

  constructor(
    readonly child: ChildProcess,
    input?: string | Buffer,
  ) {
    child.stdout?.on('data', (chunk: Buffer) => {
      this.stdout += chunk.toString();
      this.wake();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
      this.wake();
    });
    if (input !== undefined) child.stdin?.end(input);
    this.result = once(child, 'close').then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as NodeJS.Signals | null,
      stdout: this.stdout,
      stderr: this.stderr,
    }));
  }

  /** Resolves once stdout or stderr contains the text. */
  waitFor(needle: string): Promise<void> {
    if (this.stdout.includes(needle) || this.stderr.includes(needle)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ needle, resolve }));
  }

  private wake(): void {
    const met = this.waiters.filter((w) => this.stdout.includes(w.needle) || this.stderr.includes(w.needle));
    this.waiters = this.waiters.filter((w) => !met.includes(w));
    for (const waiter of met) waiter.resolve();
  }
}

export function cliEnv(daemon: TestDaemon | undefined, env: CliOptions['env'] = {}): NodeJS.ProcessEnv {
  const merged: NodeJS.ProcessEnv = { ...process.env };
  delete merged.SANDBOXD_URL;
  delete merged.SANDBOXD_TOKEN;
  if (daemon) {
    merged.SANDBOXD_URL = daemon.url;
    if (daemon.token) merged.SANDBOXD_TOKEN = daemon.token;
  }
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete merged[key];
    else merged[key] = value;
  }
  return merged;
}

/** The command line that runs the CLI (from source, unless SANDBOXD_TEST_BUILT=1), for a shell or tmux. */
export const CLI =
  // As in daemon.ts: SANDBOXD_TEST_BUILT=1 runs the built CLI.
  process.env.SANDBOXD_TEST_BUILT === '1'
    ? [process.execPath, `${ROOT}dist/cli.js`]
    : [process.execPath, '--import', 'tsx', `${ROOT}src/cli.ts`];

export function startCli(args: string[], { daemon, env, input, stdinPipe }: CliOptions = {}): CliProcess {
  const child = spawn(CLI[0] as string, [...CLI.slice(1), ...args], {
    cwd: ROOT,
    env: cliEnv(daemon, env),
    stdio: [input !== undefined || stdinPipe ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  return new CliProcess(child, input);
}

export function cli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return startCli(args, options).result;
}

/** A loopback port nothing listens on (it was free a moment ago). */
export async function unusedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}
