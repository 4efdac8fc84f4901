import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';

/** A program some tests drive that the project does not install itself: it comes from Debian. */
export interface Tool {
  /** The command, looked up on PATH, or an absolute path. */
  command: string;
  /** The Debian package that brings it. */
  debianPackage: string;
}

export const tini: Tool = { command: 'tini', debianPackage: 'tini' };
export const tmux: Tool = { command: 'tmux', debianPackage: 'tmux' };
export const shellcheck: Tool = { command: 'shellcheck', debianPackage: 'shellcheck' };
export const xvfb: Tool = { command: 'Xvfb', debianPackage: 'xvfb' };
export const x11vnc: Tool = { command: 'x11vnc', debianPackage: 'x11vnc' };
export const xev: Tool = { command: 'xev', debianPackage: 'x11-utils' };
/** Debian's chromium; never a browser a package downloads. */
export const chromium: Tool = {
  command: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  debianPackage: 'chromium',
};

async function isExecutable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/** Where the tool's command is, or undefined where it is not to be found. */
export async function locate(tool: Tool, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  if (isAbsolute(tool.command)) return (await isExecutable(tool.command)) ? tool.command : undefined;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, tool.command);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** True where the environment says it is CI, which must test everything. */
export function isCI(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = env.CI?.toLowerCase();
  return value !== undefined && value !== '' && value !== '0' && value !== 'false';
}

/** `needs tini, tmux (apt-get install tini tmux)`: what is missing and the one line that brings it. */
export function missingReason(missing: Tool[]): string {
  const names = missing.map((tool) => tool.command.split('/').pop());
  const packages = [...new Set(missing.map((tool) => tool.debianPackage))];
  return `needs ${names.join(', ')} (apt-get install ${packages.join(' ')})`;
}

/**
 * The `skip` option of tests that need these tools: false when every one is here; elsewhere a
 * reason that names each missing tool and its Debian package. Under CI a missing tool is an
 * error instead, naming it, so that the file fails rather than quietly testing less.
 */
export async function needs(tools: Tool[], env: NodeJS.ProcessEnv = process.env): Promise<string | false> {
  const found = await Promise.all(tools.map((tool) => locate(tool, env)));
  const missing = tools.filter((_, index) => found[index] === undefined);
  if (missing.length === 0) return false;
  const reason = missingReason(missing);
  if (isCI(env)) throw new Error(`CI must run every test, but it ${reason}`);
  return reason;
}
