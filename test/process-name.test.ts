import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pidOf, processNameProblem } from '../src/core/process-name.ts';

// The process name rule: any UTF-8 text of 1..255 bytes without '/' or control characters, not
// all digits. undefined means the name is fine.
describe('process names', () => {
  const cases: [name: string, problem: string | undefined][] = [
    ['web', undefined],
    ['web 1', undefined],
    ['café', undefined],
    ['a:b', undefined],
    ['名前', undefined],
    ['🚀 launch', undefined],
    ['web-1.prod_a', undefined],
    ['%2F', undefined],
    ['1a', undefined],
    ['-', undefined],
    ['x'.repeat(255), undefined],
    ['é'.repeat(127), undefined], // 254 bytes
    ['', 'must not be empty'],
    ['123', 'must not be all digits (digits address a pid)'],
    ['0', 'must not be all digits (digits address a pid)'],
    ['a/b', "must not contain '/'"],
    ['/', "must not contain '/'"],
    ['x'.repeat(256), 'must be at most 255 bytes of UTF-8'],
    ['é'.repeat(128), 'must be at most 255 bytes of UTF-8'], // 256 bytes in 128 characters
    ['a\0b', 'must not contain control characters'],
    ['a\nb', 'must not contain control characters'],
    ['tab\there', 'must not contain control characters'],
    ['del\u007f', 'must not contain control characters'],
    ['c1\u0085', 'must not contain control characters'],
    ['lone \ud800', 'must be valid Unicode text'],
    ['.', "must not be '.' or '..'"],
    ['..', "must not be '.' or '..'"],
    ['...', undefined],
    ['.hidden', undefined],
  ];
  for (const [name, problem] of cases) {
    test(`${JSON.stringify(name.length > 20 ? `${name.slice(0, 20)}…` : name)} → ${problem ?? 'ok'}`, () => {
      assert.equal(processNameProblem(name), problem);
    });
  }
});

describe('a reference is a pid when it is digits', () => {
  const cases: [ref: number | string, pid: number | undefined][] = [
    [42, 42],
    ['42', 42],
    ['007', 7],
    ['web', undefined],
    ['4 2', undefined],
    ['-1', undefined],
    ['', undefined],
  ];
  for (const [ref, pid] of cases) {
    test(`${JSON.stringify(ref)} → ${pid}`, () => assert.equal(pidOf(ref), pid));
  }
});
