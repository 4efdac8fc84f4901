// Health round trips measured from a process of their own, so that the load of the bench's
// process (a thousand followers, say) does not count: GET /api/v1/health over one keep-alive
// connection every 10 ms, between a 'start' and a 'stop' message, which is answered with the
// round trips in ms. Started by many-followers.ts with fork(), the health URL its argument.
import { Agent, get } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

const url = process.argv[2] as string;
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
let current: number[] | undefined;

function roundTrip(): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    get(url, { agent }, (response) => {
      response.resume();
      response.once('end', () =>
        response.statusCode === 200
          ? resolve(performance.now() - started)
          : reject(new Error(`${response.statusCode}`)),
      );
    }).once('error', reject);
  });
}

async function probe(samples: number[]): Promise<void> {
  while (current === samples) {
    samples.push(await roundTrip());
    await sleep(10);
  }
}

process.on('message', (message) => {
  if (message === 'start') {
    current = [];
    void probe(current);
  } else if (message === 'stop') {
    process.send?.({ samples: current ?? [] });
    current = undefined;
  }
});
process.on('disconnect', () => process.exit(0));
process.send?.('ready');
