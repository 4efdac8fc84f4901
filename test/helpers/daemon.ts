import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface TestDaemon {
  /** http://127.0.0.1:PORT */
  url: string;
  /** url + /api/v1 */
  api: string;
  token: string | undefined;
  child: ChildProcess;
  /** Headers that carry the token, if any. */
  headers: Record<string, string>;
  /** Everything the daemon printed so far. */
  output(): string;
  /** SIGTERM, then waits for the daemon to exit; returns its exit code. */
  stop(): Promise<number | null>;
}

/** How startDaemon starts the daemon, besides its arguments and environment. */
export interface StartOptions {
  built?: boolean;
  user?: { uid: number; gid: number };
  nodeArgs?: string[];
  wrap?: string[];
}

/**
 * Starts the real daemon (the CLI, through tsx) on a free loopback port; `built` runs the
 * compiled CLI from dist/ instead, as `npm start` does (run `npm run build` first); `user`
 * runs it as another user; `nodeArgs` go to node (a profiler, say); `wrap` is a command line
 * that the daemon's is appended to (a namespace, say), which must exec it so that the child
 * is the daemon.
 */
export async function startDaemon(
  args: string[] = [],
  env: Record<string, string> = {},
  { built = false, user, nodeArgs = [], wrap = [] }: StartOptions = {},
): Promise<TestDaemon> {
  // SANDBOXD_TEST_BUILT=1 runs every test's daemon from dist/: what the package ships.
  const fromDist = built || process.env.SANDBOXD_TEST_BUILT === '1';
  const cli = [...nodeArgs, ...(fromDist ? ['dist/cli.js'] : ['--import', 'tsx', 'src/cli.ts'])];
  const command = [...wrap, process.execPath, ...cli, 'serve', '--port', '0', ...args];
  const child = spawn(command[0] as string, command.slice(1), {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...user,
  });
  let printed = '';
  child.stdout.on('data', (chunk: Buffer) => {
    printed += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    printed += chunk.toString();
  });
  const url = await new Promise<string>((resolve, reject) => {
    const onData = () => {
      const match = printed.match(/listening on (http:\/\/\S+)/);
      if (match) {
        child.stdout.off('data', onData);
        resolve(match[1] as string);
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) =>
      reject(new Error(`daemon exited with ${code} before listening:\n${printed}`)),
    );
    child.once('error', (error) => reject(new Error(`daemon did not start: ${error.message}`)));
  });
  const tokenIndex = args.indexOf('--token');
  const token = tokenIndex === -1 ? env.SANDBOXD_TOKEN : args[tokenIndex + 1];
  return {
    url,
    api: `${url}/api/v1`,
    token,
    child,
    headers: token ? { authorization: `Bearer ${token}` } : {},
    output: () => printed,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      return code as number | null;
    },
  };
}

type Hook<T extends unknown[] = []> = (...args: T) => unknown;

const evaluated = <T>(value: T | (() => T)): T =>
  typeof value === 'function' ? (value as () => T)() : value;

/** What useDaemon starts, and what a test file does around the start and the stop. */
export interface DaemonFixture extends StartOptions {
  /** The daemon's arguments; a function is called at the start, after `beforeStart`. */
  args?: string[] | (() => string[]);
  /** Its environment, over this process's; a function is called at the start, after `beforeStart`. */
  env?: Record<string, string> | (() => Record<string, string>);
  /** Truthy: no daemon, no hooks (for a file whose tests are all skipped). */
  skip?: unknown;
  /** Runs in the `before` hook ahead of the start: what the daemon's arguments need. */
  beforeStart?: Hook;
  /** Runs in the same `before` hook once the daemon listens: clients and servers that use it. */
  afterStart?: Hook<[daemon: TestDaemon]>;
  /** Runs in the `after` hook while the daemon still runs (if it started), ahead of `stop`. */
  beforeStop?: Hook<[daemon: TestDaemon]>;
  /** How the daemon is stopped (if it started); `daemon.stop()` unless given. */
  stop?: Hook<[daemon: TestDaemon]>;
  /** Runs last in the `after` hook (once the `before` hook ran), whether or not the daemon started. */
  afterStop?: Hook;
}

/**
 * One daemon for the tests of a file (or of the `describe` it is called in): registers a
 * `before` hook that starts it and an `after` hook that stops it, and returns a handle that reads
 * through to the started daemon (it throws if used before the `before` hook ran).
 *
 * Set-up that needs the daemon, or that the daemon needs, goes in `beforeStart`/`afterStart` and
 * its undoing in `beforeStop`/`afterStop`, not in hooks of their own: Node 20 runs a file's root
 * `before` hooks concurrently, so one hook cannot count on another having finished.
 *
 *   const daemon = useDaemon(['--token', TOKEN]);
 *
 *   let client: SandboxClient;
 *   const daemon = useDaemon({
 *     args: ['--token', TOKEN],
 *     afterStart: () => {
 *       client = sandboxClient(daemon); // the handle reads through from here on
 *     },
 *   });
 */
export function useDaemon(args?: string[], env?: Record<string, string>, options?: DaemonFixture): TestDaemon;
export function useDaemon(fixture: DaemonFixture): TestDaemon;
export function useDaemon(
  argsOrFixture: string[] | DaemonFixture = [],
  env: Record<string, string> = {},
  options: DaemonFixture = {},
): TestDaemon {
  const fixture = Array.isArray(argsOrFixture) ? { ...options, args: argsOrFixture, env } : argsOrFixture;
  let entered = false;
  let failed = false;
  let started: TestDaemon | undefined;
  const current = (): TestDaemon => {
    if (started) return started;
    throw new Error(
      failed
        ? 'useDaemon: the daemon did not start (see the error of the before hook)'
        : 'useDaemon: the daemon has not started yet: use it in tests, in hooks and in afterStart',
    );
  };
  if (!fixture.skip) {
    before(async () => {
      entered = true;
      try {
        await fixture.beforeStart?.();
        started = await startDaemon(evaluated(fixture.args), evaluated(fixture.env), fixture);
      } catch (error) {
        failed = true;
        throw error;
      }
      await fixture.afterStart?.(started);
    });
    after(async () => {
      if (!entered) return;
      try {
        if (started) {
          const daemon = started;
          try {
            await fixture.beforeStop?.(daemon);
          } finally {
            await (fixture.stop ? fixture.stop(daemon) : daemon.stop());
          }
        }
      } finally {
        await fixture.afterStop?.();
      }
    });
  }
  return {
    get url() {
      return current().url;
    },
    get api() {
      return current().api;
    },
    get token() {
      return current().token;
    },
    get child() {
      return current().child;
    },
    get headers() {
      return current().headers;
    },
    output: () => current().output(),
    stop: () => current().stop(),
  };
}

/** True while a process with this pid runs; a zombie waiting to be reaped counts as gone. */
export function isAlive(pid: number): boolean {
  try {
    const procStat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state is the first field after the parenthesised command name.
    return procStat.slice(procStat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Polls (every 10 ms, at most `ms`) until the condition holds; for states that send no event. */
export async function eventually(condition: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition still false after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** How many directories a process watches through inotify (one `inotify wd:` line each). */
export function inotifyWatches(pid: number): number {
  let watches = 0;
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    try {
      watches += readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8')
        .split('\n')
        .filter((line) => line.startsWith('inotify wd:')).length;
    } catch {
      // Closed meanwhile.
    }
  }
  return watches;
}

/** The bytes of the files below a folder (the daemon's spill files, say). */
export async function diskBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}
