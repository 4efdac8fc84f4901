import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import WebSocket from 'ws';
import { restClient } from './helpers/api.ts';
import { eventually, isAlive, useDaemon } from './helpers/daemon.ts';

const TOKEN = 'daemon-token';
let client: ReturnType<typeof restClient>;
const daemon = useDaemon({
  args: ['--token', TOKEN, '--pty-idle-timeout-ms', '500'],
  afterStart: () => {
    client = restClient(daemon);
  },
});

interface Session {
  session_id: string;
  token: string;
}

async function createSession(body: Record<string, unknown> = {}): Promise<Session> {
  const { status, body: created } = await client.call('POST', '/pty', {
    command: '/bin/sh',
    env: { PS1: '$ ' },
    ...body,
  });
  assert.equal(status, 201);
  return created as Session;
}

/** A raw client of the terminal protocol. */
class Terminal {
  text = '';
  exitCode: number | undefined;
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: { needle: string; resolve: () => void }[] = [];

  constructor(readonly socket: WebSocket) {
    socket.on('message', (frame: Buffer) => {
      if (frame[0] === 0x00) this.text += frame.subarray(1).toString();
      if (frame[0] === 0x03) this.exitCode = frame.readInt32BE(1);
      const met = this.waiters.filter((waiter) => this.text.includes(waiter.needle));
      this.waiters = this.waiters.filter((waiter) => !met.includes(waiter));
      for (const waiter of met) waiter.resolve();
    });
    this.closed = once(socket, 'close').then(([code, reason]) => ({
      code: code as number,
      reason: String(reason),
    }));
  }

  static async open(session: Session, { ready = true, viaHeader = false } = {}): Promise<Terminal> {
    const url = `${daemon.url.replace('http', 'ws')}/api/v1/pty/${session.session_id}/ws`;
    const socket = viaHeader
      ? new WebSocket(url, { headers: { 'x-pty-token': session.token } })
      : new WebSocket(`${url}?token=${session.token}`);
    const terminal = new Terminal(socket);
    await once(socket, 'open');
    if (ready) socket.send(Buffer.of(0x02));
    return terminal;
  }

  type(text: string): void {
    this.socket.send(Buffer.concat([Buffer.of(0x00), Buffer.from(text)]));
  }

  waitFor(needle: string): Promise<void> {
    if (this.text.includes(needle)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ needle, resolve }));
  }
}

async function upgradeStatus(
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  const socket = new WebSocket(`${daemon.url.replace('http', 'ws')}${path}`, { headers });
  const [, response] = await once(socket, 'unexpected-response');
  let body = '';
  for await (const chunk of response) body += chunk;
  return { status: response.statusCode, body };
}

describe('terminal sessions over WebSocket', () => {
  test('output is held until ready, then scrollback and live output; the exit frame and close 1000', async () => {
    const session = await createSession({ rows: 30, cols: 90 });
    const info = (await client.call('GET', `/pty/${session.session_id}`)).body as Record<string, unknown>;
    assert.equal(info.rows, 30);
    assert.equal(info.cols, 90);
    assert.equal(info.is_alive, true);
    assert.equal(isAlive(info.pid as number), true);
    const listed = (await client.call('GET', '/pty')).body as { sessions: Record<string, unknown>[] };
    assert.ok(listed.sessions.some((s) => s.session_id === session.session_id && !('token' in s)));

    const first = await Terminal.open(session, { viaHeader: true });
    first.type('echo $((6*7))\n');
    await first.waitFor('42\r\n');
    // Not ready yet: a second client sees nothing until it says so, then gets the scrollback.
    const second = await Terminal.open(session, { ready: false });
    first.type('echo marker-$((2*3))\n');
    await first.waitFor('marker-6\r\n');
    assert.equal(second.text, '');
    second.socket.send(Buffer.of(0x02));
    await second.waitFor('marker-6\r\n');
    assert.ok(second.text.includes('42'));

    // Resize through the socket: cols, then rows, big-endian.
    const resize = Buffer.alloc(5);
    resize[0] = 0x01;
    resize.writeUInt16BE(120, 1);
    resize.writeUInt16BE(50, 3);
    second.socket.send(resize);
    second.type('stty size\n');
    await second.waitFor('50 120');
    assert.equal(
      ((await client.call('GET', `/pty/${session.session_id}`)).body as Record<string, unknown>).cols,
      120,
    );

    assert.equal(
      (await client.call('POST', `/pty/${session.session_id}/resize`, { rows: 20, cols: 70 })).status,
      204,
    );
    first.type('stty size\n');
    await first.waitFor('20 70');

    first.type('exit 3\n');
    const [closedFirst, closedSecond] = await Promise.all([first.closed, second.closed]);
    assert.deepEqual(closedFirst, { code: 1000, reason: 'exit:3' });
    assert.deepEqual(closedSecond, { code: 1000, reason: 'exit:3' });
    assert.equal(first.exitCode, 3);
    const ended = (await client.call('GET', `/pty/${session.session_id}`)).body as Record<string, unknown>;
    assert.deepEqual([ended.is_alive, ended.exit_code], [false, 3]);
  });

  test('DELETE hangs the session up and closes its clients with 1001', async () => {
    const session = await createSession();
    const terminal = await Terminal.open(session);
    terminal.type('echo up\n');
    await terminal.waitFor('up\r\n');
    const { pid } = (await client.call('GET', `/pty/${session.session_id}`)).body as { pid: number };
    assert.equal((await client.call('DELETE', `/pty/${session.session_id}`)).status, 204);
    assert.equal((await terminal.closed).code, 1001);
    await eventually(() => !isAlive(pid));
    assert.equal((await client.call('GET', `/pty/${session.session_id}`)).status, 404);
  });

  test('a session nobody attaches to is reaped after the idle time', async () => {
    const session = await createSession();
    const { pid } = (await client.call('GET', `/pty/${session.session_id}`)).body as { pid: number };
    const terminal = await Terminal.open(session);
    terminal.socket.close();
    await terminal.closed;
    await eventually(() => !isAlive(pid), 10_000);
    assert.equal((await client.call('GET', `/pty/${session.session_id}`)).status, 404);
  });

  test('a wrong token gets 403 INVALID_TOKEN, an unknown session 404; frames too large are refused', async () => {
    const session = await createSession();
    try {
      const wrong = await upgradeStatus(`/api/v1/pty/${session.session_id}/ws?token=wrong`);
      assert.equal(wrong.status, 403);
      assert.equal(JSON.parse(wrong.body).code, 'INVALID_TOKEN');
      const missing = await upgradeStatus(`/api/v1/pty/${session.session_id}/ws`);
      assert.equal(missing.status, 403);
      const unknown = await upgradeStatus('/api/v1/pty/no-such-session/ws?token=x');
      assert.equal(unknown.status, 404);
      assert.equal(JSON.parse(unknown.body).code, 'SESSION_NOT_FOUND');
      const rest = await client.call('GET', '/pty/no-such-session');
      assert.deepEqual([rest.status, (rest.body as { code: string }).code], [404, 'SESSION_NOT_FOUND']);

      const terminal = await Terminal.open(session);
      terminal.socket.send(Buffer.alloc(2 * 1024 * 1024));
      assert.equal((await terminal.closed).code, 1009);
      // The session outlives a client that broke the rules; another can attach.
      const next = await Terminal.open(session);
      next.type('echo still-serving\n');
      await next.waitFor('still-serving\r\n');
      next.socket.close();
    } finally {
      await client.call('DELETE', `/pty/${session.session_id}`);
    }
    assert.equal((await client.call('GET', '/health')).status, 200);
  });

  test('REST routes need the daemon token; a terminal session is in the process table', async () => {
    const unauthorized = await fetch(`${daemon.api}/pty`, { method: 'POST', body: '{"command":"/bin/sh"}' });
    assert.equal(unauthorized.status, 401);
    const session = await createSession();
    try {
      const { pid } = (await client.call('GET', `/pty/${session.session_id}`)).body as { pid: number };
      assert.equal((await client.get(pid)).status, 'running');
      const stdin = await client.call('POST', `/processes/${pid}/stdin`, 'x');
      assert.equal((stdin.body as { code: string }).code, 'STDIN_NOT_WRITABLE');
    } finally {
      await client.call('DELETE', `/pty/${session.session_id}`);
    }
  });
});

describe('an idle timeout longer than a Node timer holds', () => {
  // 2^32 ms, about 50 days: a plain setTimeout of it fires after 1 ms.
  const longIdle = useDaemon(['--token', TOKEN, '--pty-idle-timeout-ms', String(2 ** 32)]);

  test('keeps an unattached session for that long, not for a millisecond', async () => {
    const api = restClient(longIdle);
    const { status, body } = await api.call('POST', '/pty', { command: '/bin/sh', args: ['-c', 'exit 3'] });
    assert.equal(status, 201);
    const { session_id: id } = body as Session;
    try {
      // Its process ends on its own, long after a timer of 1 ms would have reaped the session.
      await eventually(async () => {
        const polled = await api.call('GET', `/pty/${id}`);
        assert.equal(polled.status, 200, 'the session was reaped');
        return !(polled.body as { is_alive: boolean }).is_alive;
      });
      const ended = await api.call('GET', `/pty/${id}`);
      assert.equal(ended.status, 200);
      assert.deepEqual(
        [(ended.body as { is_alive: boolean }).is_alive, (ended.body as { exit_code: number }).exit_code],
        [false, 3],
      );
    } finally {
      await api.call('DELETE', `/pty/${id}`);
    }
  });
});
