import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'node:test';
import type { Browser, Page, Request, WebSocketRoute } from 'playwright-core';
import { restClient } from './helpers/api.ts';
import {
  browserTest,
  buildAssets,
  launchBrowser,
  logIn,
  shellEnvironment,
  terminalText,
} from './helpers/browser.ts';
import { startDaemon, useDaemon } from './helpers/daemon.ts';
import { chromium, needs } from './helpers/tools.ts';

const TOKEN = 'browser-test-token-91d2';
const inChromium = { skip: await needs([chromium]) };

let shell: Record<string, string>;
let client: ReturnType<typeof restClient>;
let browser: Browser;
const daemon = useDaemon({
  skip: inChromium.skip,
  args: ['--token', TOKEN],
  beforeStart: async () => {
    await buildAssets();
    shell = await shellEnvironment();
  },
  env: () => shell,
  afterStart: async () => {
    client = restClient(daemon);
    browser = await launchBrowser();
  },
  beforeStop: async () => {
    await browser?.close();
  },
  afterStop: async () => {
    if (shell) await rm(shell.HOME as string, { recursive: true, force: true });
  },
});

const open = (page: Page, hash: string) => page.goto(`${daemon.url}/ui/${hash}`);

/** The log's lines as [class, text] pairs. */
function logLines(page: Page): Promise<[string, string][]> {
  return page.$$eval('.log .line:not(.note)', (lines) =>
    lines.map((line) => [line.className.replace('line ', ''), line.textContent ?? ''] as [string, string]),
  );
}

describe('console: login', inChromium, () => {
  browserTest(
    'a wrong token is refused; the right one opens the console; logout ends it',
    () => browser,
    async ({ page, context }) => {
      await page.goto(`${daemon.url}/ui/`);
      assert.equal(page.url(), `${daemon.url}/ui/login`);
      await page.fill('input[name="token"]', 'not-the-token');
      await page.click('button[type="submit"]');
      await page.waitForSelector('.login-form .error');
      assert.match((await page.textContent('.login-form .error')) ?? '', /not right/);
      assert.deepEqual(await context.cookies(), []);

      await page.fill('input[name="token"]', TOKEN);
      await Promise.all([page.waitForURL(`${daemon.url}/ui/`), page.click('button[type="submit"]')]);
      await page.waitForSelector('nav a.active[data-screen="processes"]');
      assert.equal((await context.cookies()).length, 1);

      await Promise.all([page.waitForURL(`${daemon.url}/ui/login`), page.click('.logout button')]);
      assert.deepEqual(await context.cookies(), []);
      await page.goto(`${daemon.url}/ui/#/processes`);
      assert.equal(new URL(page.url()).pathname, '/ui/login');
    },
  );
});

describe('console: processes', inChromium, () => {
  browserTest(
    'processes started from the form and over REST appear in the table, and Kill ends them',
    () => browser,
    async ({ page }) => {
      await logIn(page, daemon);
      await page.fill('input[name="command"]', 'sleep 300');
      await page.fill('textarea[name="env"]', 'GREETING=hello');
      await page.fill('input[name="name"]', 'console-sleeper');
      await page.click('.start-form button[type="submit"]');
      const row = page.locator('tbody tr', { hasText: 'console-sleeper' });
      await row.waitFor();
      const formPid = Number(await row.getAttribute('data-pid'));
      const other = await client.start({ command: 'sleep', args: ['301'] });
      try {
        // No reload: the table notices the process on its own.
        const otherRow = page.locator(`tbody tr[data-pid="${other.pid}"]`);
        await otherRow.waitFor();
        assert.match((await otherRow.textContent()) ?? '', /sleep 301/);
        assert.match((await row.locator('td.status').textContent()) ?? '', /^running/);
        const env = await client.get(formPid);
        assert.deepEqual([env.command, env.args], ['/bin/sh', ['-c', 'sleep 300']]);

        await otherRow.locator('button', { hasText: 'Kill' }).click();
        await page.waitForSelector(`tbody tr[data-pid="${other.pid}"] td.status.signaled`);
        assert.equal(await otherRow.locator('td').nth(3).textContent(), 'SIGKILL');

        // A named process is managed: it can be restarted, and comes back under a new pid.
        await row.locator('button', { hasText: 'Restart' }).click();
        await page.waitForFunction(
          (old) =>
            [...document.querySelectorAll('tbody tr')].some(
              (tr) =>
                tr.textContent?.includes('console-sleeper') &&
                tr.getAttribute('data-pid') !== String(old) &&
                tr.querySelector('td.status.running'),
            ),
          formPid,
        );
        const restarted = page
          .locator('tbody tr', { hasText: 'console-sleeper' })
          .filter({ has: page.locator('td.status.running') });
        const newPid = Number(await restarted.getAttribute('data-pid'));
        assert.notEqual(newPid, formPid);
        await restarted.locator('select').selectOption({ label: 'SIGTERM' });
        await restarted.locator('button', { hasText: 'Signal' }).click();
        await page.waitForSelector(`tbody tr[data-pid="${newPid}"] td.status.signaled`);
        assert.equal(await page.locator(`tbody tr[data-pid="${newPid}"] td`).nth(3).textContent(), 'SIGTERM');
      } finally {
        await client.kill(other.pid);
        for (const info of (
          (await client.call('GET', '/processes')).body as { processes: { pid: number; name?: string }[] }
        ).processes)
          if (info.name === 'console-sleeper') await client.kill(info.pid);
      }
    },
  );
  browserTest(
    "a managed process's health shows as a badge, with the last error as the status's tooltip",
    () => browser,
    async ({ page }) => {
      await logIn(page, daemon);
      const check = (command: string) => ({
        type: 'exec' as const,
        command,
        initial_delay_ms: 0,
        interval_ms: 20,
        failure_threshold: 1,
      });
      const healthy = await client.start({ command: 'sleep', args: ['302'], health_check: check('true') });
      const unhealthy = await client.start({ command: 'sleep', args: ['303'], health_check: check('false') });
      try {
        await page.waitForSelector(`tbody tr[data-pid="${healthy.pid}"] td.status .badge.health-healthy`);
        const badge = page.locator(`tbody tr[data-pid="${unhealthy.pid}"] td.status .badge.health-unhealthy`);
        await badge.waitFor();
        assert.equal(await badge.textContent(), 'unhealthy');
        assert.equal(
          await page.locator(`tbody tr[data-pid="${unhealthy.pid}"] td.status`).getAttribute('title'),
          'health check failed 1 time in a row: exec false exited 1',
        );
      } finally {
        await client.kill(healthy.pid);
        await client.kill(unhealthy.pid);
      }
    },
  );
});

describe('console: logs', inChromium, () => {
  browserTest(
    'the log follows a process live to its end: stdout and stderr apart, then the exit code',
    () => browser,
    async ({ page }) => {
      await logIn(page, daemon);
      const info = await client.start({
        command: '/bin/sh',
        args: ['-c', 'while read l; do echo "out $l"; echo "err $l" >&2; done; exit 3'],
        stdin_mode: 'pipe',
      });
      try {
        await open(page, `#/logs/${info.pid}`);
        await page.waitForSelector('.follow-state.live');
        await client.call('POST', `/processes/${info.pid}/stdin`, 'one\n');
        await page.waitForSelector('.log .line.stderr >> text=err one');
        // The page's own stdin box writes too.
        await page.fill('.stdin-row input', 'two');
        await page.click('.stdin-row button[type="submit"]');
        await page.waitForSelector('.log .line.stderr >> text=err two');
        await page.click('.stdin-row button >> text=Close stdin');
        await page.waitForSelector('.exit[data-exit-code]');
        assert.equal(await page.getAttribute('.exit', 'data-exit-code'), '3');
        assert.equal(await page.textContent('.exit'), 'exited with code 3');
        assert.equal(await page.textContent('.follow-state'), 'ended');
        assert.deepEqual(await logLines(page), [
          ['stdout', 'out one'],
          ['stderr', 'err one'],
          ['stdout', 'out two'],
          ['stderr', 'err two'],
        ]);
      } finally {
        await client.kill(info.pid);
      }
    },
  );

  browserTest(
    'after a dropped connection the log resumes after the last id: nothing missed, nothing twice',
    () => browser,
    async ({ page }) => {
      await logIn(page, daemon);
      const info = await client.start({ command: 'seq', args: ['1', '8'] });
      await client.waitForEnd(info.pid);
      const { lines } = await client.follow(info.pid);
      assert.equal(lines.length, 8);
      // The first connection carries three real events and then breaks off, without an eof;
      // the browser's own retry then goes to the daemon untouched.
      const follow = `**/api/v1/processes/${info.pid}/output/follow*`;
      await page.route(
        follow,
        (route) => {
          const events = lines
            .slice(0, 3)
            .map(
              ({ id, line, timestamp, stream }) =>
                `id: ${id}\nevent: output\ndata: ${JSON.stringify({ line, timestamp, stream })}\n\n`,
            );
          return route.fulfill({
            status: 200,
            contentType: 'text/event-stream',
            body: `retry: 50\n\n${events.join('')}`,
          });
        },
        { times: 1 },
      );
      const sent: Request[] = [];
      page.on('request', (request) => {
        if (request.url().includes('/output/follow')) sent.push(request);
      });
      await open(page, `#/logs/${info.pid}`);
      await page.waitForSelector('.follow-state.ended');
      assert.deepEqual(
        (await logLines(page)).map(([, text]) => text),
        ['1', '2', '3', '4', '5', '6', '7', '8'],
      );
      assert.equal(sent.length, 2);
      // The browser's own retry carries Last-Event-ID; a new EventSource (when the browser gave
      // up first, as it may on a busy machine) carries ?after=. Either way: after the third line.
      const resumed = sent[1] as Request;
      const resumedAfter =
        (await resumed.allHeaders())['last-event-id'] ?? new URL(resumed.url()).searchParams.get('after');
      assert.equal(resumedAfter, String(lines[2]?.id));
      assert.equal(await page.getAttribute('.exit', 'data-exit-code'), '0');
    },
  );

  browserTest(
    'a truncation event shows a marker where the output was dropped',
    () => browser,
    async ({ page }) => {
      // A daemon that keeps 128 KiB of a stream: 4 MB of output outruns it for sure.
      const small = await startDaemon(
        ['--token', TOKEN, '--output-memory-bytes', '16384', '--output-max-bytes', '131072'],
        shell,
      );
      try {
        const smallClient = restClient(small);
        const info = await smallClient.start({ command: 'seq', args: ['-f', '%099g', '1', '40000'] });
        await smallClient.waitForEnd(info.pid);
        await logIn(page, small);
        await page.goto(`${small.url}/ui/#/logs/${info.pid}`);
        await page.waitForSelector('.follow-state.ended');
        const [marker, ...lines] = await logLines(page);
        assert.equal(marker?.[0], 'truncated');
        assert.match(marker?.[1] ?? '', /MiB of stdout dropped here/);
        assert.ok(await page.isVisible('.log .line.truncated'));
        // After the marker, whole lines one after another, to the last one.
        const numbers = lines.map(([kind, text]) => {
          assert.equal(kind, 'stdout');
          assert.equal(text.length, 99);
          return Number(text);
        });
        for (let i = 1; i < numbers.length; i++) assert.equal(numbers[i], (numbers[i - 1] as number) + 1);
        assert.equal(numbers.at(-1), 40000);
        assert.ok(numbers.length < 40000);
      } finally {
        await small.stop();
      }
    },
  );

  browserTest(
    'search narrows the page to matching lines; download saves the whole log',
    () => browser,
    async ({ page }) => {
      await logIn(page, daemon);
      const info = await client.start({
        command: '/bin/sh',
        args: ['-c', 'for i in $(seq 1 50); do echo "line-$i"; done'],
      });
      await client.waitForEnd(info.pid);
      await open(page, `#/logs/${info.pid}`);
      await page.waitForSelector('.follow-state.ended');
      await page.fill('input[type="search"]', 'line-4');
      await page.waitForSelector('.matches >> text=11 matching');
      const visible = await page.$$eval('.log .line:not(.hidden):not(.note)', (lines) =>
        lines.map((l) => l.textContent),
      );
      assert.deepEqual(visible, ['line-4', ...Array.from({ length: 10 }, (_, i) => `line-${40 + i}`)]);

      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.click('button >> text=Download log'),
      ]);
      assert.equal(download.suggestedFilename(), `process-${info.pid}.log`);
      const text = await readFile((await download.path()) as string, 'utf8');
      assert.equal(text, Array.from({ length: 50 }, (_, i) => `line-${i + 1}\n`).join(''));
    },
  );
});

describe('console: terminal', inChromium, () => {
  const typeCommand = async (page: Page, command: string) => {
    await page.click('.terminal-host');
    await page.keyboard.type(command);
    await page.keyboard.press('Enter');
  };

  const openTerminal = async (page: Page) => {
    await logIn(page, daemon);
    await open(page, '#/terminal');
    await page.waitForSelector('.terminal .follow-state.live');
  };

  const terminalShows = (page: Page, text: string) =>
    page.waitForFunction(
      (needle) => document.querySelector('.xterm-rows')?.textContent?.includes(needle),
      text,
    );

  const endSession = async (page: Page) => {
    await page.click('.terminal button.danger');
    await page.waitForSelector('.terminal .follow-state.ended');
  };

  browserTest(
    'echo $((6*7)) typed into the terminal reads back 42',
    () => browser,
    async ({ page }) => {
      await openTerminal(page);
      await typeCommand(page, 'echo $((6*7))');
      await page.waitForFunction(() =>
        [...document.querySelectorAll('.xterm-rows > div')].some((row) => row.textContent?.trim() === '42'),
      );
      await endSession(page);
    },
  );

  browserTest(
    'resizing the window changes stty size',
    () => browser,
    async ({ page }) => {
      await openTerminal(page);
      const size = async (tag: string): Promise<[number, number]> => {
        await typeCommand(page, `stty size | sed 's/^/${tag}=/'`);
        const pattern = new RegExp(`^${tag}=(\\d+) (\\d+)$`);
        await page.waitForFunction(
          (source) =>
            [...document.querySelectorAll('.xterm-rows > div')].some((row) =>
              new RegExp(source).test((row.textContent ?? '').replace(/\u00a0/g, ' ').trim()),
            ),
          pattern.source,
        );
        const line = (await terminalText(page))
          .map((row) => row.trim())
          .find((row) => pattern.test(row)) as string;
        const [, rows, cols] = pattern.exec(line) as RegExpExecArray;
        return [Number(rows), Number(cols)];
      };
      const rowsOnScreen = () => page.$$eval('.xterm-rows > div', (rowElements) => rowElements.length);

      const [rows, cols] = await size('BIG');
      assert.equal(rows, await rowsOnScreen());
      await page.setViewportSize({ width: 800, height: 500 });
      await page.waitForFunction(
        (rowsBefore) => document.querySelectorAll('.xterm-rows > div').length !== rowsBefore,
        rows,
      );
      const [smallRows, smallCols] = await size('SMALL');
      assert.equal(smallRows, await rowsOnScreen());
      assert.ok(smallRows < rows, `${smallRows} < ${rows}`);
      assert.ok(smallCols < cols, `${smallCols} < ${cols}`);
      await endSession(page);
    },
  );

  browserTest(
    'a dropped terminal connection comes back with its scrollback',
    () => browser,
    async ({ page }) => {
      const sockets: WebSocketRoute[] = [];
      const received: string[] = [];
      let second: () => void = () => {};
      const reconnected = new Promise<void>((resolve) => {
        second = resolve;
      });
      await page.routeWebSocket(/\/api\/v1\/pty\/[^/]+\/ws/, (ws) => {
        const index = sockets.push(ws) - 1;
        const server = ws.connectToServer();
        server.onMessage((message) => {
          if (typeof message !== 'string') received[index] = (received[index] ?? '') + message.toString();
          ws.send(message);
        });
        if (index === 1) second();
      });
      await openTerminal(page);
      await typeCommand(page, 'echo before-$((40+2))');
      await terminalShows(page, 'before-42');
      // The page's side of the socket drops, as on a network failure.
      await sockets[0]?.close({ code: 4000, reason: 'dropped' });
      await reconnected;
      await page.waitForSelector('.terminal .follow-state.live');
      // The daemon replayed the scrollback on the new connection, and the page shows it.
      await terminalShows(page, 'before-42');
      assert.match(received[1] ?? '', /before-42/);
      await typeCommand(page, 'echo after-$((40+2))');
      await terminalShows(page, 'after-42');
      await endSession(page);
    },
  );

  browserTest(
    'a reload finds the same terminal again',
    () => browser,
    async ({ page }) => {
      await openTerminal(page);
      await typeCommand(page, 'MARK=kept-$((1+1)); echo $MARK');
      await terminalShows(page, 'kept-2');
      await page.reload();
      await page.waitForSelector('.terminal .follow-state.live');
      await typeCommand(page, 'echo again-$MARK');
      await terminalShows(page, 'again-kept-2');
      await endSession(page);
    },
  );
});

describe('console: files', inChromium, () => {
  browserTest(
    'upload by drag and drop with progress, download, delete',
    () => browser,
    async ({ page }) => {
      const dir = await mkdtemp(join(tmpdir(), 'console-files-'));
      try {
        await writeFile(join(dir, 'existing.txt'), 'already here\n');
        await logIn(page, daemon);
        await open(page, `#/files/${dir}`);
        await page.waitForSelector('tr[data-name="existing.txt"]');

        // 3 MiB of varied bytes, dropped onto the screen as a browser would drop a file.
        const bytes = Buffer.alloc(3 * 1024 * 1024);
        for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) % 251;
        const transfer = await page.evaluateHandle((base64) => {
          const data = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
          const dt = new DataTransfer();
          dt.items.add(new File([data], 'dropped.bin', { type: 'application/octet-stream' }));
          return dt;
        }, bytes.toString('base64'));
        await page.dispatchEvent('section.files', 'dragenter', { dataTransfer: transfer });
        assert.ok(await page.isVisible('section.files.dragging'));
        await page.dispatchEvent('section.files', 'drop', { dataTransfer: transfer });
        await page.waitForSelector('.uploads li.done[data-name="dropped.bin"]');
        assert.equal(
          await page.textContent('.uploads li[data-name="dropped.bin"] span:last-child'),
          'uploaded',
        );
        assert.equal(
          await page.$eval(
            '.uploads li[data-name="dropped.bin"] progress',
            (bar) => (bar as HTMLProgressElement).value,
          ),
          bytes.length,
        );
        assert.deepEqual(await readFile(join(dir, 'dropped.bin')), bytes);
        await page.waitForSelector('tr[data-name="dropped.bin"]');

        const [download] = await Promise.all([
          page.waitForEvent('download'),
          page.click('tr[data-name="dropped.bin"] a.button'),
        ]);
        assert.equal(download.suggestedFilename(), 'dropped.bin');
        assert.deepEqual(await readFile((await download.path()) as string), bytes);

        page.once('dialog', (dialog) => void dialog.accept());
        await page.click('tr[data-name="existing.txt"] button.danger');
        await page.waitForSelector('tr[data-name="existing.txt"]', { state: 'detached' });
        await assert.rejects(stat(join(dir, 'existing.txt')), { code: 'ENOENT' });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});
