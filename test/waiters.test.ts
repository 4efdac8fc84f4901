import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Waiters } from '../src/core/waiters.ts';

// The wake-up shared by the output log's readers and the file watches.
describe('waiters', () => {
  test('a wake ends every wait under way, and only those', async () => {
    const waiters = new Waiters();
    const woken: string[] = [];
    const first = waiters.wait().then(() => woken.push('first'));
    const second = waiters.wait().then(() => woken.push('second'));
    assert.equal(waiters.size, 2);
    waiters.wake();
    await Promise.all([first, second]);
    assert.deepEqual(woken.sort(), ['first', 'second']);
    assert.equal(waiters.size, 0);
    const later = waiters.wait();
    let settled = false;
    void later.then(() => {
      settled = true;
    });
    await Promise.resolve();
    assert.equal(settled, false, 'a wait begun after the wake waits for the next one');
    waiters.wake();
    await later;
  });

  test('an abort ends its own wait alone and leaves nothing behind', async () => {
    const waiters = new Waiters();
    const stop = new AbortController();
    const aborted = waiters.wait(stop.signal);
    const other = waiters.wait();
    stop.abort();
    await aborted;
    assert.equal(waiters.size, 1);
    waiters.wake();
    await other;
    assert.equal(waiters.size, 0);
  });

  test('a wait with a signal already aborted returns at once and holds nothing', async () => {
    const waiters = new Waiters();
    await waiters.wait(AbortSignal.abort());
    assert.equal(waiters.size, 0);
  });
});
