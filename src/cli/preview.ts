import { spawn } from 'node:child_process';
import { type Command, InvalidArgumentError } from 'commander';
import { parsePort } from '../ports/port-number.ts';
import { type ConnectionOptions, example, run, withConnection } from './connection.ts';

function port(text: string): number {
  const parsed = parsePort(text);
  if (parsed === undefined) throw new InvalidArgumentError('expected a port from 1 to 65535');
  return parsed;
}

/** `sandboxd preview PORT`: a link that opens a web app of the sandbox in a browser. */
export function previewCommand(program: Command): void {
  withConnection(program.command('preview'))
    .description(
      "print a link that opens the HTTP preview of a port of the sandbox in a browser (once, within a minute; it then holds a cookie for that port's preview)",
    )
    .argument('<port>', 'the port the web app listens on in the sandbox', port)
    .option('--open', "also open it in this machine's browser")
    .addHelpText('after', example('sandboxd preview 3000', 'sandboxd preview 5173 --open'))
    .action((target: number, options: ConnectionOptions & { open?: boolean }) =>
      run(options, async (client) => {
        const { url } = await client.previewLink(target);
        process.stdout.write(`${url}\n`);
        if (options.open && !(await openInBrowser(url))) {
          process.stderr.write('sandboxd: could not start a browser here; open the link above yourself\n');
        }
        return 0;
      }),
    );
}

/** Hands the link to the desktop's opener; false when there is none. */
function openInBrowser(url: string): Promise<boolean> {
  const [command, ...args] =
    process.platform === 'darwin'
      ? ['open', url]
      : process.platform === 'win32'
        ? ['cmd', '/c', 'start', '', url]
        : ['xdg-open', url];
  return new Promise((resolve) => {
    const opener = spawn(command as string, args, { stdio: 'ignore', detached: true });
    opener.once('error', () => resolve(false));
    opener.once('spawn', () => {
      opener.unref();
      resolve(true);
    });
  });
}
