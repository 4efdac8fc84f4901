import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { bundleDaemon } from '../scripts/build.ts';
import { buildConsole } from '../web/build.ts';
import { eventually, ROOT } from './helpers/daemon.ts';
import { needs, tini } from './helpers/tools.ts';

// No Docker engine here: the image's layout is laid out in a folder instead (the package as
// `npm install --global` lays it out, with the entrypoint and the `sandboxd` link on PATH), and
// the Dockerfile's own ENTRYPOINT, CMD and HEALTHCHECK commands are run there, under the real tini.

const run = promisify(execFile);
const TOKEN = 'container-secret-token';
const withTini = { skip: await needs([tini]) };

/** The JSON-array arguments of a Dockerfile instruction (`CMD [...]`, `HEALTHCHECK ... CMD [...]`). */
function instruction(dockerfile: string, pattern: RegExp): string[] {
  const joined = dockerfile.replace(/\\\n\s*/g, ' ');
  const match = pattern.exec(joined);
  assert.ok(match?.[1], `no ${pattern} in the Dockerfile`);
  return JSON.parse(match[1]) as string[];
}

interface Image {
  dir: string;
  env: NodeJS.ProcessEnv;
  entrypoint: string[];
  cmd: string[];
  healthcheck: string[];
  exposed: number[];
}

let image: Image;
before(async () => {
  const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
  const dir = await mkdtemp(join(tmpdir(), 'sandboxd-image-'));
  const opt = join(dir, 'lib', 'node_modules', 'sandboxd');
  const bin = join(dir, 'bin');
  await mkdir(bin, { recursive: true });
  await mkdir(opt, { recursive: true });
  // What the package holds (the bundled daemon and the console, and package.json), and what its
  // installation adds: the dependencies (the native addons, here with the rest) and the bin link.
  await bundleDaemon(join(opt, 'dist'));
  await buildConsole(join(opt, 'dist', 'web'));
  await copyFile(join(ROOT, 'package.json'), join(opt, 'package.json'));
  await symlink(join(ROOT, 'node_modules'), join(opt, 'node_modules'));
  await symlink(join(opt, 'dist', 'cli.js'), join(bin, 'sandboxd'));
  await symlink(join(ROOT, 'docker', 'entrypoint.sh'), join(bin, 'sandboxd-entrypoint'));
  const tokenFile = join(dir, 'sandboxd_token');
  // A secret file ends with a newline more often than not.
  await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${bin}:${process.env.PATH}`,
    SANDBOXD_TOKEN_FILE: tokenFile,
    // In a container tini is PID 1; here it registers as the subreaper, which is the same to orphans.
    TINI_SUBREAPER: '1',
  };
  delete env.SANDBOXD_TOKEN;
  delete env.SANDBOXD_URL;
  image = {
    dir,
    env,
    entrypoint: instruction(dockerfile, /^ENTRYPOINT (\[.*\])$/m),
    cmd: instruction(dockerfile, /^CMD (\[.*\])$/m),
    healthcheck: instruction(dockerfile, /^HEALTHCHECK .*?CMD (\[.*\])$/m),
    exposed: (/^EXPOSE (.*)$/m.exec(dockerfile)?.[1] ?? '').split(/\s+/).map(Number),
  };
});
after(async () => {
  if (image) await rm(image.dir, { recursive: true, force: true });
});

/** Starts the container's command: ENTRYPOINT + CMD, on free ports instead of the fixed ones. */
function startContainer(env: NodeJS.ProcessEnv = image.env) {
  const [command, ...args] = [...image.entrypoint, ...image.cmd, '--port', '0', '--envd-port', '0'];
  const child = spawn(command as string, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  // A command that cannot be started rejects both promises with the reason (ENOENT, say).
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => resolve(code));
  });
  const listening = new Promise<number>((resolve, reject) => {
    child.stdout.on('data', () => {
      const port = /listening on http:\/\/\S+:(\d+)/.exec(output)?.[1];
      if (port) resolve(Number(port));
    });
    exited.then((code) => reject(new Error(`exited with ${code}:\n${output}`)), reject);
  });
  // A container that is meant to fail never listens: that is no error of its own.
  listening.catch(() => {});
  return { child, exited, listening, output: () => output };
}

async function children(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.split(' ').filter(Boolean).map(Number);
}

function parentOf(stat: string): number {
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

async function commandLine(pid: number): Promise<string[]> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
}

describe('the container recipe (Dockerfile)', () => {
  test('it exposes the ports serve listens on by default: 9501, and envd 49983', async () => {
    const { stdout } = await run(join(image.dir, 'bin', 'sandboxd'), ['serve', '--help'], { env: image.env });
    const help = stdout.replace(/\s+/g, ' ');
    const defaults = ['--port', '--envd-port'].map((flag) =>
      Number(new RegExp(`${flag} <port> .*?\\(default: (\\d+)\\)`).exec(help)?.[1]),
    );
    assert.deepEqual(defaults, [9501, 49983]);
    assert.deepEqual(image.exposed, defaults);
    assert.deepEqual(image.entrypoint.slice(0, 2), ['tini', '--']);
  });

  test(
    'its entrypoint: tini runs the daemon, which takes the token from the secret file and from no command line',
    withTini,
    async () => {
      const container = startContainer();
      let daemon: number | undefined;
      try {
        const port = await container.listening;
        const api = `http://127.0.0.1:${port}/api/v1`;
        assert.equal((await fetch(`${api}/processes`)).status, 401);
        const authorized = await fetch(`${api}/processes`, { headers: { authorization: `Bearer ${TOKEN}` } });
        assert.equal(authorized.status, 200);
        // The web console came with the build.
        const ui = await fetch(`http://127.0.0.1:${port}/ui`);
        assert.equal(ui.status, 200);
        assert.match(await ui.text(), /<html/i);

        // tini, then the daemon itself: the entrypoint script replaced itself with it.
        const tiniPid = container.child.pid as number;
        [daemon] = await children(tiniPid);
        assert.ok(daemon, 'tini has no child');
        assert.equal((await commandLine(tiniPid))[0], 'tini');
        // The entrypoint hands the daemon the secret file's path, never the token itself.
        const [serve, ...options] = image.cmd;
        assert.deepEqual((await commandLine(daemon)).slice(1), [
          join(image.dir, 'bin', 'sandboxd'),
          serve,
          '--token-file',
          image.env.SANDBOXD_TOKEN_FILE,
          ...options,
          '--port',
          '0',
          '--envd-port',
          '0',
        ]);
        for (const pid of [tiniPid, daemon]) {
          assert.ok(
            !(await commandLine(pid)).join(' ').includes(TOKEN),
            `the token is on ${pid}'s command line`,
          );
          const environment = await readFile(`/proc/${pid}/environ`, 'utf8');
          assert.ok(!environment.includes(TOKEN), `the token is in ${pid}'s environment`);
        }

        // The client in the image talks to it; the processes it starts do not get the token.
        const client = await run(
          join(image.dir, 'bin', 'sandboxd'),
          ['exec', '--', 'sh', '-c', 'echo "[$SANDBOXD_TOKEN]"'],
          {
            env: { ...image.env, SANDBOXD_URL: `http://127.0.0.1:${port}`, SANDBOXD_TOKEN: TOKEN },
          },
        );
        assert.equal(client.stdout, '[]\n');

        // An orphan (a background child whose parent exited) ends up with the daemon, a subreaper
        // (nearer than tini), which reaps it.
        const orphaned = await run(
          join(image.dir, 'bin', 'sandboxd'),
          ['exec', '--', 'sh', '-c', 'sleep 1012.5 & echo $!'],
          { env: { ...image.env, SANDBOXD_URL: `http://127.0.0.1:${port}`, SANDBOXD_TOKEN: TOKEN } },
        );
        const orphan = Number(orphaned.stdout);
        assert.equal(parentOf(await readFile(`/proc/${orphan}/stat`, 'utf8')), daemon);
        process.kill(orphan, 'SIGKILL');
        // Gone, not a zombie: no event tells when the daemon has reaped it.
        await eventually(async () => !(await readFile(`/proc/${orphan}/stat`, 'utf8').catch(() => '')));

        // The health check, as Docker runs it, on this port.
        const [check, ...checkArgs] = image.healthcheck.map((word) => word.replace('9501', String(port)));
        await run(check as string, checkArgs, { env: image.env });

        // docker stop: SIGTERM to PID 1, which passes it on; the daemon stops cleanly.
        container.child.kill('SIGTERM');
        assert.equal(await container.exited, 0, container.output());
      } finally {
        // tini passes no SIGKILL on: the daemon is ended by its pid, should the test fail midway.
        for (const pid of [daemon, container.child.pid]) {
          if (pid !== undefined && container.child.exitCode === null) process.kill(pid, 'SIGKILL');
        }
      }
    },
  );

  test(
    'without a token file it says where the secret belongs, and the daemon refuses to listen on 0.0.0.0',
    withTini,
    async () => {
      const container = startContainer({ ...image.env, SANDBOXD_TOKEN_FILE: join(image.dir, 'missing') });
      const code = await container.exited;
      assert.equal(code, 2);
      assert.match(
        container.output(),
        /sandboxd-entrypoint: no token file at \S+missing \(mount a secret there/,
      );
      assert.match(container.output(), /refusing to listen on 0\.0\.0\.0 without a token/);
    },
  );
});
