// Drives the daemon's terminal sessions through the official tensorlake SDK (Node >= 22.19,
// run by tensorlake-pty.test.ts in a child process). Prints what it observed as one JSON object.
import { execFileSync } from 'node:child_process';
import { connectSandbox } from './sandbox.mjs';

const sandbox = await connectSandbox('pty-test');
const seen = {};
const decoder = new TextDecoder();

/** Collects a terminal's output and resolves waits when a text shows up. */
function screen() {
  let text = '';
  const waiters = [];
  return {
    onData(data) {
      text += decoder.decode(data);
      for (const waiter of [...waiters]) {
        if (text.includes(waiter.needle)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve();
        }
      }
    },
    text: () => text,
    waitFor(needle) {
      if (text.includes(needle)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        waiters.push({ needle, resolve });
        // A bound for a failing run, not a synchronisation: the wait ends on the data itself.
        setTimeout(
          () => reject(new Error(`no '${needle}' in: ${JSON.stringify(text.slice(-300))}`)),
          10_000,
        ).unref();
      });
    },
  };
}

/** Waits until the session's shell has a `sleep` child (after its exec), so Ctrl-C finds it. */
async function sleepRunningUnder(sessionId) {
  const response = await fetch(`${process.env.SANDBOXD_URL}/api/v1/pty/${sessionId}`, {
    headers: { authorization: `Bearer ${process.env.SANDBOXD_TOKEN}` },
  });
  const { pid } = await response.json();
  for (let tries = 0; tries < 1000; tries++) {
    try {
      execFileSync('pgrep', ['-P', String(pid), '-x', 'sleep']);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
  throw new Error('sleep never started');
}

const sessions = [];
try {
  const first = screen();
  let exitCode;
  const pty = await sandbox.createPty({
    command: '/bin/sh',
    env: { TERM: 'xterm', PS1: '$ ' },
    onData: first.onData,
    onExit: (code) => {
      exitCode = code;
    },
  });
  sessions.push(pty);
  await pty.sendInput('echo $((6*7))\n');
  await first.waitFor('42\r\n');
  await pty.resize(100, 40);
  await pty.sendInput('stty size\n');
  await first.waitFor('40 100');
  seen.resized = true;

  // Ctrl-C interrupts the foreground job; the shell lives on and answers.
  await pty.sendInput('sleep 100\n');
  await sleepRunningUnder(pty.sessionId);
  await pty.sendInput('\x03');
  await pty.sendInput('echo $((1000+337))\n');
  await first.waitFor('1337');
  seen.aliveAfterCtrlC = true;

  await pty.disconnect();
  const second = screen();
  const again = await sandbox.connectPty(pty.sessionId, pty.token, {
    onData: second.onData,
    onExit: (code) => {
      exitCode = code;
    },
  });
  await second.waitFor('1337');
  seen.scrollbackHas42 = second.text().includes('42');
  await again.sendInput('exit 3\n');
  seen.waited = await again.wait();
  seen.onExit = exitCode;

  try {
    await sandbox.connectPty(pty.sessionId, 'not-the-token');
    seen.wrongToken = 'connected';
  } catch (error) {
    seen.wrongToken = String(error?.message ?? error);
  }
  try {
    await sandbox.connectPty('no-such-session', 'x');
    seen.unknownSession = 'connected';
  } catch (error) {
    seen.unknownSession = String(error?.message ?? error);
  }

  const killed = await sandbox.createPty({ command: '/bin/sh', onData: () => {} });
  sessions.push(killed);
  const waited = killed.wait().then(
    (code) => `resolved ${code}`,
    (error) => `rejected: ${error.message}`,
  );
  await killed.kill();
  seen.killedWait = await waited;
  seen.health = (await sandbox.health()).healthy;
} catch (error) {
  seen.failure = String(error?.stack ?? error);
} finally {
  for (const session of sessions) await session.kill().catch(() => {});
}
process.stdout.write(JSON.stringify(seen));
process.exit(0);
