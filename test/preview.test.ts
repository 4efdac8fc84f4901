import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { type IncomingMessage, request } from 'node:http';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import WebSocket, { WebSocketServer } from 'ws';
import { PreviewAccess } from '../src/ports/preview-access.ts';
import { previewLink } from '../src/ports/preview-link.ts';
import { type Echo, echoApp, freePort, requestWithHost, startApp, type TestApp } from './helpers/apps.ts';
import { cli } from './helpers/cli.ts';
import { eventually, useDaemon } from './helpers/daemon.ts';

const TOKEN = 'preview-secret-5d1c8e';
const bearer = { authorization: `Bearer ${TOKEN}` };

let daemonPort: number;
let publicApp: TestApp;
let privateApp: TestApp;
const daemon = useDaemon({
  beforeStart: async () => {
    publicApp = await echoApp();
    privateApp = await echoApp();
  },
  args: () => ['--token', TOKEN, '--public-port', String(publicApp.port)],
  afterStart: () => {
    daemonPort = Number(new URL(daemon.url).port);
  },
  afterStop: async () => {
    await publicApp.close();
    await privateApp.close();
  },
});

/** The Host a browser sends for the preview of a port. */
const previewHost = (port: number | string) => `${port}-app.localhost:${daemonPort}`;
const preview = (port: number | string, path = '/', options: Parameters<typeof requestWithHost>[3] = {}) =>
  requestWithHost(daemon.url, previewHost(port), path, options);

/**
 * Resolves once the socket has closed, whatever ended it (errors are expected here);
 * `abandon` first drops a handshake whose refusal the test has read.
 */
function closed(socket: WebSocket, { abandon = false } = {}): Promise<void> {
  socket.on('error', () => {});
  const done = new Promise<void>((resolve) => {
    if (socket.readyState === WebSocket.CLOSED) resolve();
    else socket.once('close', () => resolve());
  });
  if (abandon) socket.terminate();
  return done;
}

/** Descriptors the daemon holds open. */
const openDescriptors = () => readdirSync(`/proc/${daemon.child.pid}/fd`).length;

describe('HTTP previews by Host', () => {
  test('curl reaches the app by its preview host: path, query and Host as sent, X-Forwarded-*, no token', async () => {
    const host = `${privateApp.port}-app.localhost`;
    const { stdout } = await promisify(execFile)('curl', [
      '--silent',
      '--show-error',
      '--fail',
      '--path-as-is',
      '--resolve',
      `${host}:${daemonPort}:127.0.0.1`,
      '--header',
      `Authorization: Bearer ${TOKEN}`,
      `http://${host}:${daemonPort}/some/../path?q=1&r=%20x`,
    ]);
    const seen = JSON.parse(stdout) as Echo;
    assert.equal(seen.url, '/some/../path?q=1&r=%20x');
    assert.equal(seen.headers.host, `${host}:${daemonPort}`);
    assert.equal(seen.headers['x-forwarded-host'], `${host}:${daemonPort}`);
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers.authorization, undefined);
  });

  test("the daemon's credentials never reach the app; the app's own headers and cookies do", async () => {
    const answer = await preview(privateApp.port, '/creds', {
      method: 'PUT',
      body: 'payload',
      headers: {
        'x-access-token': TOKEN,
        cookie: 'theme=dark; sandboxd_console=abc; sandboxd_preview=def; cart=3',
        'x-forwarded-for': '10.1.2.3',
        'x-app': 'kept',
      },
    });
    assert.equal(answer.status, 200);
    const seen = JSON.parse(answer.body) as Echo;
    assert.equal(seen.method, 'PUT');
    assert.equal(seen.body, 'payload');
    assert.equal(seen.headers['x-access-token'], undefined);
    assert.equal(seen.headers.cookie, 'theme=dark; cart=3');
    assert.equal(seen.headers['x-forwarded-for'], '10.1.2.3, 127.0.0.1');
    assert.equal(seen.headers['x-app'], 'kept');
    // An Authorization that is not the daemon's token is the app's own business.
    const basic = await preview(privateApp.port, '/', {
      headers: { ...bearer, cookie: 'sandboxd_console=only' },
    });
    assert.equal((JSON.parse(basic.body) as Echo).headers.cookie, undefined);
    const appLogin = 'Basic dXNlcjpwYXNz';
    const withAppAuth = await requestWithHost(daemon.url, previewHost(publicApp.port), '/', {
      headers: { authorization: appLogin },
    });
    assert.equal((JSON.parse(withAppAuth.body) as Echo).headers.authorization, appLogin);
  });

  test('private by default: 401 without credentials, a page naming the port; a --public-port opens to anyone', async () => {
    const refused = await preview(privateApp.port);
    assert.equal(refused.status, 401);
    assert.match(refused.headers['content-type'] ?? '', /^text\/html/);
    assert.match(refused.body, new RegExp(`port ${privateApp.port}`));
    assert.equal((await preview(privateApp.port, '/', { headers: { 'x-access-token': TOKEN } })).status, 200);
    assert.equal(
      (await preview(privateApp.port, '/', { headers: { authorization: 'Bearer wrong' } })).status,
      401,
    );
    const open = await preview(publicApp.port, '/anyone');
    assert.equal(open.status, 200);
    assert.equal((JSON.parse(open.body) as Echo).url, '/anyone');
    // The listing says which is which.
    const listed = await fetch(`${daemon.api}/ports`, { headers: daemon.headers });
    const { ports } = (await listed.json()) as { ports: { port: number; public: boolean }[] };
    const publicOf = (port: number) =>
      ports.filter((entry) => entry.port === port).map((entry) => entry.public);
    assert.deepEqual(publicOf(publicApp.port), [true]);
    assert.deepEqual(publicOf(privateApp.port), [false]);
  });

  test("the console's session cookie opens no preview", async () => {
    const login = await fetch(`${daemon.url}/ui/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { origin: daemon.url, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: TOKEN }).toString(),
    });
    assert.equal(login.status, 303);
    const consoleCookie = (login.headers.get('set-cookie') ?? '').split(';')[0] as string;
    assert.match(consoleCookie, /^sandboxd_console=/);
    assert.equal((await preview(privateApp.port, '/', { headers: { cookie: consoleCookie } })).status, 401);
  });

  test('a link: its code is swapped once for a cookie that opens that port alone, and the address loses the code', async () => {
    const made = await fetch(`${daemon.api}/ports/${privateApp.port}/preview`, {
      method: 'POST',
      headers: bearer,
    });
    assert.equal(made.status, 200);
    const link = (await made.json()) as { url: string; port: number; expires_at: number };
    assert.equal(link.port, privateApp.port);
    assert.ok(link.expires_at > Date.now() && link.expires_at <= Date.now() + 61_000);
    const url = new URL(link.url);
    assert.equal(url.host, `${privateApp.port}-sandbox.localhost:${daemonPort}`);
    const opened = await requestWithHost(daemon.url, url.host, `${url.pathname}${url.search}&keep=a%20b`);
    assert.equal(opened.status, 303);
    assert.equal(opened.headers.location, '/?keep=a%20b');
    const setCookie = opened.headers['set-cookie']?.[0] ?? '';
    assert.match(setCookie, /^sandboxd_preview=[\w-]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+$/);
    const cookie = setCookie.split(';')[0] as string;

    const again = await requestWithHost(daemon.url, url.host, `${url.pathname}${url.search}`);
    assert.equal(again.status, 403, 'a code opens once');
    assert.match(again.body, /used or has expired/);

    // An address that starts with // must not send the browser to another host.
    const elsewhere = await requestWithHost(daemon.url, url.host, `//evil.example/x${url.search}`, {
      headers: { cookie },
    });
    assert.equal(elsewhere.status, 303);
    assert.equal(elsewhere.headers.location, '/evil.example/x');

    const app = await requestWithHost(daemon.url, url.host, '/?keep=1', { headers: { cookie } });
    // Another preview cookie first (one a sibling app set for a parent domain) hides nothing.
    const tossed = await requestWithHost(daemon.url, url.host, '/', {
      headers: { cookie: `sandboxd_preview=planted; ${cookie}` },
    });
    assert.equal(tossed.status, 200);
    assert.equal(app.status, 200);
    assert.equal(
      (JSON.parse(app.body) as Echo).headers.cookie,
      undefined,
      'the preview cookie is not passed on',
    );
    const other = await echoApp();
    try {
      assert.equal((await preview(other.port, '/', { headers: { cookie } })).status, 401);
    } finally {
      await other.close();
    }
    const api = await fetch(`${daemon.api}/processes`, { headers: { cookie } });
    assert.equal(api.status, 401);
    await api.body?.cancel();
  });

  test('a link made for one port does not open another', async () => {
    const made = await fetch(`${daemon.api}/ports/${privateApp.port}/preview`, {
      method: 'POST',
      headers: bearer,
    });
    const { url } = (await made.json()) as { url: string };
    const other = await echoApp();
    try {
      const tried = await preview(other.port, new URL(url).search.replace(/^/, '/'));
      assert.equal(tried.status, 403);
      // Spent by the try: a code that leaked cannot be tried again on the right port either.
      const later = await requestWithHost(daemon.url, new URL(url).host, `/${new URL(url).search}`);
      assert.equal(later.status, 403);
    } finally {
      await other.close();
    }
  });

  test('`sandboxd preview PORT` prints a link that opens the preview; a port that is none is a usage error', async () => {
    const printed = await cli(['preview', String(privateApp.port)], { daemon });
    assert.equal(printed.code, 0, printed.stderr);
    const link = new URL(printed.stdout.trim());
    assert.equal(link.host, `${privateApp.port}-sandbox.localhost:${daemonPort}`);
    const opened = await requestWithHost(daemon.url, link.host, `${link.pathname}${link.search}`);
    assert.equal(opened.status, 303);
    const refused = await cli(['preview', '70000'], { daemon });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /port from 1 to 65535/);
  });

  test('links name the host the daemon was reached by, with the port in front', async () => {
    for (const [host, expected] of [
      ['127.0.0.1:9501', '3000-sandbox.localhost:9501'],
      ['localhost:9501', '3000-sandbox.localhost:9501'],
      ['[::1]:9501', '3000-sandbox.localhost:9501'],
      ['sbx.example.com:9501', '3000-sbx.example.com:9501'],
      ['sbx.example.com', '3000-sbx.example.com'],
    ] as const) {
      const answer = await requestWithHost(daemon.url, host, '/api/v1/ports/3000/preview', {
        method: 'POST',
        headers: bearer,
      });
      assert.equal(answer.status, 200, host);
      assert.equal(new URL((JSON.parse(answer.body) as { url: string }).url).host, expected, host);
    }
    const bad = await fetch(`${daemon.api}/ports/65536/preview`, { method: 'POST', headers: bearer });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { code: string }).code, 'INVALID_REQUEST');
  });

  test('nothing listening: 502 with a page that names the port', async () => {
    const port = await freePort();
    const answer = await preview(port, '/', { headers: bearer });
    assert.equal(answer.status, 502);
    assert.match(answer.headers['content-type'] ?? '', /^text\/html/);
    assert.match(answer.body, new RegExp(`port ${port}\\b`));
  });

  test("the daemon's own port is not previewed: each hop would make another, without end", async () => {
    const answer = await preview(daemonPort, '/', { headers: bearer });
    assert.equal(answer.status, 400);
    assert.match(answer.body, new RegExp(`Port ${daemonPort} is sandboxd itself`));
    const client = new WebSocket(`${daemon.url.replace('http', 'ws')}/`, {
      headers: { host: previewHost(daemonPort), ...bearer },
    });
    const [, res] = (await once(client, 'unexpected-response')) as [unknown, IncomingMessage];
    assert.equal(res.statusCode, 400);
    res.resume();
    await closed(client, { abandon: true });
  });

  test('an app that listens on [::1] only is reached there', async () => {
    const v6 = await echoApp('::1');
    try {
      const answer = await preview(v6.port, '/six', { headers: bearer });
      assert.equal(answer.status, 200);
      assert.equal((JSON.parse(answer.body) as Echo).url, '/six');
    } finally {
      await v6.close();
    }
  });

  test('hosts: 0-x and 99999-x are 400 pages; 3000x, -3000 and no dash are the daemon as before', async () => {
    for (const host of ['0-x', '99999-x.localhost:9501', '00000-x']) {
      const answer = await requestWithHost(daemon.url, host, '/', { headers: bearer });
      assert.equal(answer.status, 400, host);
      assert.match(answer.headers['content-type'] ?? '', /^text\/html/, host);
    }
    for (const host of ['3000x', '-3000', '3000x.localhost', '3000', '123456-x.example.com']) {
      const unauthorized = await requestWithHost(daemon.url, host, '/api/v1/processes');
      assert.equal(unauthorized.status, 401, host);
      assert.equal((JSON.parse(unauthorized.body) as { code: string }).code, 'UNAUTHORIZED', host);
      const missing = await requestWithHost(daemon.url, host, '/no/such/route', { headers: bearer });
      assert.equal(missing.status, 404, host);
      assert.equal((JSON.parse(missing.body) as { code: string }).code, 'NOT_FOUND', host);
    }
  });
});

describe('streaming through a preview', () => {
  test('an event stream: the first event arrives while the app still holds the response open', async () => {
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const app = await startApp((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: first\n\n');
      // The app ends the stream only once the client has seen its first event.
      void released.then(() => res.end('data: last\n\n'));
    });
    try {
      const req = request(`${daemon.url}/events`, {
        headers: { host: previewHost(app.port), ...bearer },
        agent: false,
      });
      req.end();
      const [res] = (await once(req, 'response')) as [IncomingMessage];
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['content-type'], 'text/event-stream');
      res.setEncoding('utf8');
      let text = '';
      for await (const chunk of res) {
        text += chunk as string;
        if (text === 'data: first\n\n') {
          assert.equal(res.complete, false);
          release();
        }
      }
      assert.equal(text, 'data: first\n\ndata: last\n\n');
    } finally {
      release();
      await app.close();
    }
  });

  test('a chunked upload streams: the app echoes each piece before the next is sent', async () => {
    const app = await startApp((req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      req.on('data', (chunk: Buffer) => res.write(chunk));
      req.on('end', () => res.end());
    });
    try {
      const req = request(`${daemon.url}/upload`, {
        method: 'POST',
        headers: { host: previewHost(app.port), ...bearer, 'transfer-encoding': 'chunked' },
        agent: false,
      });
      req.write('piece-1;');
      const [res] = (await once(req, 'response')) as [IncomingMessage];
      const pieces = res[Symbol.asyncIterator]();
      let echoed = '';
      for (const next of ['piece-2;', 'piece-3;']) {
        const echoedSoFar = echoed.length;
        while (echoed.length === echoedSoFar) echoed += String(((await pieces.next()).value as Buffer) ?? '');
        req.write(next);
      }
      req.end();
      for (let piece = await pieces.next(); !piece.done; piece = await pieces.next())
        echoed += String(piece.value);
      assert.equal(echoed, 'piece-1;piece-2;piece-3;');
    } finally {
      await app.close();
    }
  });

  test('a WebSocket through a preview: echoed both ways, with the forwarded headers and no token', async () => {
    const app = await startApp((_req, res) => res.end());
    const sockets = new WebSocketServer({ server: app.server });
    let upgradeHeaders: Record<string, string | string[] | undefined> = {};
    sockets.on('connection', (socket, req) => {
      upgradeHeaders = req.headers;
      socket.on('message', (data, binary) => socket.send(data, { binary }));
    });
    try {
      const client = new WebSocket(`${daemon.url.replace('http', 'ws')}/hmr?x=1`, {
        headers: { host: previewHost(app.port), ...bearer },
      });
      await once(client, 'open');
      client.send('hello');
      const [text] = (await once(client, 'message')) as [Buffer];
      assert.equal(text.toString(), 'hello');
      client.send(Buffer.from([0, 1, 2, 255]));
      const [bytes] = (await once(client, 'message')) as [Buffer];
      assert.deepEqual([...bytes], [0, 1, 2, 255]);
      assert.equal(upgradeHeaders.authorization, undefined);
      assert.equal(upgradeHeaders.host, previewHost(app.port));
      assert.equal(upgradeHeaders['x-forwarded-host'], previewHost(app.port));
      assert.equal(upgradeHeaders['x-forwarded-for'], '127.0.0.1');
      client.close();
      await once(client, 'close');
    } finally {
      sockets.close();
      await app.close();
    }
  });

  test('a WebSocket without credentials is refused with 401 on a private port', async () => {
    const client = new WebSocket(`${daemon.url.replace('http', 'ws')}/`, {
      headers: { host: previewHost(privateApp.port) },
    });
    const [, res] = (await once(client, 'unexpected-response')) as [unknown, IncomingMessage];
    assert.equal(res.statusCode, 401);
    res.resume();
    await closed(client, { abandon: true });
  });
});

describe('apps that fail', () => {
  test('an upgrade to an app that answers plain HTTP gets that answer, and the connection ends', async () => {
    const app = await startApp((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('no websockets here');
    });
    try {
      const client = new WebSocket(`${daemon.url.replace('http', 'ws')}/`, {
        headers: { host: previewHost(app.port), ...bearer },
      });
      const [, res] = (await once(client, 'unexpected-response')) as [unknown, IncomingMessage];
      assert.equal(res.statusCode, 200);
      const connection = res.socket;
      let body = '';
      for await (const chunk of res) body += chunk;
      assert.equal(body, 'no websockets here');
      // The daemon closes the connection after the app's answer: nothing is left half open.
      if (!connection.destroyed) await once(connection, 'close');
      await closed(client, { abandon: true });
    } finally {
      await app.close();
    }
  });

  test('an app that closes mid-response: the client sees the answer cut off, not a clean end', async () => {
    const app = await startApp((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      // Once the piece is out, the app goes away.
      res.write('half of it', () => res.socket?.destroy());
    });
    try {
      const req = request(`${daemon.url}/`, {
        headers: { host: previewHost(app.port), ...bearer },
        agent: false,
      });
      req.end();
      const [res] = (await once(req, 'response')) as [IncomingMessage];
      let body = '';
      const ended = await (async () => {
        try {
          for await (const chunk of res) body += chunk;
          return 'clean end';
        } catch (error) {
          return (error as NodeJS.ErrnoException).code;
        }
      })();
      assert.equal(body, 'half of it');
      assert.equal(ended, 'ECONNRESET');
    } finally {
      await app.close();
    }
  });

  test('an app that closes mid-upgrade: 502 before its answer, a closed socket after it', async () => {
    const app = await startApp((_req, res) => res.end());
    app.server.on('upgrade', (req, socket) => {
      if (req.url === '/before') socket.destroy();
      else {
        socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n');
        socket.end('Sec-WebSocket-Accept: wrong\r\n\r\n');
      }
    });
    try {
      const ws = daemon.url.replace('http', 'ws');
      const beforeAnswer = new WebSocket(`${ws}/before`, {
        headers: { host: previewHost(app.port), ...bearer },
      });
      const [, res] = (await once(beforeAnswer, 'unexpected-response')) as [unknown, IncomingMessage];
      assert.equal(res.statusCode, 502);
      let page = '';
      for await (const chunk of res) page += chunk;
      assert.match(page, new RegExp(`port ${app.port}`));
      await closed(beforeAnswer, { abandon: true });

      const afterAnswer = new WebSocket(`${ws}/after`, {
        headers: { host: previewHost(app.port), ...bearer },
      });
      await closed(afterAnswer);
    } finally {
      await app.close();
    }
  });

  test('after all of it, the daemon holds no more descriptors than before', async () => {
    const baseline = openDescriptors();
    for (let round = 0; round < 20; round++) {
      const app = await echoApp();
      assert.equal((await preview(app.port, '/', { headers: bearer })).status, 200);
      const client = new WebSocket(`${daemon.url.replace('http', 'ws')}/`, {
        headers: { host: previewHost(app.port), ...bearer },
      });
      await closed(client);
      await app.close();
      assert.equal((await preview(app.port, '/', { headers: bearer })).status, 502);
    }
    await eventually(() => openDescriptors() <= baseline);
    const health = await fetch(`${daemon.api}/health`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
  });
});

describe('preview access and links, without HTTP', () => {
  const access = () =>
    new PreviewAccess({
      publicPorts: [8080],
      codeLifetimeMs: 60_000,
      sessionLifetimeMs: 1000,
      maxEntries: 3,
    });

  test('a code expires after its lifetime, opens only its port, and once', () => {
    const store = access();
    const late = store.createCode(3000, 0);
    assert.equal(late.expiresAt, 60_000);
    assert.equal(store.redeemCode(late.code, 3000, 60_000), undefined, 'expired');
    const onTime = store.createCode(3000, 0);
    const session = store.redeemCode(onTime.code, 3000, 59_999);
    assert.ok(session);
    assert.equal(store.redeemCode(onTime.code, 3000, 59_999), undefined, 'spent');
    assert.equal(store.sessionOpens(session, 3000, 60_000), true);
    assert.equal(store.sessionOpens(session, 3001, 60_000), false);
    assert.equal(store.sessionOpens(session, 3000, 59_999 + 1000), false, 'the session has ended');
    assert.equal(store.isPublic(8080), true);
    assert.equal(store.isPublic(3000), false);
    assert.deepEqual([...store.publicPorts], [8080]);
  });

  test('past the bound, the oldest codes are forgotten', () => {
    const store = access();
    const codes = [1, 2, 3, 4].map((port) => store.createCode(port, 0).code);
    assert.equal(store.redeemCode(codes[0] as string, 1, 1), undefined);
    assert.ok(store.redeemCode(codes[3] as string, 4, 1));
  });

  test('--preview-host replaces the host of links; https when the request came through TLS', () => {
    assert.equal(
      previewLink({
        port: 5173,
        code: 'c/d',
        requestHost: '127.0.0.1:9501',
        configuredHost: 'sbx.example.com',
        secure: true,
      }),
      'https://5173-sbx.example.com/?sandboxd_preview_code=c%2Fd',
    );
    assert.equal(
      previewLink({ port: 80, code: 'x', requestHost: undefined, secure: false }),
      'http://80-sandbox.localhost/?sandboxd_preview_code=x',
    );
  });
});
