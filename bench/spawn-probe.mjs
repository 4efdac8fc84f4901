// Node's own spawn, timed in a lean process of its own (plain JavaScript, nothing loaded but
// Node): the floor that the daemon's starts are compared with. The bench's process would be a
// slower floor, with the tsx loader's thread and a larger heap to fork. Started by starts.ts
// with fork(); each message names what to time, and is answered with the milliseconds:
//   'start'  spawn('/bin/true') as the daemon spawns (its own session, output on pipes), until
//            its 'spawn' event
//   'run'    spawn('true') with output on pipes, until 'close' (its output read to the end)
// The child is reaped before the answer either way, so that no exit overlaps the next sample.
import { spawn } from 'node:child_process';
import { once } from 'node:events';

process.on('message', async (what) => {
  const started = performance.now();
  const child =
    what === 'start'
      ? spawn('/bin/true', [], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('true', [], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.resume();
  child.stderr.resume();
  if (what === 'start') await once(child, 'spawn');
  else await once(child, 'close');
  const ms = performance.now() - started;
  if (child.exitCode === null) await once(child, 'close');
  process.send(ms);
});
process.on('disconnect', () => process.exit(0));
process.send('ready');
