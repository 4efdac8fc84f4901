import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { restClient } from './helpers/api.ts';
import { browserTest, buildAssets, launchBrowser, logIn, shellEnvironment } from './helpers/browser.ts';
import { startDaemon, useDaemon } from './helpers/daemon.ts';
import { chromium, needs } from './helpers/tools.ts';

const TOKEN = 'console-secret-7f3a9c1e5b';

let shell: Record<string, string>;
let client: ReturnType<typeof restClient>;
let origin: string;
let sizes: Awaited<ReturnType<typeof buildAssets>>;
const daemon = useDaemon({
  args: ['--token', TOKEN],
  beforeStart: async () => {
    sizes = await buildAssets();
    shell = await shellEnvironment();
  },
  env: () => shell,
  afterStart: () => {
    client = restClient(daemon);
    origin = daemon.url;
  },
  afterStop: async () => {
    await rm(shell.HOME as string, { recursive: true, force: true });
  },
});

/** A plain HTTP request, redirects not followed. */
function request(path: string, init: RequestInit & { headers?: Record<string, string> } = {}) {
  return fetch(`${daemon.url}${path}`, { redirect: 'manual', ...init });
}

/** Logs in as a browser would and returns the session cookie (name=value). */
async function logInCookie(): Promise<string> {
  const response = await request('/ui/login', {
    method: 'POST',
    headers: { origin, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: TOKEN }).toString(),
  });
  assert.equal(response.status, 303);
  const cookie = response.headers.get('set-cookie') ?? '';
  return cookie.split(';')[0] as string;
}

describe('console login', () => {
  test('console pages without a session redirect to the login form', async () => {
    for (const path of ['/ui', '/ui/', '/ui/processes', '/ui/no/such/page']) {
      const response = await request(path);
      assert.equal(response.status, 303, path);
      assert.equal(response.headers.get('location'), '/ui/login', path);
    }
    const forged = await request('/ui/', { headers: { cookie: 'sandboxd_console=forged' } });
    assert.equal(forged.status, 303);
    const login = await request('/ui/login');
    assert.equal(login.status, 200);
    assert.match(await login.text(), /<form method="post" action="\/ui\/login"/);
  });

  test('the right token gets an HttpOnly, SameSite=Strict session cookie; a wrong one gets 401 and none', async () => {
    const wrong = await request('/ui/login', {
      method: 'POST',
      headers: { origin, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'token=nope',
    });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers.get('set-cookie'), null);
    assert.match(await wrong.text(), /That token is not right/);

    const right = await request('/ui/login', {
      method: 'POST',
      headers: { origin, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: TOKEN }).toString(),
    });
    assert.equal(right.status, 303);
    assert.equal(right.headers.get('location'), '/ui/');
    const attributes = (right.headers.get('set-cookie') ?? '').split(';').map((part) => part.trim());
    assert.match(attributes[0] as string, /^sandboxd_console=[\w-]{40,}$/);
    assert.ok(attributes.includes('HttpOnly'), String(attributes));
    assert.ok(attributes.includes('SameSite=Strict'), String(attributes));
    assert.ok(attributes.includes('Path=/'), String(attributes));
    assert.ok(!(attributes[0] as string).includes(TOKEN));

    const page = await request('/ui/', { headers: { cookie: attributes[0] as string } });
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
  });

  test('the cookie opens the REST routes the console calls, from its own origin', async () => {
    const cookie = await logInCookie();
    const list = await request('/api/v1/processes', { headers: { cookie, 'sec-fetch-site': 'same-origin' } });
    assert.equal(list.status, 200);
    const started = await request('/api/v1/processes', {
      method: 'POST',
      headers: { cookie, origin, 'sec-fetch-site': 'same-origin', 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'true' }),
    });
    assert.equal(started.status, 201);
    const { pid } = (await started.json()) as { pid: number };
    await client.waitForEnd(pid);
  });

  test('the cookie opens nothing else: other REST routes and the Connect-RPC service want the token', async () => {
    const cookie = await logInCookie();
    const headers = { cookie, origin, 'sec-fetch-site': 'same-origin', 'content-type': 'application/json' };
    const run = await request('/api/v1/processes/run', {
      method: 'POST',
      headers,
      body: JSON.stringify({ command: 'true' }),
    });
    assert.equal(run.status, 401);
    const connect = await request('/process.Process/List', { method: 'POST', headers, body: '{}' });
    assert.equal(connect.status, 401);
    const withoutCookie = await request('/api/v1/processes', {
      headers: { 'sec-fetch-site': 'same-origin' },
    });
    assert.equal(withoutCookie.status, 401);
  });

  test('a cross-origin POST is refused, even from another port of the same host', async () => {
    const cookie = await logInCookie();
    const listedBefore = (await client.call('GET', '/processes')).body as { processes: unknown[] };
    const port = Number(new URL(daemon.url).port);
    const attempts: Record<string, string>[] = [
      { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' },
      { origin: `http://127.0.0.1:${port + 1}`, 'sec-fetch-site': 'same-site' },
      // Fetch metadata lying aside, the Origin alone decides.
      { origin: 'http://evil.example' },
      // A state change with no Origin at all.
      {},
    ];
    for (const extra of attempts) {
      const response = await request('/api/v1/processes', {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/json', ...extra },
        body: JSON.stringify({ command: 'touch', args: ['/tmp/should-not-exist'] }),
      });
      assert.equal(response.status, 403, JSON.stringify(extra));
      assert.deepEqual(await response.json(), { error: 'cross-origin request refused', code: 'FORBIDDEN' });
    }
    // Reads from another origin are refused too, where the browser says where they come from.
    const read = await request('/api/v1/processes', { headers: { cookie, 'sec-fetch-site': 'same-site' } });
    assert.equal(read.status, 403);
    const listedAfter = (await client.call('GET', '/processes')).body as { processes: unknown[] };
    assert.equal(listedAfter.processes.length, listedBefore.processes.length);

    const login = await request('/ui/login', {
      method: 'POST',
      headers: { origin: 'http://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: TOKEN }).toString(),
    });
    assert.equal(login.status, 403);
    assert.equal(login.headers.get('set-cookie'), null);
    const logout = await request('/ui/logout', {
      method: 'POST',
      headers: { cookie, origin: 'http://evil.example' },
    });
    assert.equal(logout.status, 403);
    assert.equal((await request('/ui/', { headers: { cookie } })).status, 200, 'the session survives');
  });

  test('logging out ends the session: the cookie is cleared and no longer accepted', async () => {
    const cookie = await logInCookie();
    assert.equal((await request('/ui/', { headers: { cookie } })).status, 200);
    const response = await request('/ui/logout', { method: 'POST', headers: { cookie, origin } });
    assert.equal(response.status, 303);
    assert.equal(response.headers.get('location'), '/ui/login');
    assert.match(response.headers.get('set-cookie') ?? '', /^sandboxd_console=;.*Max-Age=0/);
    assert.equal((await request('/ui/', { headers: { cookie } })).status, 303);
    const list = await request('/api/v1/processes', { headers: { cookie, 'sec-fetch-site': 'same-origin' } });
    assert.equal(list.status, 401);
  });

  test('GET never changes state: logout and login refuse it', async () => {
    const cookie = await logInCookie();
    const logout = await request('/ui/logout', { headers: { cookie } });
    assert.equal(logout.status, 405);
    assert.equal(logout.headers.get('set-cookie'), null);
    assert.equal((await request('/ui/', { headers: { cookie } })).status, 200);
    const login = await request(`/ui/login?token=${TOKEN}`);
    assert.equal(login.headers.get('set-cookie'), null);
  });

  test('the pages and their assets never hold the token', async () => {
    const cookie = await logInCookie();
    const index = await (await request('/ui/', { headers: { cookie } })).text();
    const assets = [...index.matchAll(/\/ui\/assets\/[\w.-]+/g)].map((match) => match[0]);
    assert.ok(assets.length >= 2, index);
    for (const text of [index, await (await request('/ui/login')).text()]) assert.ok(!text.includes(TOKEN));
    for (const path of assets) {
      const response = await request(path);
      assert.equal(response.status, 200, path);
      assert.ok(!(await response.text()).includes(TOKEN), path);
    }
  });
});

describe('console in the browser', { skip: await needs([chromium]) }, () => {
  let browser: Browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser.close();
  });

  browserTest(
    'after using every screen the token is in no URL, page source, storage or script-visible cookie',
    () => browser,
    async ({ page }) => {
      const urls: string[] = [];
      page.on('request', (pageRequest) => urls.push(pageRequest.url()));
      page.on('websocket', (socket) => urls.push(socket.url()));
      await logIn(page, daemon);
      const seen = [];
      for (const screen of ['processes', 'logs', 'files', 'terminal']) {
        await page.click(`nav a[data-screen="${screen}"]`);
        await page.waitForSelector(`nav a.active[data-screen="${screen}"]`);
        seen.push(page.url());
      }
      await page.waitForSelector('.terminal .follow-state.live');
      const leaks = await page.evaluate((token) => {
        const found: string[] = [];
        const storages = { localStorage, sessionStorage };
        for (const [name, storage] of Object.entries(storages)) {
          for (let i = 0; i < storage.length; i++) {
            const key = storage.key(i) ?? '';
            if (key.includes(token) || (storage.getItem(key) ?? '').includes(token)) found.push(name);
          }
        }
        if (document.cookie !== '') found.push(`document.cookie: ${document.cookie}`);
        if (document.documentElement.outerHTML.includes(token)) found.push('DOM');
        return found;
      }, TOKEN);
      assert.deepEqual(leaks, []);
      assert.ok(!(await page.content()).includes(TOKEN));
      assert.ok(urls.length > 5, String(urls));
      for (const url of [...urls, ...seen]) assert.ok(!url.includes(TOKEN), url);
      const [cookie] = await page.context().cookies();
      assert.equal(cookie?.httpOnly, true);
      assert.equal(cookie?.sameSite, 'Strict');
      // Leave no shell behind.
      await page.click('.terminal button.danger');
      await page.waitForSelector('.terminal .follow-state.ended');
    },
  );
});

describe('console assets', () => {
  test('the page loads in under 200 KiB gzipped; xterm comes later, with the terminal', () => {
    assert.ok(sizes.page < 200 * 1024, `page: ${sizes.page} bytes gzipped`);
    assert.ok(sizes.terminal > 0, 'the terminal is a chunk of its own');
  });

  test('assets are served gzipped to a browser that takes gzip', async () => {
    const index = await (await request('/ui/', { headers: { cookie: await logInCookie() } })).text();
    const script = index.match(/\/ui\/assets\/app-[\w]+\.js/)?.[0] as string;
    const response = await request(script, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(response.headers.get('content-encoding'), 'gzip');
    assert.match(response.headers.get('cache-control') ?? '', /immutable/);
    assert.ok((await response.text()).includes('/output/follow'), 'the app script, decompressed');
  });
});

describe('console switches', () => {
  test('--no-ui serves no console', async () => {
    const plain = await startDaemon(['--token', TOKEN, '--no-ui']);
    try {
      const response = await fetch(`${plain.url}/ui/`, { redirect: 'manual' });
      assert.equal(response.status, 401);
      const authorized = await fetch(`${plain.url}/ui/login`, { headers: plain.headers, redirect: 'manual' });
      assert.equal(authorized.status, 404);
    } finally {
      await plain.stop();
    }
  });

  test('without a token the console is open, like the API', async () => {
    const open = await startDaemon([]);
    try {
      const page = await fetch(`${open.url}/ui/`, { redirect: 'manual' });
      assert.equal(page.status, 200);
      assert.ok(!(await page.text()).includes('/ui/logout'));
      const login = await fetch(`${open.url}/ui/login`, { redirect: 'manual' });
      assert.equal(login.status, 303);
      assert.equal(login.headers.get('location'), '/ui/');
    } finally {
      await open.stop();
    }
  });
});
