import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DetachMatcher, parseDetachKeys } from '../src/cli/terminal.ts';

const feed = (matcher: DetachMatcher, text: string) => {
  const { forward, detach } = matcher.feed(Buffer.from(text, 'latin1'));
  return { forward: Buffer.from(forward).toString('latin1'), detach };
};

test('detach keys: ctrl-<key> and plain characters; anything else is refused with the reason', () => {
  assert.deepEqual(parseDetachKeys('ctrl-p,ctrl-q'), [0x10, 0x11]);
  assert.deepEqual(parseDetachKeys('ctrl-a,d'), [0x01, 0x64]);
  assert.deepEqual(parseDetachKeys('ctrl-['), [0x1b]);
  assert.deepEqual(parseDetachKeys(''), []);
  assert.throws(() => parseDetachKeys('ctrl-p,alt-q'), /'alt-q' is not a key/);
});

test('the sequence detaches; a start of it that goes on otherwise is passed on as typed', () => {
  const matcher = new DetachMatcher(parseDetachKeys('ctrl-p,ctrl-q'));
  assert.deepEqual(feed(matcher, 'ls\r'), { forward: 'ls\r', detach: false });
  // Ctrl-P alone is held until the next key tells: here it is not Ctrl-Q, so both go on.
  assert.deepEqual(feed(matcher, '\x10'), { forward: '', detach: false });
  assert.deepEqual(feed(matcher, 'x'), { forward: '\x10x', detach: false });
  // Ctrl-P twice: the first goes on, the second may still start the sequence.
  assert.deepEqual(feed(matcher, '\x10\x10'), { forward: '\x10', detach: false });
  assert.deepEqual(feed(matcher, '\x11tail'), { forward: '', detach: true });
  // Split across reads, after other input in the same read.
  const split = new DetachMatcher(parseDetachKeys('ctrl-p,ctrl-q'));
  assert.deepEqual(feed(split, 'echo\x10'), { forward: 'echo', detach: false });
  assert.deepEqual(feed(split, '\x11'), { forward: '', detach: true });
  // No keys: nothing is held, nothing detaches.
  const none = new DetachMatcher([]);
  assert.deepEqual(feed(none, '\x10\x11'), { forward: '\x10\x11', detach: false });
});
