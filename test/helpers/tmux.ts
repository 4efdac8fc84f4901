import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eventually } from './daemon.ts';

const run = promisify(execFile);

/**
 * A tmux server of its own (its own socket) with one window running an interactive local
 * shell: a terminal to type into and read the screen of, as a person would.
 */
export class Tmux {
  private constructor(
    readonly dir: string,
    private readonly socket: string,
  ) {}

  static async start(env: Record<string, string>, { cols = 100, rows = 30 } = {}): Promise<Tmux> {
    const dir = await mkdtemp(join(tmpdir(), 'sandboxd-tmux-'));
    const tmux = new Tmux(dir, join(dir, 'socket'));
    const variables = Object.entries({ PS1: 'local$ ', ...env }).map(([k, v]) => `'${k}=${v}'`);
    const shell = `env ${variables.join(' ')} bash --norc --noprofile`;
    await tmux.tmux('new-session', '-d', '-x', String(cols), '-y', String(rows), shell);
    await tmux.waitForScreen(/^local\$/m);
    return tmux;
  }

  async tmux(...args: string[]): Promise<string> {
    return (await run('tmux', ['-S', this.socket, ...args])).stdout;
  }

  /** A line typed and Enter. */
  async type(line: string): Promise<void> {
    await this.tmux('send-keys', '-l', line);
    await this.tmux('send-keys', 'Enter');
  }

  /** Keys by tmux's names: C-p, Enter, … */
  async keys(...keys: string[]): Promise<void> {
    await this.tmux('send-keys', ...keys);
  }

  /** Clears the screen from the local shell, so that old text cannot satisfy a wait. */
  async clear(): Promise<void> {
    await this.type('clear');
    await this.waitForScreen(/^local\$\s*$/);
  }

  screen(): Promise<string> {
    return this.tmux('capture-pane', '-p');
  }

  /** The screen shows the text (polled: a screen sends no event). */
  async waitForScreen(needle: string | RegExp, ms = 15_000): Promise<void> {
    let last = '';
    try {
      await eventually(async () => {
        last = await this.screen();
        return typeof needle === 'string' ? last.includes(needle) : needle.test(last);
      }, ms);
    } catch {
      throw new Error(`the screen never showed ${needle}; it shows:\n${last}`);
    }
  }

  /** Resolves when a command in the pane runs `tmux wait-for -S channel` (see signalCommand). */
  waitForChannel(channel: string): Promise<void> {
    const waiter = spawn('tmux', ['-S', this.socket, 'wait-for', channel], { stdio: 'ignore' });
    return once(waiter, 'exit').then(() => {});
  }

  /** The shell command that wakes waitForChannel(channel). */
  signalCommand(channel: string): string {
    return `tmux -S ${this.socket} wait-for -S ${channel}`;
  }

  async paneTty(): Promise<string> {
    return (await this.tmux('display-message', '-p', '#{pane_tty}')).trim();
  }

  async resize(cols: number, rows: number): Promise<void> {
    await this.tmux('resize-window', '-x', String(cols), '-y', String(rows));
  }

  async stop(): Promise<void> {
    await this.tmux('kill-server').catch(() => {});
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** The local terminal's modes as `stty -a` prints them, less its size, which a test changes. */
export async function terminalModes(tty: string): Promise<string> {
  const { stdout } = await run('stty', ['-a', '-F', tty]);
  return stdout.replace(/rows \d+; columns \d+;/, '');
}
