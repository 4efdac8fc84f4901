import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { buildConsole, type ConsoleSizes } from '../../web/build.ts';
import { ROOT, type TestDaemon } from './daemon.ts';
import { chromium as chromiumTool } from './tools.ts';

export const SCREENSHOTS = join(ROOT, 'test-results');

/** Builds the console's assets, which the daemon serves from dist/web. */
export function buildAssets(): Promise<ConsoleSizes> {
  return buildConsole();
}

/**
 * An environment for a daemon whose terminals the tests drive: a home of its own, so that a
 * shell reads no start-up files of the machine's user (which may be slow or wait on locks).
 */
export async function shellEnvironment(): Promise<Record<string, string>> {
  return { HOME: await mkdtemp(join(tmpdir(), 'console-home-')) };
}

/** Headless Chromium; Playwright gives each launch a fresh, temporary profile. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumTool.command,
    headless: true,
    chromiumSandbox: false,
    args: [
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export interface BrowserTestContext {
  page: Page;
  context: BrowserContext;
  t: TestContext;
}

/**
 * A test in a fresh browser context (no cookies, no storage); on failure it saves a
 * screenshot of the page under test-results/ and names it in the error.
 */
export function browserTest(
  name: string,
  browser: () => Browser,
  body: (context: BrowserTestContext) => Promise<void>,
  options: { skip?: string | boolean } = {},
): void {
  test(name, options, async (t) => {
    const context = await browser().newContext({
      viewport: { width: 1280, height: 800 },
      acceptDownloads: true,
    });
    const page = await context.newPage();
    try {
      await body({ page, context, t });
    } catch (error) {
      await mkdir(SCREENSHOTS, { recursive: true });
      const file = join(SCREENSHOTS, `${name.replace(/[^\w-]+/g, '-').slice(0, 80)}.png`);
      const saved = await page.screenshot({ path: file, fullPage: true }).then(
        () => true,
        () => false,
      );
      if (saved && error instanceof Error) error.message += `\n(screenshot: ${file})`;
      throw error;
    } finally {
      await context.close();
    }
  });
}

/** Logs in through the form and waits for the console. */
export async function logIn(page: Page, daemon: TestDaemon, token = daemon.token ?? ''): Promise<void> {
  await page.goto(`${daemon.url}/ui/`);
  await page.waitForURL(`${daemon.url}/ui/login`);
  await page.fill('input[name="token"]', token);
  await Promise.all([page.waitForURL(`${daemon.url}/ui/`), page.click('button[type="submit"]')]);
  await page.waitForSelector('nav a.active');
}

/** The terminal's screen as text, a line per row. */
export async function terminalText(page: Page): Promise<string[]> {
  return page.$$eval('.xterm-rows > div', (rows) =>
    rows.map((row) => (row.textContent ?? '').replace(/\u00a0/g, ' ').trimEnd()),
  );
}
