import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { beyondRetention, type Retained, spillTrimPlan } from '../src/core/retention.ts';

// The table's retention rules, over plain records in start order (oldest first): no daemon.
// What is forgotten comes newest first, as the rules walk it.
type Entry = Retained & { name: string };
const done = (name: string, extra: Partial<Entry> = {}): Entry => ({
  name,
  running: false,
  settled: true,
  current: false,
  diskBytes: 0,
  ...extra,
});
const running = (name: string, extra: Partial<Entry> = {}) =>
  done(name, { running: true, settled: false, ...extra });
const names = (entries: Entry[]) => entries.map((entry) => entry.name);
const web = Symbol('web');
const worker = Symbol('worker');

describe('retention: which finished processes are forgotten', () => {
  const cases: [what: string, inStartOrder: Entry[], limits: [number, number], forgotten: string[]][] = [
    ['nothing past the bounds', [done('a'), done('b'), running('c')], [5, 5], []],
    [
      'the oldest finished ones past maxFinished',
      [done('a'), done('b'), done('c'), done('d')],
      [2, 5],
      ['b', 'a'],
    ],
    [
      'running ones are never counted or forgotten',
      [running('a'), done('b'), running('c'), done('d')],
      [1, 5],
      ['b'],
    ],
    [
      'a finished process whose output is still draining is kept',
      [done('a', { settled: false }), done('b'), done('c')],
      [1, 5],
      ['b'],
    ],
    ['maxFinished 0 forgets every finished one', [done('a'), done('b'), running('c')], [0, 5], ['b', 'a']],
    [
      "a managed process's incarnations beyond its history, oldest first",
      [
        done('web1', { family: web }),
        done('web2', { family: web }),
        done('web3', { family: web }),
        running('web4', { family: web, current: true }),
      ],
      [100, 2],
      ['web1'],
    ],
    [
      'each managed process has a history of its own',
      [
        done('web1', { family: web }),
        done('worker1', { family: worker }),
        done('web2', { family: web }),
        done('worker2', { family: worker }),
        running('web3', { family: web, current: true }),
      ],
      [100, 1],
      ['worker1', 'web1'],
    ],
    [
      'the current incarnation counts as a plain process, not as history',
      [done('web1', { family: web }), done('web2', { family: web, current: true }), done('other')],
      [1, 0],
      ['web2', 'web1'],
    ],
    [
      'kept history still counts towards maxFinished',
      [
        done('old'),
        done('web1', { family: web }),
        done('web2', { family: web }),
        running('web3', { family: web, current: true }),
      ],
      [2, 5],
      ['old'],
    ],
  ];
  for (const [what, inStartOrder, [maxFinished, managedHistory], forgotten] of cases) {
    test(what, () => {
      assert.deepEqual(names(beyondRetention(inStartOrder, { maxFinished, managedHistory })), forgotten);
    });
  }
});

describe('spill quota: what goes to bring spill files under their cap', () => {
  const cases: [what: string, inStartOrder: Entry[], excess: number, forget: string[], shedFrom: string[]][] =
    [
      ['nothing when under the cap', [done('a', { diskBytes: 10 })], 0, [], []],
      [
        'finished processes first, oldest first, until enough is freed',
        [done('a', { diskBytes: 10 }), done('b', { diskBytes: 10 }), done('c', { diskBytes: 10 })],
        15,
        ['a', 'b'],
        [],
      ],
      [
        'then running ones, most on disk first',
        [
          done('a', { diskBytes: 5 }),
          running('small', { diskBytes: 10 }),
          running('big', { diskBytes: 50 }),
          running('none'),
        ],
        20,
        ['a'],
        ['big', 'small'],
      ],
      [
        'a finished process still draining is not forgotten, but may shed',
        [done('draining', { settled: false, diskBytes: 30 }), done('b', { diskBytes: 5 })],
        20,
        ['b'],
        ['draining'],
      ],
    ];
  for (const [what, inStartOrder, excess, forget, shedFrom] of cases) {
    test(what, () => {
      const plan = spillTrimPlan(inStartOrder, excess);
      assert.deepEqual([names(plan.forget), names(plan.shedFrom)], [forget, shedFrom]);
    });
  }
});
