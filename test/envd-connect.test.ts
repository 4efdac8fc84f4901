import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { Code, ConnectError } from '@connectrpc/connect';
import { encodeEnvelope } from '@connectrpc/connect/protocol';
import { Signal } from '../src/gen/process/process_pb.ts';
import { restClient } from './helpers/api.ts';
import { eventually, isAlive, useDaemon } from './helpers/daemon.ts';
import { collect, type ProcessClient, processClient, started } from './helpers/envd.ts';

let rpc: ProcessClient;
const daemon = useDaemon({
  afterStart: () => {
    rpc = processClient(daemon);
  },
});

const bytes = (text: string) => new TextEncoder().encode(text);
const shell = (script: string) => ({ process: { cmd: '/bin/sh', args: ['-c', script] }, stdin: false });

async function expectCode(promise: Promise<unknown>, code: Code): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ConnectError, String(error));
    assert.equal(error.code, code, error.message);
    return true;
  });
}

describe('process.Process over Connect with binary protobuf', () => {
  test('Start streams start, the output and one end', async () => {
    const seen = await collect(rpc.start(shell('echo hello')));
    assert.ok(seen.pid > 0);
    assert.equal(seen.stdout, 'hello\n');
    assert.deepEqual(seen.end, { exitCode: 0, exited: true, status: 'exit status 0', error: undefined });
  });

  test('a failing command ends with its exit code and stderr', async () => {
    const seen = await collect(rpc.start(shell('echo oops >&2; exit 3')));
    assert.equal(seen.stderr, 'oops\n');
    assert.equal(seen.end?.exitCode, 3);
    assert.equal(seen.end?.status, 'exit status 3');
    // Go's wait error, which the SDK shows in CommandExitError.
    assert.equal(seen.end?.error, 'exit status 3');
    assert.equal(seen.end?.exited, true);
  });

  test('envs and cwd are honoured; ~ is the home directory', async () => {
    const seen = await collect(
      rpc.start({
        process: {
          cmd: '/bin/sh',
          args: ['-c', 'echo "$GREETING"; pwd'],
          envs: { GREETING: 'hi' },
          cwd: '/tmp',
        },
      }),
    );
    assert.equal(seen.stdout, 'hi\n/tmp\n');
    const home = await collect(rpc.start({ process: { cmd: '/bin/sh', args: ['-c', 'pwd'], cwd: '~' } }));
    assert.equal(home.stdout.trim(), (await import('node:os')).homedir());
  });

  test('stdin by default: SendInput in order, CloseStdin gives EOF; List and Connect see the process', async () => {
    const { pid, rest } = await started(rpc.start({ process: { cmd: 'cat' }, tag: 'echoer' }));
    const listed = await rpc.list({});
    const info = listed.processes.find((p) => p.pid === pid);
    assert.equal(info?.tag, 'echoer');
    assert.equal(info?.config?.cmd, 'cat');

    await rpc.sendInput({
      process: { selector: { case: 'pid', value: pid } },
      input: { input: { case: 'stdin', value: bytes('first\n') } },
    });
    await rpc.sendInput({
      process: { selector: { case: 'tag', value: 'echoer' } },
      input: { input: { case: 'stdin', value: bytes('second\n') } },
    });
    // A second watcher attaching late gets what was already printed, then the rest.
    const watcher = collect(rpc.connect({ process: { selector: { case: 'pid', value: pid } } }));
    await rpc.closeStdin({ process: { selector: { case: 'pid', value: pid } } });
    await rpc.closeStdin({ process: { selector: { case: 'pid', value: pid } } });
    const seen = await collect(rest);
    assert.equal(seen.stdout, 'first\nsecond\n');
    assert.equal(seen.end?.exitCode, 0);
    const late = await watcher;
    assert.equal(late.pid, pid);
    assert.equal(late.stdout, 'first\nsecond\n');
    assert.equal(late.end?.exitCode, 0);
    // Attaching after the end still gives start, the replay and the end.
    const afterEnd = await collect(rpc.connect({ process: { selector: { case: 'pid', value: pid } } }));
    assert.deepEqual([afterEnd.pid, afterEnd.stdout, afterEnd.end?.exitCode], [pid, 'first\nsecond\n', 0]);
  });

  test('StreamInput carries a client stream of input over HTTP/1.1', async () => {
    const { pid, rest } = await started(rpc.start({ process: { cmd: 'cat' } }));
    async function* input() {
      yield {
        event: {
          case: 'start' as const,
          value: { process: { selector: { case: 'pid' as const, value: pid } } },
        },
      };
      for (const word of ['one\n', 'two\n', 'three\n']) {
        yield {
          event: {
            case: 'data' as const,
            value: { input: { input: { case: 'stdin' as const, value: bytes(word) } } },
          },
        };
      }
    }
    await rpc.streamInput(input());
    await rpc.closeStdin({ process: { selector: { case: 'pid', value: pid } } });
    assert.equal((await collect(rest)).stdout, 'one\ntwo\nthree\n');
  });

  test('SendSignal SIGKILL kills the group; the end says so', async () => {
    const { pid, rest } = await started(rpc.start(shell('sleep 1000 & echo $!; wait')));
    const child = Number((await collect(rest, (soFar) => soFar.stdout.includes('\n'))).stdout.trim());
    const watcher = collect(rpc.connect({ process: { selector: { case: 'pid', value: pid } } }));
    await rpc.sendSignal({ process: { selector: { case: 'pid', value: pid } }, signal: Signal.SIGKILL });
    const seen = await watcher;
    // As Go reports a process a signal ended: not exited, and the wait error says why.
    assert.deepEqual(seen.end, {
      exitCode: -1,
      exited: false,
      status: 'signal: killed',
      error: 'signal: killed',
    });
    await eventually(() => !isAlive(child));
  });

  test('Connect-Timeout-Ms is the command lifetime: the process is killed at the deadline', async () => {
    const stream = rpc.start(shell('echo begun; sleep 30'), { timeoutMs: 1000 });
    let pid = 0;
    await assert.rejects(
      (async () => {
        for await (const { event } of stream) if (event?.event.case === 'start') pid = event.event.value.pid;
      })(),
      (error: unknown) => error instanceof ConnectError && error.code === Code.DeadlineExceeded,
    );
    assert.ok(pid > 0);
    await eventually(async () => (await restClient(daemon).get(pid)).status === 'signaled');
    assert.equal((await restClient(daemon).get(pid)).signal, 9);
  });

  test('Keepalive-Ping-Interval makes an idle stream send keepalives', async () => {
    const { pid, rest } = await started(
      rpc.start({ process: { cmd: 'cat' } }, { headers: { 'Keepalive-Ping-Interval': '1' } }),
    );
    const seen = await collect(rest, (s) => s.keepalives > 0);
    assert.equal(seen.keepalives, 1);
    await rpc.sendSignal({ process: { selector: { case: 'pid', value: pid } }, signal: Signal.SIGKILL });
  });

  test('a pty: input, resize then stty size, Ctrl-C', async () => {
    const { pid, rest } = await started(
      rpc.start({
        process: { cmd: '/bin/sh', envs: { TERM: 'xterm' } },
        pty: { size: { cols: 80, rows: 24 } },
      }),
    );
    const select = { selector: { case: 'pid' as const, value: pid } };
    const type = (text: string) =>
      rpc.sendInput({ process: select, input: { input: { case: 'pty', value: bytes(text) } } });
    const iterator = rest[Symbol.asyncIterator]();
    const stream = { [Symbol.asyncIterator]: () => iterator };
    let screen = '';
    const readUntil = async (needle: string) => {
      const seen = await collect(stream, (s) => (screen + s.pty).includes(needle));
      screen += seen.pty;
    };
    await type('echo $((6*7))\n');
    await readUntil('42');
    await rpc.update({ process: select, pty: { size: { cols: 100, rows: 40 } } });
    await type('stty size\n');
    await readUntil('40 100');
    await type('sleep 100\n');
    // Ctrl-C must find the sleep running, not the shell still reading the line.
    await eventually(() => spawnSync('pgrep', ['-P', String(pid), '-x', 'sleep']).status === 0);
    await type('\x03echo still-here\n');
    await readUntil('still-here\r\n');
    await rpc.sendSignal({ process: select, signal: Signal.SIGKILL });
    const end = await collect(stream);
    assert.equal(end.end?.status, 'signal: killed');
  });

  test('a pty does not lose the output printed just before it exits', async () => {
    const seen = await collect(
      rpc.start({
        process: { cmd: '/bin/sh', args: ['-c', 'seq 1 20000; echo last-line'] },
        pty: { size: { cols: 80, rows: 24 } },
      }),
    );
    assert.ok(seen.pty.endsWith('20000\r\nlast-line\r\n'), seen.pty.slice(-50));
    assert.equal(seen.end?.exitCode, 0);
  });

  test('errors: unknown pid or tag, bad cwd, wrong kind of input, bad signal; the daemon keeps serving', async () => {
    await expectCode(
      rpc.sendInput({ process: { selector: { case: 'pid', value: 999_999_999 } } }),
      Code.NotFound,
    );
    await expectCode(
      collect(rpc.connect({ process: { selector: { case: 'tag', value: 'no-such-tag' } } })),
      Code.NotFound,
    );
    await expectCode(
      collect(rpc.start({ process: { cmd: 'ls', cwd: '/no/such/dir' } })),
      Code.InvalidArgument,
    );
    await expectCode(collect(rpc.start({ process: { cmd: 'no-such-command-anywhere' } })), Code.Internal);

    const pipe = await started(rpc.start({ process: { cmd: 'cat' } }));
    const terminal = await started(
      rpc.start({ process: { cmd: '/bin/sh' }, pty: { size: { cols: 80, rows: 24 } } }),
    );
    const pipeSelect = { selector: { case: 'pid' as const, value: pipe.pid } };
    const ptySelect = { selector: { case: 'pid' as const, value: terminal.pid } };
    await expectCode(
      rpc.sendInput({ process: pipeSelect, input: { input: { case: 'pty', value: bytes('x') } } }),
      Code.FailedPrecondition,
    );
    await expectCode(
      rpc.sendInput({ process: ptySelect, input: { input: { case: 'stdin', value: bytes('x') } } }),
      Code.FailedPrecondition,
    );
    await expectCode(rpc.closeStdin({ process: ptySelect }), Code.FailedPrecondition);
    await expectCode(
      rpc.sendSignal({ process: pipeSelect, signal: Signal.UNSPECIFIED }),
      Code.InvalidArgument,
    );
    await rpc.sendSignal({ process: pipeSelect, signal: Signal.SIGKILL });
    await rpc.sendSignal({ process: ptySelect, signal: Signal.SIGKILL });
    await collect(pipe.rest);
    await collect(terminal.rest);

    const again = await collect(rpc.start(shell('echo ok')));
    assert.equal(again.stdout, 'ok\n');
  });

  test('one process table: REST sees RPC processes and List sees REST ones', async () => {
    const rest = restClient(daemon);
    const viaRest = await rest.start({ command: 'sleep', args: ['1000'] });
    const viaRpc = await started(rpc.start({ process: { cmd: 'sleep', args: ['1000'] } }));
    try {
      const listed = (await rpc.list({})).processes.map((p) => p.pid);
      assert.ok(listed.includes(viaRest.pid));
      assert.equal((await rest.get(viaRpc.pid)).status, 'running');
    } finally {
      await rest.kill(viaRest.pid);
      await rest.kill(viaRpc.pid);
    }
    await collect(viaRpc.rest);
  });

  test('a watcher that stops reading holds up neither the process nor another watcher', async () => {
    const size = 32 * 1024 * 1024;
    const { pid, rest } = await started(rpc.start(shell(`head -c ${size} /dev/zero`)));
    const stalled = new AbortController();
    const stalledStream = rpc.connect(
      { process: { selector: { case: 'pid', value: pid } } },
      { signal: stalled.signal },
    );
    // Reads the start event, then nothing more.
    const stalledIterator = stalledStream[Symbol.asyncIterator]();
    await stalledIterator.next();
    let received = 0;
    let exitCode: number | undefined;
    for await (const { event } of rest) {
      if (event?.event.case === 'data') received += event.event.value.output.value?.length ?? 0;
      if (event?.event.case === 'end') exitCode = event.event.value.exitCode;
    }
    assert.equal(received, size);
    assert.equal(exitCode, 0);
    stalled.abort();
    await stalledIterator.return?.();
  });

  test('Connect JSON and gRPC-Web clients work too', async () => {
    const json = await collect(processClient(daemon, { binary: false }).start(shell('echo json')));
    assert.equal(json.stdout, 'json\n');
    const grpcWeb = await collect(processClient(daemon, { protocol: 'grpc-web' }).start(shell('echo web')));
    assert.equal(grpcWeb.stdout, 'web\n');
  });
});

test('a Start whose deadline passes ends the stream with deadline_exceeded, not as a success', async () => {
  // A raw Connect request, so that the server, not the client, has to enforce the deadline.
  const message = Buffer.from(JSON.stringify({ process: { cmd: 'sleep', args: ['30'] }, stdin: false }));
  const response = await fetch(`${daemon.url}/process.Process/Start`, {
    method: 'POST',
    headers: { 'content-type': 'application/connect+json', 'connect-timeout-ms': '500' },
    body: encodeEnvelope(0, message),
  });
  const body = Buffer.from(await response.arrayBuffer());
  const frames: { flags: number; json: Record<string, unknown> }[] = [];
  for (let at = 0; at < body.length; ) {
    const length = body.readUInt32BE(at + 1);
    frames.push({
      flags: body[at] as number,
      json: JSON.parse(body.subarray(at + 5, at + 5 + length).toString()),
    });
    at += 5 + length;
  }
  const start = frames[0]?.json as { event: { start: { pid: number } } };
  const last = frames.at(-1);
  assert.ok(last);
  assert.equal(last.flags, 2, 'the last frame ends the stream');
  assert.equal((last.json.error as { code: string }).code, 'deadline_exceeded');
  await eventually(async () => (await restClient(daemon).get(start.event.start.pid)).signal === 9);
});
