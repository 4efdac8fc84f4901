// The command line, once src/cli.ts has set Node up.
// First: it must be in place before protobuf loads.
import './polyfills.ts';
import { Command } from 'commander';
import { attachCommand } from './cli/attach.ts';
import { cpCommand } from './cli/cp.ts';
import { execCommand } from './cli/exec.ts';
import { forwardCommand } from './cli/forward.ts';
import { killCommand } from './cli/kill.ts';
import { logsCommand } from './cli/logs.ts';
import { openapiCommand } from './cli/openapi.ts';
import { portsCommand } from './cli/ports.ts';
import { previewCommand } from './cli/preview.ts';
import { psCommand } from './cli/ps.ts';
import { serveCommand } from './cli/serve.ts';
import { signalCommand } from './cli/signal.ts';
import { waitCommand } from './cli/wait.ts';
import { waitPortCommand } from './cli/wait-port.ts';
import { version } from './version.ts';

const program = new Command('sandboxd')
  .description('Start and drive processes over HTTP: the daemon (serve), and a client of it')
  .version(version)
  // Options after a client command's own belong to the remote command: `exec ls -l`.
  .enablePositionalOptions();

serveCommand(program);
execCommand(program);
psCommand(program);
portsCommand(program);
waitCommand(program);
waitPortCommand(program);
logsCommand(program);
signalCommand(program);
killCommand(program);
attachCommand(program);
cpCommand(program);
previewCommand(program);
forwardCommand(program);
openapiCommand(program);

await program.parseAsync();
