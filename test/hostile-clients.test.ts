import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { useDaemon } from './helpers/daemon.ts';

// Requests no well-behaved client sends: each must get an answer or a closed connection, and
// the daemon must go on serving.
const daemon = useDaemon({
  args: ['--token', 'hostile-test'],
  stop: async (stopping) => assert.equal(await stopping.stop(), 0, stopping.output()),
});

async function rawSocket(): Promise<Socket> {
  const { hostname, port } = new URL(daemon.url);
  const socket = connect(Number(port), hostname);
  await once(socket, 'connect');
  return socket;
}

/** Sends raw bytes and returns the status line of the answer (or '' if the server just closed). */
async function rawRequest(text: string): Promise<string> {
  const socket = await rawSocket();
  let answer = '';
  socket.on('data', (chunk: Buffer) => {
    answer += chunk.toString();
  });
  socket.write(text);
  await once(socket, 'close');
  return answer.split('\r\n')[0] ?? '';
}

async function assertStillServing(): Promise<void> {
  const response = await fetch(`${daemon.api}/health`);
  assert.equal(response.status, 200);
}

test('a request target no URL can be made of gets 400', async () => {
  for (const target of ['//[zz/', 'http://[zz/']) {
    const status = await rawRequest(`GET ${target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`);
    assert.match(status, /^HTTP\/1\.1 400/, target);
  }
  await assertStillServing();
});

test('a malformed percent-escape in the terminal WebSocket path gets 404', async () => {
  const upgrade = (path: string) =>
    rawRequest(
      `GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\n` +
        'sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
  assert.match(await upgrade('/api/v1/pty/%ZZ/ws'), /^HTTP\/1\.1 404/);
  assert.match(await upgrade('/nowhere'), /^HTTP\/1\.1 404/);
  await assertStillServing();
});

test('upgrade requests reset by the client mid-answer do not bring the daemon down', async () => {
  for (let i = 0; i < 30; i++) {
    const socket = await rawSocket();
    socket.write(
      `GET /api/v1/pty/no-such-session/ws?token=x HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\n` +
        'upgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    // Closes with a TCP reset instead of a clean close.
    socket.resetAndDestroy();
  }
  await assertStillServing();
});
