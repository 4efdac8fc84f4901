import { type Command, Option } from 'commander';
import { DaemonError, SandboxClient, UnreachableError } from '../client/index.ts';

export const DEFAULT_URL = 'http://127.0.0.1:9501';

export interface ConnectionOptions {
  url: string;
  token?: string;
}

/** The options every client command takes: where the daemon is, and its token. */
export function withConnection(command: Command): Command {
  return command
    .addOption(new Option('--url <url>', 'the daemon to talk to').env('SANDBOXD_URL').default(DEFAULT_URL))
    .addOption(
      new Option(
        '--token <token>',
        "the daemon's token (SANDBOXD_TOKEN keeps it out of the process list)",
      ).env('SANDBOXD_TOKEN'),
    );
}

export function connect(options: ConnectionOptions): SandboxClient {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new UsageError(`--url: '${options.url}' is not a URL (such as ${DEFAULT_URL})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--url: '${options.url}' must start with http:// or https://`);
  }
  return new SandboxClient({ url: options.url, token: options.token });
}

/** Wrong use of a command, found before anything was sent. */
export class UsageError extends Error {}

/** A failure the command has already explained, to end with this exit code. */
export class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/** What a reference names, for messages: `process 'web'`, `terminal session abc`. */
export interface Subject {
  kind: 'process' | 'terminal session' | 'file';
  ref: string;
}

const HINTS: Record<Subject['kind'], string> = {
  process: ' (`sandboxd ps` lists them)',
  'terminal session': ' (`sandboxd ps` lists processes: attach takes the id or the pid of a terminal)',
  file: '',
};

/**
 * Says what went wrong in words a person can act on, on stderr; returns the exit code.
 * `failure` is the code for errors before or around the work (exec uses 125, as docker does).
 */
export function explain(error: unknown, client: SandboxClient | undefined, failure = 1, subject?: Subject) {
  const say = (text: string) => process.stderr.write(`sandboxd: ${text}\n`);
  if (error instanceof Exit) return error.code;
  if (error instanceof UsageError) {
    say(error.message);
    return 2;
  }
  if (error instanceof UnreachableError) {
    say(`${error.message}\n  (set --url or SANDBOXD_URL to where the daemon listens)`);
    return failure;
  }
  if (error instanceof DaemonError) {
    const at = client ? ` at ${client.url}` : '';
    if (error.status === 401) {
      say(
        client?.token
          ? `the daemon${at} refused the token: check --token or SANDBOXD_TOKEN`
          : `the daemon${at} needs a token: pass --token or set SANDBOXD_TOKEN`,
      );
      return failure;
    }
    if (error.code === 'SPAWN_FAILED') {
      say(error.message);
      if (/command not found/.test(error.message)) return 127;
      if (/permission denied/.test(error.message)) return 126;
      return failure;
    }
    if (error.status === 404 && subject) {
      const hint = HINTS[subject.kind];
      say(`no ${subject.kind} '${subject.ref}' on the daemon${at}${hint}`);
      return failure;
    }
    say(`${error.message} (${error.code})`);
    return failure;
  }
  say(error instanceof Error ? error.message : String(error));
  return failure;
}

/**
 * Runs a client command: errors are explained and the process exits with the code the
 * command returns (or the error's).
 */
export async function run(
  options: ConnectionOptions,
  work: (client: SandboxClient) => Promise<number | undefined>,
  { failure = 1, subject }: { failure?: number; subject?: Subject } = {},
): Promise<never> {
  let client: SandboxClient | undefined;
  let code: number;
  try {
    client = connect(options);
    code = (await work(client)) ?? 0;
  } catch (error) {
    code = explain(error, client, failure, subject);
  }
  await flush();
  process.exit(code);
}

/** Waits until stdout and stderr have handed everything written to the OS. */
export async function flush(): Promise<void> {
  await Promise.all(
    [process.stdout, process.stderr].map(
      (stream) => new Promise<void>((resolve) => stream.write('', () => resolve())),
    ),
  );
}

/** For a follow's onRetry: says once that the connection is gone and is being sought again. */
export function reconnectNotice(): (error: unknown) => void {
  let said = false;
  return (error) => {
    if (said) return;
    said = true;
    process.stderr.write(`sandboxd: ${(error as Error).message}; trying again for up to a minute\n`);
  };
}

export function example(...lines: string[]): string {
  return `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((line) => `  $ ${line}`).join('\n')}\n`;
}
