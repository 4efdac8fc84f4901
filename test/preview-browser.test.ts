import assert from 'node:assert/strict';
import { describe } from 'node:test';
import type { Browser } from 'playwright-core';
import { sandboxClient } from './helpers/api.ts';
import { startApp, type TestApp } from './helpers/apps.ts';
import { browserTest, launchBrowser } from './helpers/browser.ts';
import { useDaemon } from './helpers/daemon.ts';
import { chromium, needs } from './helpers/tools.ts';

const TOKEN = 'preview-browser-secret-93b2';

/** A web app that says which port it is and what it was asked. */
function helloApp(name: string): Promise<TestApp> {
  return startApp((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(
      `<!doctype html><title>${name}</title><h1 id="app">Hello from ${name}</h1><p id="path">${req.url}</p>`,
    );
  });
}

describe('a preview link in Chromium', { skip: await needs([chromium]) }, () => {
  let browser: Browser;
  let app: TestApp;
  let otherApp: TestApp;
  const daemon = useDaemon({
    args: ['--token', TOKEN],
    beforeStart: async () => {
      app = await helloApp('the app');
      otherApp = await helloApp('another app');
    },
    afterStart: async () => {
      browser = await launchBrowser();
    },
    beforeStop: async () => {
      await browser?.close();
    },
    afterStop: async () => {
      await app?.close();
      await otherApp?.close();
    },
  });

  browserTest(
    'the link shows the app, loses its code, and leaves an HttpOnly cookie that opens that preview alone',
    () => browser,
    async ({ page, context }) => {
      const daemonPort = new URL(daemon.url).port;
      const link = await sandboxClient(daemon).previewLink(app.port);
      const linked = new URL(link.url);
      assert.equal(linked.host, `${app.port}-sandbox.localhost:${daemonPort}`);

      const response = await page.goto(link.url);
      assert.equal(response?.status(), 200);
      assert.equal(await page.textContent('#app'), 'Hello from the app');
      const clean = `http://${app.port}-sandbox.localhost:${daemonPort}/`;
      assert.equal(page.url(), clean, 'the code is gone from the address bar');
      assert.equal(await page.textContent('#path'), '/', 'the app never saw the code');
      // The link was one redirect away, and history holds the clean address alone: one step
      // back is the blank page the tab started with.
      assert.equal(response?.request().redirectedFrom()?.url(), link.url);
      assert.equal(await page.evaluate(() => history.length), 2);
      await page.goBack();
      assert.equal(page.url(), 'about:blank');
      await page.goForward();
      assert.equal(page.url(), clean);

      const cookies = await context.cookies();
      assert.equal(cookies.length, 1);
      const [cookie] = cookies;
      assert.equal(cookie?.name, 'sandboxd_preview');
      assert.equal(cookie?.domain, `${app.port}-sandbox.localhost`, 'host-only: no other host gets it');
      assert.equal(cookie?.httpOnly, true);
      assert.equal(cookie?.sameSite, 'Lax');
      assert.equal(await page.evaluate(() => document.cookie), '', "the app's scripts cannot read it");

      // A reload (the cookie, no code) still shows the app.
      assert.equal((await page.reload())?.status(), 200);
      assert.equal(await page.textContent('#app'), 'Hello from the app');

      // The same cookie, planted on another port's preview and on the API, opens neither.
      await context.addCookies([
        {
          name: 'sandboxd_preview',
          value: cookie?.value ?? '',
          domain: `${otherApp.port}-sandbox.localhost`,
          path: '/',
        },
        { name: 'sandboxd_preview', value: cookie?.value ?? '', domain: '127.0.0.1', path: '/' },
      ]);
      const other = await page.goto(`http://${otherApp.port}-sandbox.localhost:${daemonPort}/`);
      assert.equal(other?.status(), 401);
      assert.match((await page.textContent('h1')) ?? '', new RegExp(`port ${otherApp.port} is private`));
      const api = await page.goto(`${daemon.url}/api/v1/processes`);
      assert.equal(api?.status(), 401);
    },
  );

  browserTest(
    'a link opens once: the second time is a page that says so',
    () => browser,
    async ({ page }) => {
      const link = await sandboxClient(daemon).previewLink(app.port);
      const first = await page.context().browser()?.newContext();
      try {
        const firstPage = await first?.newPage();
        assert.equal((await firstPage?.goto(link.url))?.status(), 200);
      } finally {
        await first?.close();
      }
      const again = await page.goto(link.url);
      assert.equal(again?.status(), 403);
      assert.match((await page.textContent('h1')) ?? '', /used or has expired/);
    },
  );
});
