import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import WebSocket from 'ws';
import { DaemonError, type SandboxClient } from '../src/client/index.ts';
import { sandboxClient } from './helpers/api.ts';
import { type TestDaemon, useDaemon } from './helpers/daemon.ts';

/** Opens a terminal's socket with exactly these headers; the status of a refusal, or 101. */
async function upgrade(daemon: TestDaemon, sessionId: string, headers: Record<string, string>, query = '') {
  const url = `${daemon.url.replace('http', 'ws')}/api/v1/pty/${sessionId}/ws${query}`;
  const socket = new WebSocket(url, { headers });
  const outcome = await Promise.race([
    once(socket, 'open').then(() => 101),
    once(socket, 'unexpected-response').then(
      ([, response]) => (response as { statusCode: number }).statusCode,
    ),
  ]);
  socket.terminate();
  return outcome;
}

/** Attaches with the daemon's credentials, types, and reads the answer. */
async function attachAndEcho(client: SandboxClient, sessionId: string): Promise<string> {
  const terminal = await client.attachTerminal(sessionId);
  let text = '';
  const seen = new Promise<void>((resolve) =>
    terminal.output((bytes) => {
      text += bytes.toString();
      if (text.includes('attached-7')) resolve();
    }),
  );
  terminal.ready();
  terminal.write(Buffer.from('echo attached-$((3+4))\n'));
  await seen;
  terminal.close();
  await terminal.ended;
  return text;
}

async function withSession(daemon: TestDaemon, work: (id: string) => Promise<void>): Promise<void> {
  const client = sandboxClient(daemon);
  const { session_id } = await client.createTerminal({ command: 'sh', env: { PS1: '$ ' } });
  try {
    await work(session_id);
  } finally {
    await client.deleteTerminal(session_id);
  }
}

describe("a terminal's WebSocket opened with the daemon's credentials instead of the session's token", () => {
  const daemon = useDaemon(['--token', 'daemon-secret']);

  test('the daemon token as Bearer or X-Access-Token opens it; a wrong one is 403, no token at all 403', async () => {
    await withSession(daemon, async (id) => {
      assert.match(await attachAndEcho(sandboxClient(daemon), id), /attached-7/);
      assert.equal(await upgrade(daemon, id, { 'x-access-token': 'daemon-secret' }), 101);
      assert.equal(await upgrade(daemon, id, { authorization: 'Bearer wrong' }), 403);
      assert.equal(await upgrade(daemon, id, {}), 403);
      // A session token that is given is what counts, even next to the daemon's.
      const mixed = await upgrade(daemon, id, { authorization: 'Bearer daemon-secret' }, '?token=wrong');
      assert.equal(mixed, 403);
      await assert.rejects(
        sandboxClient({ ...daemon, token: 'wrong' }).attachTerminal(id),
        (error: unknown) =>
          error instanceof DaemonError && error.status === 403 && error.code === 'INVALID_TOKEN',
      );
    });
  });
});

describe('on a daemon without a token', () => {
  const daemon = useDaemon();

  test('a client that is not a web page opens it; a request with an Origin (a browser) is 403', async () => {
    await withSession(daemon, async (id) => {
      assert.match(await attachAndEcho(sandboxClient(daemon), id), /attached-7/);
      assert.equal(await upgrade(daemon, id, { origin: 'http://evil.example' }), 403);
      assert.equal(await upgrade(daemon, id, {}, '?token=wrong'), 403);
    });
  });
});
