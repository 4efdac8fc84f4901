import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, realpathSync } from 'node:fs';
import { describe, test } from 'node:test';
import { Code, ConnectError } from '@connectrpc/connect';
import { Sandbox } from 'e2b';
import { restClient } from './helpers/api.ts';
import { useDaemon } from './helpers/daemon.ts';
import { collect, processClient } from './helpers/envd.ts';

// Processes run as the user a request names. A user of the test's own (with a home and a
// supplementary group) is made for it and removed after; `nobody` is the machine's.
const isRoot = process.getuid?.() === 0;
const suffix = String(process.pid);
const userName = `sbxu${suffix}`;
const extraGroup = `sbxg${suffix}`;
const home = `/tmp/sbx-home-${suffix}`;

const SHOW = 'id -un; id -gn; id -Gn; pwd; echo "$HOME $USER $LOGNAME"';
const basic = (name: string) => ({ authorization: `Basic ${Buffer.from(`${name}:`).toString('base64')}` });

describe('processes run as the named user', { skip: isRoot ? false : 'switching users needs root' }, () => {
  let client: ReturnType<typeof restClient>;
  const daemon = useDaemon({
    beforeStart: () => {
      execFileSync('groupadd', [extraGroup], { stdio: 'pipe' });
      execFileSync('useradd', ['--create-home', '--home-dir', home, '--groups', extraGroup, userName], {
        stdio: 'pipe',
      });
      mkdirSync(`${home}/sub`);
      execFileSync('chown', [`${userName}:`, `${home}/sub`], { stdio: 'pipe' });
    },
    afterStart: () => {
      client = restClient(daemon);
    },
    afterStop: () => {
      execFileSync('userdel', ['--remove', userName], { stdio: 'pipe' });
      execFileSync('groupdel', [extraGroup], { stdio: 'pipe' });
    },
  });

  test('Connect Start: the user, their groups, their home as cwd, HOME/USER/LOGNAME as envd sets them', async () => {
    const rpc = processClient(daemon);
    const { stdout, end } = await collect(
      rpc.start({ process: { cmd: 'sh', args: ['-c', SHOW] }, stdin: false }, { headers: basic(userName) }),
    );
    assert.equal(end?.exitCode, 0);
    const [name, group, groups, cwd, env] = stdout.trimEnd().split('\n');
    assert.equal(name, userName);
    assert.equal(group, userName); // useradd's group of the same name
    assert.deepEqual(groups?.split(' ').sort(), [userName, extraGroup].sort());
    assert.equal(cwd, realpathSync(home));
    assert.equal(env, `${home} ${userName} ${userName}`);
  });

  test('Connect Start: `~` and relative paths are the user’s home', async () => {
    const rpc = processClient(daemon);
    for (const cwd of ['~/sub', 'sub']) {
      const { stdout } = await collect(
        rpc.start({ process: { cmd: 'pwd', cwd }, stdin: false }, { headers: basic(userName) }),
      );
      assert.equal(stdout, `${realpathSync(home)}/sub\n`);
    }
  });

  test('Connect Start in a terminal keeps the user’s groups, and no others', async () => {
    const rpc = processClient(daemon);
    const { pty } = await collect(
      rpc.start(
        { process: { cmd: 'id', args: ['-Gn'] }, pty: { size: { cols: 80, rows: 24 } } },
        { headers: basic(userName) },
      ),
    );
    assert.deepEqual(pty.trim().split(' ').sort(), [userName, extraGroup].sort());
  });

  test('Connect Start as an unknown user is envd’s unauthenticated error', async () => {
    const rpc = processClient(daemon);
    await assert.rejects(
      collect(rpc.start({ process: { cmd: 'true' }, stdin: false }, { headers: basic('no-such-user') })),
      (error: unknown) => {
        assert.ok(error instanceof ConnectError);
        assert.equal(error.code, Code.Unauthenticated);
        assert.equal(error.rawMessage, "invalid username: 'no-such-user'");
        return true;
      },
    );
  });

  test('nobody, whose home does not exist, starts in /', async () => {
    const rpc = processClient(daemon);
    const { stdout } = await collect(
      rpc.start(
        { process: { cmd: 'sh', args: ['-c', 'id -un; pwd'] }, stdin: false },
        { headers: basic('nobody') },
      ),
    );
    assert.equal(stdout, 'nobody\n/\n');
  });

  test('the e2b SDK: commands.run with a user runs as that user', async () => {
    const sandbox = await Sandbox.create({ debug: true, sandboxUrl: daemon.url });
    const result = await sandbox.commands.run('whoami', { user: userName as 'user' });
    assert.equal(result.stdout, `${userName}\n`);
  });

  test('REST: `user` runs as that user with their supplementary groups; an unknown one is INVALID_USER', async () => {
    const { pid } = await client.start({ command: 'sh', args: ['-c', SHOW], user: userName });
    const { lines } = await client.follow(pid);
    const [name, , groups, cwd] = lines.map((l) => l.line);
    assert.equal(name, userName);
    assert.deepEqual(groups?.split(' ').sort(), [userName, extraGroup].sort());
    assert.equal(cwd, realpathSync(home));

    const unknown = await client.call('POST', '/processes', { command: 'true', user: 'no-such-user' });
    assert.equal(unknown.status, 400);
    assert.equal((unknown.body as { code: string }).code, 'INVALID_USER');
  });
});
