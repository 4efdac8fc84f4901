import { type Command, InvalidArgumentError } from 'commander';
import { DaemonError, type ProcessInfo, type SandboxClient } from '../client/index.ts';
import { exitCodeOf, SIGPIPE, signalExitCode } from '../core/signal-numbers.ts';
import { type ConnectionOptions, example, reconnectNotice, run, withConnection } from './connection.ts';
import { reportTruncation, writeLines } from './lines.ts';
import { forwardSignals } from './signals.ts';
import { detachKeysOption, explainTerminalEnd, joinTerminal, localSize } from './terminal.ts';

interface ExecOptions extends ConnectionOptions {
  env?: string[];
  workdir?: string;
  user?: string;
  tty?: boolean;
  timeout?: number;
  detachKeys: number[];
}

// As docker exec: 125 when sandboxd itself fails, so it is told apart from the command's codes.
const FAILURE = 125;
const TIMED_OUT = 124;

export function execCommand(program: Command): void {
  withConnection(program.command('exec'))
    .summary('run a command in the sandbox, its input and output here')
    .description(
      'run a command in the sandbox: its stdout and stderr come here as they are printed, stdin ' +
        "(when not a terminal) goes to it, and its exit code is this command's (128 + N after signal N; " +
        '124 after --timeout; 127 command not found; 125 when sandboxd itself failed). ' +
        'Ctrl-C and SIGTERM go to the remote process group.',
    )
    .argument('<command...>', 'the command and its arguments (put -- before them if they start with -)')
    .option('-e, --env <K=V>', 'set a variable (repeatable); K alone passes on the local value', collect)
    .option('-w, --workdir <dir>', 'the working directory')
    .option('-u, --user <user>', 'run as this user: a name, uid or uid:gid')
    .option('-t, --tty', 'run it in a terminal, with this one in raw mode (Ctrl-P Ctrl-Q detaches)')
    .option('--timeout <seconds>', 'kill it after this many seconds', positiveNumber)
    .addOption(detachKeysOption('with -t: the keys that leave it running; "" for none'))
    .passThroughOptions()
    .addHelpText(
      'after',
      example(
        "sandboxd exec -- sh -c 'echo out; echo err >&2; exit 4'",
        'tar czf - src | sandboxd exec -w /work -- tar xzf -',
        'sandboxd exec -t -e TERM -- bash',
        'SANDBOXD_URL=http://10.0.0.7:9501 SANDBOXD_TOKEN=s3cret sandboxd exec --timeout 60 -- make test',
      ),
    )
    .action((argv: string[], options: ExecOptions) =>
      run(options, (client) => (options.tty ? execInTerminal : execPiped)(client, argv, options), {
        failure: FAILURE,
      }),
    );
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function positiveNumber(text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0)
    throw new InvalidArgumentError('expected a positive number of seconds');
  return value;
}

function environment(pairs: string[] = []): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const equals = pair.indexOf('=');
    if (equals === -1) {
      const local = process.env[pair];
      if (local !== undefined) env[pair] = local;
    } else {
      env[pair.slice(0, equals)] = pair.slice(equals + 1);
    }
  }
  return env;
}

/** Pipes both ways: output lines as they come, local stdin (unless a terminal) to its stdin. */
async function execPiped(client: SandboxClient, [command, ...args]: string[], options: ExecOptions) {
  const forwardInput = !process.stdin.isTTY;
  const signals = forwardSignals(client, ['SIGINT', 'SIGTERM', 'SIGHUP']);
  const started = await client.start({
    command: command as string,
    args,
    env: environment(options.env),
    working_dir: options.workdir,
    user: options.user,
    stdin_mode: forwardInput ? 'pipe' : 'closed',
    timeout: options.timeout,
  });
  signals.target(started.pid);
  const brokenPipe = onBrokenPipe(client, started.pid);
  if (forwardInput) void forwardStdin(client, started.pid);
  try {
    for await (const lines of client.follow(started.pid, {
      onRetry: reconnectNotice(),
      onTruncated: reportTruncation,
    }))
      await writeLines(lines, { split: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EPIPE') return brokenPipe();
    throw error;
  }
  return exitCode(await client.get(started.pid), options);
}

/** In a terminal session of its own, joined to this terminal. */
async function execInTerminal(client: SandboxClient, [command, ...args]: string[], options: ExecOptions) {
  const env = environment(options.env);
  env.TERM ??= process.env.TERM ?? 'xterm-256color';
  const { session_id, token } = await client.createTerminal({
    command: command as string,
    args,
    env,
    working_dir: options.workdir,
    user: options.user,
    timeout: options.timeout,
    ...localSize(),
  });
  const connection = await client.attachTerminal(session_id, token);
  const { pid } = await client.terminal(session_id);
  const outcome = await joinTerminal(client, connection, { pid, detachKeys: options.detachKeys });
  if (options.timeout !== undefined && !outcome.detached && outcome.exitCode === 137) {
    return exitCode(await client.get(pid), options);
  }
  return explainTerminalEnd(outcome, session_id, FAILURE);
}

function exitCode(info: ProcessInfo, { timeout }: ExecOptions): number {
  if (info.timed_out) {
    process.stderr.write(`sandboxd: ${info.command} timed out after ${timeout} s and was killed\n`);
    return TIMED_OUT;
  }
  return exitCodeOf({ exitCode: info.exit_code, signal: info.signal }) ?? 128;
}

/** Sends local stdin to the process, then EOF; stops quietly once the process stops taking it. */
async function forwardStdin(client: SandboxClient, pid: number): Promise<void> {
  try {
    for await (const chunk of process.stdin) await client.writeStdin(pid, chunk as Buffer);
    await client.closeStdin(pid);
  } catch (error) {
    if (error instanceof DaemonError && error.code === 'STDIN_NOT_WRITABLE') return;
    process.stderr.write(`sandboxd: stopped passing on stdin: ${(error as Error).message}\n`);
  } finally {
    process.stdin.destroy();
  }
}

/**
 * Output nobody reads here any more (`| head`): the remote command gets SIGPIPE, as it would
 * locally, and this exits as if it had died of it.
 */
function onBrokenPipe(client: SandboxClient, pid: number): () => Promise<number> {
  let signalled: Promise<number> | undefined;
  const brokenPipe = () => {
    signalled ??= client.signal(pid, SIGPIPE).then(
      () => signalExitCode(SIGPIPE),
      () => signalExitCode(SIGPIPE),
    );
    return signalled;
  };
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
      void brokenPipe().then((code) => process.exit(code));
    });
  }
  return brokenPipe;
}
