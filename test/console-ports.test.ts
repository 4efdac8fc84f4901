import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';
import { describe } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { ProcessInfo } from '../src/client/index.ts';
import { restClient } from './helpers/api.ts';
import { browserTest, buildAssets, launchBrowser, logIn } from './helpers/browser.ts';
import { unusedPort } from './helpers/cli.ts';
import { useDaemon } from './helpers/daemon.ts';
import { chromium, needs } from './helpers/tools.ts';

const TOKEN = 'console-ports-token-5e1a';
const inChromium = { skip: await needs([chromium]) };

let rest: ReturnType<typeof restClient>;
let browser: Browser;
const daemon = useDaemon({
  skip: inChromium.skip,
  args: ['--token', TOKEN],
  beforeStart: async () => {
    await buildAssets();
  },
  afterStart: async () => {
    rest = restClient(daemon);
    browser = await launchBrowser();
  },
  beforeStop: async () => {
    await browser?.close();
  },
});

/** An HTTP server on 127.0.0.1:port, started through the API, that answers with a greeting. */
async function startWebServer(port: number): Promise<ProcessInfo> {
  const script =
    `require('http').createServer((req, res) => res.end('hello from ${port}'))` +
    `.listen(${port}, '127.0.0.1', () => console.log('up'))`;
  const info = await rest.start({ command: process.execPath, args: ['-e', script] });
  const stream = rest.client.follow(info.pid, { view: 'stdout' });
  try {
    for (;;) {
      const next = await stream.next();
      if (next.done) throw new Error('the web server ended before it listened');
      if (next.value.length > 0) return info;
    }
  } finally {
    await stream.return(false);
  }
}

const row = (page: Page, port: number) => page.locator(`tbody tr[data-port="${port}"]`);

describe('console: ports', inChromium, () => {
  browserTest(
    'a listener started through the API appears with its process, and goes when it stops',
    () => browser,
    async ({ page }) => {
      await logIn(page, daemon);
      await page.click('nav a[data-screen="ports"]');
      await page.waitForSelector('nav a.active[data-screen="ports"]');
      const port = await unusedPort();
      const server = await startWebServer(port);
      try {
        // No reload: the screen polls.
        await row(page, port).waitFor();
        const cells = await row(page, port).locator('td').allTextContents();
        assert.deepEqual(cells.slice(0, 4), [
          String(port),
          '127.0.0.1',
          String(server.pid),
          String(server.pid),
        ]);
        assert.match(cells[4] ?? '', /createServer/);
        assert.equal(await row(page, port).locator('td a').getAttribute('href'), `#/logs/${server.pid}`);
        assert.equal(await row(page, port).locator('button', { hasText: 'Open' }).isEnabled(), true);

        // A listener of no process started here (this test's own) goes when the box says so.
        const own = createServer().listen(0, '127.0.0.1');
        await once(own, 'listening');
        try {
          const ownPort = (own.address() as AddressInfo).port;
          await row(page, ownPort).waitFor();
          assert.equal(await row(page, ownPort).locator('td').nth(3).textContent(), '');
          await page.check('input[name="started-here"]');
          await row(page, ownPort).waitFor({ state: 'detached' });
          assert.equal(await row(page, port).count(), 1);
          await page.uncheck('input[name="started-here"]');
          await row(page, ownPort).waitFor();
        } finally {
          own.close();
        }
      } finally {
        await rest.kill(server.pid);
        await rest.waitForEnd(server.pid);
      }
      await row(page, port).waitFor({ state: 'detached' });
    },
  );

  browserTest(
    'Open asks for a preview link and opens it in a new tab; a refused link closes the tab again',
    () => browser,
    async ({ page, context }) => {
      await logIn(page, daemon);
      const port = await unusedPort();
      const server = await startWebServer(port);
      try {
        await page.goto(`${daemon.url}/ui/#/ports`);
        await row(page, port).waitFor();

        // The real link: the tab lands on the app through its preview host, the code gone.
        const asked: Promise<{ method: string; origin: string | undefined; cookie: boolean }>[] = [];
        page.on('request', (request) => {
          if (!request.url().endsWith(`/api/v1/ports/${port}/preview`)) return;
          asked.push(
            request.allHeaders().then((headers) => ({
              method: request.method(),
              origin: headers.origin,
              cookie: (headers.cookie ?? '') !== '',
            })),
          );
        });
        const daemonPort = new URL(daemon.url).port;
        const [tab] = await Promise.all([
          context.waitForEvent('page'),
          row(page, port).locator('button', { hasText: 'Open' }).click(),
        ]);
        await tab.waitForURL(`http://${port}-sandbox.localhost:${daemonPort}/`);
        assert.equal(await tab.textContent('body'), `hello from ${port}`);
        assert.equal(
          await tab.evaluate(() => window.opener),
          null,
          'the new tab has no handle on the console',
        );
        assert.deepEqual(await Promise.all(asked), [{ method: 'POST', origin: daemon.url, cookie: true }]);
        await tab.close();

        // A link refused (played here: the daemon refuses a port it can make a link for only
        // when the request is bad): the tab opened for it is closed, and the page says why.
        await page.route(`${daemon.url}/api/v1/ports/${port}/preview`, (route) =>
          route.fulfill({
            status: 404,
            contentType: 'application/json',
            body: JSON.stringify({ error: 'nothing listens on port 1', code: 'NOT_FOUND' }),
          }),
        );
        // Watched from the moment the tab appears: it may close before a later listener is set.
        const refusedTabClosed = new Promise<void>((resolve) => {
          context.once('page', (refused) => {
            if (refused.isClosed()) resolve();
            else refused.once('close', () => resolve());
          });
        });
        await row(page, port).locator('button', { hasText: 'Open' }).click();
        await refusedTabClosed;
        await page.waitForSelector('#status.error');
        assert.match((await page.textContent('#status')) ?? '', new RegExp(`Could not open port ${port}`));
      } finally {
        await rest.kill(server.pid);
        await rest.waitForEnd(server.pid);
      }
    },
  );

  browserTest(
    "the console's cookie opens the ports list and the preview route, and not the wait",
    () => browser,
    async ({ page }) => {
      await logIn(page, daemon);
      const statuses = await page.evaluate(async () => {
        const list = await fetch('/api/v1/ports');
        const preview = await fetch('/api/v1/ports/8080/preview', { method: 'POST' });
        const wait = await fetch('/api/v1/ports/8080/wait?timeout_ms=0');
        return [list.status, preview.status, wait.status];
      });
      assert.equal(statuses[0], 200);
      assert.equal(statuses[1], 200);
      assert.equal(statuses[2], 401);
    },
  );
});
