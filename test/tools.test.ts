import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ROOT } from './helpers/daemon.ts';
import { locate, missingReason, needs, type Tool } from './helpers/tools.ts';

const run = promisify(execFile);
const nowhere: Tool = { command: 'sandboxd-no-such-tool', debianPackage: 'sandboxd-no-such-package' };
const shell: Tool = { command: 'sh', debianPackage: 'dash' };
const local = { PATH: process.env.PATH };

describe('the check for Debian tools the tests drive', () => {
  test('a tool that does not exist is reported missing, on PATH or by its absolute path', async () => {
    assert.equal(await locate(nowhere), undefined);
    assert.equal(await locate({ ...nowhere, command: '/usr/bin/sandboxd-no-such-tool' }), undefined);
    // Found only where it is executable: a directory or a plain file of that name is not it.
    assert.equal(
      await locate({ command: 'tools.test.ts', debianPackage: 'none' }, { PATH: join(ROOT, 'test') }),
      undefined,
    );
  });

  test('a tool that exists is found, on PATH and by its absolute path', async () => {
    const sh = await locate(shell);
    assert.ok(sh?.endsWith('/sh'), `sh found at ${sh}`);
    assert.ok(sh);
    assert.equal(await locate({ ...shell, command: sh }), sh);
    assert.equal(await locate(shell, { PATH: '' }), undefined);
  });

  test('the skip reason names each missing tool and the one apt-get line that brings them', async () => {
    assert.equal(await needs([shell], local), false);
    assert.equal(
      await needs([shell, nowhere], local),
      'needs sandboxd-no-such-tool (apt-get install sandboxd-no-such-package)',
    );
    const chromium = { command: '/nowhere/chromium', debianPackage: 'chromium' };
    assert.equal(
      missingReason([nowhere, chromium]),
      'needs sandboxd-no-such-tool, chromium (apt-get install sandboxd-no-such-package chromium)',
    );
  });

  test('under CI a missing tool is an error that names it, not a skip', async () => {
    for (const CI of ['true', '1']) {
      await assert.rejects(needs([nowhere], { ...local, CI }), {
        message:
          'CI must run every test, but it needs sandboxd-no-such-tool (apt-get install sandboxd-no-such-package)',
      });
    }
    for (const CI of ['', 'false', '0'])
      assert.equal(typeof (await needs([nowhere], { ...local, CI })), 'string');
    assert.equal(await needs([shell], { ...local, CI: 'true' }), false);
  });

  test('npm test ends with one line saying what was skipped and why', async () => {
    const { stdout } = await run(
      process.execPath,
      [
        '--test',
        '--test-reporter=./test/reporters/skipped.mjs',
        '--test-reporter-destination=stdout',
        join('test', 'fixtures', 'skips.mjs'),
      ],
      // Without the runner's own variable, which would make it report to this run instead.
      { cwd: ROOT, env: { PATH: process.env.PATH } },
    );
    assert.equal(
      stdout,
      'skipped 3: needs nothing-here (apt-get install nothing-here) ×2 [skips.mjs]; needs root ×1 [skips.mjs]\n',
    );
  });
});
