import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
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
  {
    built = false,
    user,
    nodeArgs = [],
    wrap = [],
  }: { built?: boolean; user?: { uid: number; gid: number }; nodeArgs?: string[]; wrap?: string[] } = {},
): Promise<TestDaemon> {
  const cli = [...nodeArgs, ...(built ? ['dist/cli.js'] : ['--import', 'tsx', 'src/cli.ts'])];
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
