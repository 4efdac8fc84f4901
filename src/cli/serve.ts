import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { CONTAINMENT_CHOICES } from '../core/containment/types.ts';
import { parsePort } from '../ports/port-number.ts';
import { defaultMaxConnections } from '../server/connections.ts';
import { WARM_UP_MIN_CONNECTIONS, warmUp } from '../server/warm-up.ts';
import { resumeOptimiser } from '../v8-tuning.ts';
import { example } from './connection.ts';

const MiB = 1024 * 1024;

function integer(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError('expected a non-negative integer');
  return Number(text);
}

/** A repeatable `--public-port N`: each one is added to the ones before. */
function addPort(text: string, ports: number[] = []): number[] {
  const port = parsePort(text);
  if (port === undefined) throw new InvalidArgumentError('expected a port from 1 to 65535');
  return [...ports, port];
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/** `sandboxd serve`: the daemon. The server is loaded only here, so client commands start fast. */
export function serveCommand(program: Command): void {
  program
    .command('serve')
    .description('run the daemon')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0 picks a free one)', integer, 9501)
    .addOption(
      new Option(
        '--token <token>',
        'require this token on every request; prefer SANDBOXD_TOKEN or --token-file: a token on the ' +
          'command line is visible in the process list until the daemon hides it at start-up',
      ).env('SANDBOXD_TOKEN'),
    )
    .option('--token-file <path>', 'read the token from this file (keep it readable by the daemon only)')
    .option('--envd', `also listen on envd's port, where the e2b SDK in debug mode looks`, false)
    .option('--envd-port <port>', 'the port --envd listens on', integer, 49983)
    .option('--insecure', 'allow listening on a non-loopback address without a token', false)
    .option('--data-dir <dir>', 'where output spill files go (default: a new temporary folder)')
    .option('--drain-grace-ms <ms>', 'how long output may drain after a process exits', integer, 200)
    .option(
      '--shutdown-grace-ms <ms>',
      'how long processes get between SIGTERM and SIGKILL at shutdown',
      integer,
      10_000,
    )
    .option('--pty-idle-timeout-ms <ms>', 'how long a terminal session may stay unattached', integer, 300_000)
    .option('--no-ui', 'do not serve the web console at /ui')
    .addOption(
      new Option('--containment <mode>', 'how descendants are tracked (advanced)')
        .choices(CONTAINMENT_CHOICES)
        .default('auto')
        .env('SANDBOXD_CONTAINMENT')
        .hideHelp(),
    )
    .option('--output-memory-bytes <n>', 'newest output kept in memory, per stream', integer, MiB)
    .option(
      '--output-max-bytes <n>',
      'output kept per stream, on disk too; the oldest goes past it',
      integer,
      256 * MiB,
    )
    .option('--max-finished <n>', 'finished processes kept (the newest)', integer, 1000)
    .option('--spill-max-bytes <n>', 'output on disk for all processes together', integer, 4096 * MiB)
    .option('--max-connections <n>', 'open connections at once (default: half the descriptor limit)', integer)
    .option('--headers-timeout-ms <ms>', 'time for a connection to send its request head', integer, 30_000)
    .option(
      '--public-port <port>',
      'let anyone open the HTTP preview of this port, without the token (repeatable)',
      addPort,
    )
    .option(
      '--preview-host <host>',
      'preview links are <port>-<host> (default: the host the request came in by, an address as sandbox.localhost)',
    )
    .addHelpText('after', example('SANDBOXD_TOKEN=s3cret sandboxd serve --host 0.0.0.0 --envd'))
    .action(async (options) => {
      const token = daemonToken(options);
      if (!isLoopback(options.host) && !token && !options.insecure) {
        console.error(
          `sandboxd: refusing to listen on ${options.host} without a token; pass --token (or SANDBOXD_TOKEN), or --insecure to do it anyway`,
        );
        process.exit(2);
      }
      const ports: number[] = options.envd ? [options.port, options.envdPort] : [options.port];
      // Taken before anything starts: a SIGTERM during start-up (an impatient supervisor) would
      // otherwise end the process at once and leave its data directory and cgroups behind.
      let stopRequested: string | undefined;
      let stopNow: ((signal: string) => Promise<void>) | undefined;
      const onSignal = (signal: string) => {
        if (stopRequested) return;
        stopRequested = signal;
        void stopNow?.(signal);
      };
      process.on('SIGTERM', () => onSignal('SIGTERM'));
      process.on('SIGINT', () => onSignal('SIGINT'));
      const maxConnections: number = options.maxConnections ?? defaultMaxConnections();
      const { startDaemon } = await import('../server/daemon.ts');
      const { protectDaemonFromOom } = await import('../core/oom-score.ts');
      // Before anything is started: children inherit the score, and are given the default back.
      const oomScore = await protectDaemonFromOom();
      const daemon = await startDaemon({
        host: options.host,
        ports,
        token,
        dataDir: options.dataDir,
        drainGraceMs: options.drainGraceMs,
        shutdownGraceMs: options.shutdownGraceMs,
        ptyIdleTimeoutMs: options.ptyIdleTimeoutMs,
        ui: options.ui,
        containment: options.containment,
        output: {
          memoryBytesPerStream: options.outputMemoryBytes,
          maxBytesPerStream: options.outputMaxBytes,
        },
        retention: {
          maxFinished: options.maxFinished,
          managedHistory: 10,
          maxSpillBytes: options.spillMaxBytes,
        },
        connections: {
          max: maxConnections,
          headersTimeoutMs: options.headersTimeoutMs,
        },
        publicPorts: options.publicPort ?? [],
        previewHost: options.previewHost,
      }).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EADDRINUSE' && error.code !== 'EACCES' && error.code !== 'EADDRNOTAVAIL')
          throw error;
        console.error(
          `sandboxd: cannot listen on ${options.host}:${(error as { port?: number }).port}: ${error.code}`,
        );
        process.exit(1);
      });
      stopNow = async (signal: string) => {
        console.log(`sandboxd: ${signal}, stopping`);
        await daemon.stop();
        process.exit(0);
      };
      if (stopRequested) return stopNow(stopRequested);
      console.log(`sandboxd: ${daemon.tracking}; ${oomScore}`);
      for (const url of daemon.urls) console.log(`sandboxd listening on ${url}`);
      // After the lines a supervisor waits for, off the path of any request.
      if (maxConnections >= WARM_UP_MIN_CONNECTIONS) {
        setImmediate(() => void warmUp(daemon.urls[0] as string, token).finally(resumeOptimiser));
      } else {
        resumeOptimiser();
      }
    });
}

/**
 * The token from the command line, SANDBOXD_TOKEN or --token-file. Given on the command line,
 * it is taken out of the process title at once, since every user may read a command line.
 */
function daemonToken(options: { token?: string; tokenFile?: string }): string | undefined {
  const fromArgv = process.argv.includes('--token') || process.argv.some((arg) => arg.startsWith('--token='));
  if (fromArgv && options.token) {
    process.title = process.argv
      .map((arg, i) =>
        process.argv[i - 1] === '--token' ? '***' : arg.startsWith('--token=') ? '--token=***' : arg,
      )
      .join(' ');
  }
  if (options.tokenFile !== undefined) {
    try {
      return readFileSync(options.tokenFile, 'utf8').trim() || undefined;
    } catch (error) {
      console.error(`sandboxd: cannot read the token file ${options.tokenFile}: ${(error as Error).message}`);
      process.exit(2);
    }
  }
  return options.token || undefined;
}
