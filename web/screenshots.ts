// Takes the README's screenshots of each console screen into docs/:
// `node --import tsx web/screenshots.ts` (needs Debian's chromium).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { restClient } from '../test/helpers/api.ts';
import { launchBrowser, logIn, shellEnvironment } from '../test/helpers/browser.ts';
import { ROOT, startDaemon } from '../test/helpers/daemon.ts';
import { buildConsole } from './build.ts';

const DOCS = join(ROOT, 'docs');
await buildConsole();
await mkdir(DOCS, { recursive: true });
const shell = await shellEnvironment();
const daemon = await startDaemon(['--token', 'screenshot-token'], shell);
const client = restClient(daemon);
const browser = await launchBrowser();
const files = await mkdtemp(join(tmpdir(), 'project-'));
const pids: number[] = [];
try {
  const build = await client.start({
    command: '/bin/sh',
    args: [
      '-c',
      'echo "compiling 42 modules"; for i in 1 2 3 4 5 6; do echo "  [$i/6] src/module-$i.ts"; done; ' +
        'echo "warning: src/module-4.ts: unused variable" >&2; echo "error: tests failed: 2 of 118" >&2; exit 1',
    ],
  });
  await client.waitForEnd(build.pid);
  pids.push((await client.start({ command: 'sleep', args: ['600'], name: 'worker' })).pid);
  pids.push(
    (
      await client.start({
        command: '/bin/sh',
        args: ['-c', 'while true; do date; sleep 2; done'],
        name: 'clock',
      })
    ).pid,
  );
  const done = await client.start({ command: 'uname', args: ['-a'] });
  await client.waitForEnd(done.pid);
  await writeFile(join(files, 'README.md'), '# project\n');
  await writeFile(join(files, 'data.csv'), 'a,b\n1,2\n'.repeat(2000));
  await mkdir(join(files, 'src'));

  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  await page.goto(`${daemon.url}/ui/login`);
  await page.screenshot({ path: join(DOCS, 'console-login.png') });
  await logIn(page, daemon);
  await page.fill('input[name="command"]', 'npm test');
  await page.waitForSelector(`tbody tr[data-pid="${pids[1]}"]`);
  await page.screenshot({ path: join(DOCS, 'console-processes.png') });
  await page.goto(`${daemon.url}/ui/#/logs/${build.pid}`);
  await page.waitForSelector('.follow-state.ended');
  await page.screenshot({ path: join(DOCS, 'console-logs.png') });
  await page.goto(`${daemon.url}/ui/#/terminal`);
  await page.waitForSelector('.terminal .follow-state.live');
  // The shell waits for input: the last line that is not empty ends in its prompt.
  const prompt = () =>
    page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('.xterm-rows > div')].map(
        (row) => row.textContent?.trim() ?? '',
      );
      return /[#$]$/.test(rows.filter((row) => row !== '').at(-1) ?? '');
    });
  await prompt();
  await page.click('.terminal-host');
  await page.keyboard.type(`cd ${files} && ls -l && echo $((6*7))`);
  await page.keyboard.press('Enter');
  await page.waitForFunction(() =>
    [...document.querySelectorAll('.xterm-rows > div')].some((row) => row.textContent?.trim() === '42'),
  );
  await prompt();
  await page.screenshot({ path: join(DOCS, 'console-terminal.png') });
  await page.click('.terminal button.danger');
  await page.goto(`${daemon.url}/ui/#/files/${files}`);
  await page.waitForSelector('tr[data-name="data.csv"]');
  await page.screenshot({ path: join(DOCS, 'console-files.png') });
  // Two web servers: one started as it is, one as a shell's background job.
  const web = await client.start({
    command: 'python3',
    args: ['-m', 'http.server', '8000', '--bind', '127.0.0.1'],
    name: 'web',
  });
  pids.push(web.pid);
  const dev = await client.start({
    command: '/bin/sh',
    args: ['-c', `node -e "require('http').createServer((q, s) => s.end('ok')).listen(5173)" & wait`],
    name: 'dev-server',
  });
  pids.push(dev.pid);
  await page.goto(`${daemon.url}/ui/#/ports`);
  await page.waitForSelector('tbody tr[data-port="8000"]');
  await page.waitForSelector('tbody tr[data-port="5173"]');
  await page.check('input[name="started-here"]');
  await page.screenshot({ path: join(DOCS, 'console-ports.png') });
  await context.close();
} finally {
  for (const pid of pids) await client.kill(pid);
  await browser.close();
  await daemon.stop();
  await rm(files, { recursive: true, force: true });
  await rm(shell.HOME as string, { recursive: true, force: true });
}
