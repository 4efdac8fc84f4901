import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../src/polyfills.ts';

// The shim must say what the standard method says (TC39 base64: RFC 4648 alphabets, padding
// unless omitted), for every length modulo 3.
const cases: [number[], string, string, string, string][] = [
  // bytes, base64, base64 without padding, base64url, base64url without padding
  [[], '', '', '', ''],
  [[0xfb], '+w==', '+w', '-w==', '-w'],
  [[0xfb, 0xff], '+/8=', '+/8', '-_8=', '-_8'],
  [[0xfb, 0xff, 0xbf], '+/+/', '+/+/', '-_-_', '-_-_'],
  [[104, 101, 108, 108, 111], 'aGVsbG8=', 'aGVsbG8', 'aGVsbG8=', 'aGVsbG8'],
];
for (const [bytes, std, stdRaw, url, urlRaw] of cases) {
  test(`toBase64 of [${bytes.join(', ')}]`, () => {
    const array = new Uint8Array(bytes);
    const toBase64 = array.toBase64?.bind(array) as NonNullable<Uint8Array['toBase64']>;
    assert.equal(toBase64(), std);
    assert.equal(toBase64({ omitPadding: true }), stdRaw);
    assert.equal(toBase64({ alphabet: 'base64url' }), url);
    assert.equal(toBase64({ alphabet: 'base64url', omitPadding: true }), urlRaw);
  });
}

test('a view into a larger buffer encodes only its own bytes', () => {
  const backing = new Uint8Array([1, 2, 3, 104, 105, 4]);
  assert.equal(backing.subarray(3, 5).toBase64?.(), 'aGk=');
});
