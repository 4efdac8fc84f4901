import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PlainHeaders } from '../src/http/plain-headers.ts';

// The bundle gives Connect-RPC PlainHeaders where it says `Headers` (scripts/build.ts): whatever
// Connect does with one must come out as with Node's own.

type AnyHeaders = Headers | PlainHeaders;
type Init = ConstructorParameters<typeof PlainHeaders>[0];

const seen = (headers: AnyHeaders) => ({
  entries: [...headers],
  keys: [...headers.keys()],
  values: [...headers.values()],
  cookies: headers.getSetCookie(),
  each: (() => {
    const pairs: string[][] = [];
    headers.forEach((value, key) => {
      pairs.push([key, value]);
    });
    return pairs;
  })(),
});

function same(init: Init, change: (headers: AnyHeaders) => unknown = () => {}) {
  const theirs = new Headers(init as HeadersInit);
  const ours = new PlainHeaders(init);
  assert.deepEqual(change(ours), change(theirs));
  assert.deepEqual(seen(ours), seen(theirs));
}

describe('PlainHeaders, against Node’s Headers', () => {
  test('made from nothing, a record, pairs, or another Headers', () => {
    same(undefined);
    same({ 'Content-Type': 'application/connect+json', 'connect-timeout-ms': '5000' });
    same([
      ['X-A', '1'],
      ['x-a', '2'],
      ['Set-Cookie', 'a=1'],
      ['set-cookie', 'b=2'],
    ]);
    same(new Headers([['te', 'trailers']]) as Init);
    same(new PlainHeaders({ b: '2', a: '1' }));
  });

  test('get, has, set, append and delete; names in any case, values trimmed', () => {
    same({}, (h) => {
      h.append('Grpc-Status', ' 0 ');
      h.append('grpc-status', '1');
      h.set('Content-Type', '\tapplication/grpc-web+proto');
      h.append('Set-Cookie', 'x=1');
      h.append('Set-Cookie', 'y=2');
      h.delete('nothing-here');
      return [
        h.get('GRPC-STATUS'),
        h.get('content-type'),
        h.get('set-cookie'),
        h.has('Set-Cookie'),
        h.get('absent'),
      ];
    });
    same({ a: '1', b: '2' }, (h) => {
      h.delete('A');
      return [h.has('a'), h.get('b')];
    });
  });

  test('invalid names and values are refused as Node refuses them', () => {
    for (const [name, value] of [
      ['bad name', 'v'],
      ['', 'v'],
      ['ok', 'line\r\nbreak'],
      ['ok', 'nul\0'],
    ] as const) {
      assert.throws(() => new Headers([[name, value]]), TypeError);
      assert.throws(() => new PlainHeaders([[name, value]]), TypeError);
    }
  });
});
