import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SandboxError } from '../src/core/errors.ts';
import {
  clampTerminalSize,
  normaliseStart,
  restartPolicy,
  type StartRequest,
  terminalSize,
} from '../src/core/start-request.ts';
import type { ResolvedUser } from '../src/core/users.ts';

// The rules every dialect's start, terminal and resize map onto, in process: no daemon.
const home = '/home/daemon';
const bob: ResolvedUser = { uid: 1001, gid: 1001, name: 'bob', home: '/home/bob', groups: [1001] };
const start = (request: Partial<StartRequest>, user?: ResolvedUser) =>
  normaliseStart({ command: 'true', ...request }, { baseEnv: { PATH: '/bin', HOME: home }, user, home });

describe('the start request, normalised in the core', () => {
  const cwdCases: [
    given: string | undefined,
    user: ResolvedUser | undefined,
    expected: string | undefined,
  ][] = [
    [undefined, undefined, undefined],
    ['', undefined, undefined],
    ['/srv/app', undefined, '/srv/app'],
    ['/srv/app/../data', undefined, '/srv/data'],
    ['work', undefined, '/home/daemon/work'],
    ['./work/', undefined, '/home/daemon/work'],
    ['~', undefined, '/home/daemon'],
    ['~/work', undefined, '/home/daemon/work'],
    ['work', bob, '/home/bob/work'],
    ['~', bob, '/home/bob'],
    ['/srv', bob, '/srv'],
    ['work', { ...bob, home: undefined }, '/work'],
  ];
  for (const [given, user, expected] of cwdCases) {
    test(`cwd ${JSON.stringify(given)}${user ? ` as ${user.name}${user.home ? '' : ' without a home'}` : ''} is ${expected}`, () => {
      assert.equal(start({ cwd: given }, user).cwd, expected);
    });
  }

  const refusedCwds: [given: string, message: RegExp][] = [
    ['~bob', /^cwd: '~bob' names another user's home; give it in full$/],
    ['~bob/work', /^cwd: '~bob\/work' names another user's home/],
    ['a\0b', /^cwd: must not contain a NUL byte$/],
  ];
  for (const [given, message] of refusedCwds) {
    test(`cwd ${JSON.stringify(given)} is refused`, () => {
      assert.throws(
        () => start({ cwd: given }),
        (error: SandboxError) => error.kind === 'invalid_argument' && message.test(error.message),
      );
    });
  }

  const sizeCases: [given: Parameters<typeof terminalSize>[0], expected: { cols: number; rows: number }][] = [
    [undefined, { cols: 80, rows: 24 }],
    [{}, { cols: 80, rows: 24 }],
    [
      { cols: 0, rows: 0 },
      { cols: 80, rows: 24 },
    ],
    [
      { cols: null, rows: 40 },
      { cols: 80, rows: 40 },
    ],
    [
      { cols: 120, rows: 40 },
      { cols: 120, rows: 40 },
    ],
    [
      { cols: 5000, rows: 9000 },
      { cols: 1000, rows: 500 },
    ],
    [
      { cols: -3, rows: 2.7 },
      { cols: 1, rows: 2 },
    ],
  ];
  for (const [given, expected] of sizeCases) {
    test(`a terminal asked as ${JSON.stringify(given)} is ${expected.cols}×${expected.rows}`, () => {
      assert.deepEqual(terminalSize(given), expected);
      assert.deepEqual(start({ pty: given ?? {} }).pty, expected);
    });
  }

  test('a resize is clamped like a start, but keeps what it is given within range', () => {
    assert.deepEqual(clampTerminalSize({ cols: 0, rows: 0 }), { cols: 1, rows: 1 });
    assert.deepEqual(clampTerminalSize({ cols: 65535, rows: 65535 }), { cols: 1000, rows: 500 });
    assert.deepEqual(clampTerminalSize({ cols: 132, rows: 43 }), { cols: 132, rows: 43 });
    assert.equal(start({}).pty, undefined);
  });

  const restartCases: [
    given: Parameters<typeof restartPolicy>[0],
    named: boolean,
    expected: ReturnType<typeof restartPolicy>,
  ][] = [
    [undefined, false, undefined],
    [
      undefined,
      true,
      { policy: 'never', maxRestarts: undefined, initialBackoffMs: 500, maxBackoffMs: 30_000 },
    ],
    [
      {},
      false,
      { policy: 'on_failure', maxRestarts: undefined, initialBackoffMs: 500, maxBackoffMs: 30_000 },
    ],
    [{}, true, { policy: 'on_failure', maxRestarts: undefined, initialBackoffMs: 500, maxBackoffMs: 30_000 }],
    [
      { policy: 'always', maxRestarts: 3, initialBackoffMs: 10, maxBackoffMs: 20 },
      false,
      { policy: 'always', maxRestarts: 3, initialBackoffMs: 10, maxBackoffMs: 20 },
    ],
  ];
  for (const [given, named, expected] of restartCases) {
    test(`restart ${JSON.stringify(given)}${named ? ' with a name' : ''} is ${expected?.policy ?? 'none'}`, () => {
      assert.deepEqual(restartPolicy(given, named), expected);
    });
  }

  test('stdio, arguments and environment: defaults, and the request over the user over the daemon', () => {
    const plain = start({});
    assert.deepEqual(
      [plain.stdin, plain.stdout, plain.stderr, plain.args, plain.requestedEnv],
      ['closed', 'capture', 'capture', [], {}],
    );
    assert.deepEqual(plain.env, { PATH: '/bin', HOME: home });
    const asBob = start({ env: { USER: 'override', EXTRA: '1' } }, bob);
    assert.deepEqual(asBob.env, {
      PATH: '/bin',
      HOME: '/home/bob',
      USER: 'override',
      LOGNAME: 'bob',
      EXTRA: '1',
    });
    assert.deepEqual(asBob.requestedEnv, { USER: 'override', EXTRA: '1' });
  });
});
