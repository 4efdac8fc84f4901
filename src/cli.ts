#!/usr/bin/env node
import { isIP } from 'node:net';
import { Command, InvalidArgumentError, Option } from 'commander';
import { CONTAINMENT_CHOICES } from './core/containment/index.ts';
import { startDaemon, version } from './server/daemon.ts';

function integer(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError('expected a non-negative integer');
  return Number(text);
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

const program = new Command('sandboxd').description('Start and drive processes over HTTP').version(version);

program
  .command('serve')
  .description('run the daemon')
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--port <port>', 'port to listen on (0 picks a free one)', integer, 9501)
  .addOption(new Option('--token <token>', 'require this token on every request').env('SANDBOXD_TOKEN'))
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
  .action(async (options) => {
    if (!isLoopback(options.host) && !options.token && !options.insecure) {
      console.error(
        `sandboxd: refusing to listen on ${options.host} without a token; pass --token (or SANDBOXD_TOKEN), or --insecure to do it anyway`,
      );
      process.exit(2);
    }
    const daemon = await startDaemon({
      host: options.host,
      ports: options.envd ? [options.port, options.envdPort] : [options.port],
      token: options.token || undefined,
      dataDir: options.dataDir,
      drainGraceMs: options.drainGraceMs,
      shutdownGraceMs: options.shutdownGraceMs,
      ptyIdleTimeoutMs: options.ptyIdleTimeoutMs,
      ui: options.ui,
      containment: options.containment,
    });
    console.log(`sandboxd: ${daemon.tracking}`);
    for (const url of daemon.urls) console.log(`sandboxd listening on ${url}`);
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      console.log(`sandboxd: ${signal}, stopping`);
      await daemon.stop();
      process.exit(0);
    };
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
  });

await program.parseAsync();
