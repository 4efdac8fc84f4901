import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { type ProcStat, parseProcStat } from '../src/core/proc-stat.ts';
import { owningProcess } from '../src/core/process-owner.ts';
import { eachLimited } from '../src/ports/each-limited.ts';
import { ListeningPorts } from '../src/ports/listening.ts';
import { addressBytes, formatAddress, parseListeningSockets } from '../src/ports/proc-net-tcp.ts';
import { waitForPort } from '../src/ports/wait.ts';

const HEADER4 =
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
const HEADER6 =
  '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';

/** A /proc/net/tcp line as the kernel writes it. */
const line4 = (sl: number, local: string, remote: string, state: string, inode: number) =>
  `   ${sl}: ${local} ${remote} ${state} 00000000:00000000 00:00000000 00000000     0        0 ${inode} 1 0000000063884d4c 100 0 0 10 0\n`;

describe('/proc/net/tcp addresses', () => {
  const cases: [hex: string, littleEndian: boolean, address: string][] = [
    ['0100007F', true, '127.0.0.1'],
    ['00000000', true, '0.0.0.0'],
    ['0F02000A', true, '10.0.2.15'],
    ['FFFFFFFF', true, '255.255.255.255'],
    ['7F000001', false, '127.0.0.1'],
    ['00000000000000000000000000000000', true, '::'],
    ['00000000000000000000000001000000', true, '::1'],
    ['00000000000000000000000000000001', false, '::1'],
    ['0000000000000000FFFF00000100007F', true, '::ffff:127.0.0.1'],
    ['000080FE00000000FF0000024D5B03FE', true, 'fe80::200:ff:fe03:5b4d'],
    ['B80D0120000000000000000001000000', true, '2001:db8::1'],
    ['B80D0120000000000100000000000000', true, '2001:db8::1:0:0'],
    ['00000000010000000000000000000000', true, '0:0:0:1::'],
    ['B80D0120000000000000010000000000', true, '2001:db8:0:0:1::'],
    ['B80D0120010000000100000001000000', true, '2001:db8:0:1:0:1:0:1'],
    ['B80D0120020001000000000000000000', true, '2001:db8:1:2::'],
  ];
  for (const [hex, littleEndian, address] of cases) {
    test(`${hex} (${littleEndian ? 'little' : 'big'}-endian) is ${address}`, () => {
      const bytes = addressBytes(hex, littleEndian);
      assert.ok(bytes);
      assert.equal(formatAddress(bytes), address);
    });
  }

  test('a run of one zero group is not shortened; of two equal runs the first is', () => {
    const v6 = (...groups: number[]) => {
      const bytes = new Uint8Array(16);
      groups.forEach((group, i) => {
        bytes[i * 2] = group >> 8;
        bytes[i * 2 + 1] = group & 0xff;
      });
      return formatAddress(bytes);
    };
    assert.equal(v6(0x2001, 0xdb8, 0, 1, 1, 1, 1, 1), '2001:db8:0:1:1:1:1:1');
    assert.equal(v6(0x2001, 0, 0, 1, 0, 0, 1, 1), '2001::1:0:0:1:1');
    assert.equal(v6(1, 0, 0, 0, 0, 0, 0, 0), '1::');
  });

  test('what is not an address is refused', () => {
    for (const hex of ['', '0100007', '0100007F0', 'G100007F', '0'.repeat(31), '0'.repeat(33)]) {
      assert.equal(addressBytes(hex, true), undefined, hex);
    }
  });
});

describe('/proc/net/tcp tables', () => {
  test('only LISTEN sockets (state 0A) are taken, with their inode', () => {
    const table =
      HEADER4 +
      line4(0, '0100007F:0BB8', '00000000:0000', '0A', 101) + // 127.0.0.1:3000, LISTEN
      line4(1, '00000000:1F90', '00000000:0000', '0A', 102) + // 0.0.0.0:8080, LISTEN
      line4(2, '0100007F:0BB8', '0100007F:D431', '01', 103) + // ESTABLISHED
      line4(3, '0100007F:D431', '0100007F:0BB8', '06', 0) + // TIME_WAIT (no inode)
      line4(4, '0100007F:0016', '00000000:0000', '07', 104) + // CLOSE
      line4(5, '0F02000A:FFFF', '00000000:0000', '0A', 105); // 10.0.2.15:65535
    assert.deepEqual(parseListeningSockets(table, true), [
      { address: '127.0.0.1', port: 3000, inode: '101' },
      { address: '0.0.0.0', port: 8080, inode: '102' },
      { address: '10.0.2.15', port: 65535, inode: '105' },
    ]);
  });

  test('tcp6 lines give IPv6 addresses', () => {
    const table =
      HEADER6 +
      line4(0, '00000000000000000000000000000000:0050', '00000000000000000000000000000000:0000', '0A', 201) +
      line4(1, '00000000000000000000000001000000:0BB9', '00000000000000000000000000000000:0000', '0A', 202) +
      line4(2, '0000000000000000FFFF00000100007F:1389', '00000000000000000000000000000000:0000', '0A', 203);
    assert.deepEqual(parseListeningSockets(table, true), [
      { address: '::', port: 80, inode: '201' },
      { address: '::1', port: 3001, inode: '202' },
      { address: '::ffff:127.0.0.1', port: 5001, inode: '203' },
    ]);
  });

  test('an empty table, a header alone, and lines cut short give nothing', () => {
    for (const table of [
      '',
      HEADER4,
      HEADER6,
      '   0: 0100007F:0BB8 00000000:0000 0A\n',
      '   0: 0100007F 00000000:0000 0A 0 0 0 0 0 7\n',
    ]) {
      assert.deepEqual(parseListeningSockets(table, true), [], JSON.stringify(table));
    }
  });
});

describe('/proc/<pid>/stat', () => {
  test('a command name with spaces and parentheses', () => {
    assert.deepEqual(parseProcStat('4242 (my (odd) name) S 4200 4242 4100 0 -1 4194304 99 0'), {
      pid: 4242,
      comm: 'my (odd) name',
      state: 'S',
      ppid: 4200,
      pgrp: 4242,
      session: 4100,
    });
  });

  test('what is not a stat line is refused', () => {
    for (const text of ['', 'garbage', '12 (x)', 'x (y) S 1 2 3'])
      assert.equal(parseProcStat(text), undefined, text);
  });
});

describe('which of the daemon’s processes an OS process belongs to', () => {
  // pid → [ppid, session]; 100 is a table process that runs, 200 one that has ended.
  const tree: Record<number, [number, number]> = {
    100: [1, 100],
    101: [100, 100], // its child
    102: [101, 100], // its grandchild
    103: [101, 103], // a grandchild that made a session of its own
    104: [103, 103], // below that one
    201: [1, 200], // an orphan of the ended 200, reparented, still in its session
    202: [1, 202], // an orphan of 200 with a session of its own: lost
    300: [1, 300], // nothing of the daemon's
    400: [1, 200], // a session leader that reuses a pid the table knows (ended): not taken by pid
  };
  const table = {
    find: (pid: number) =>
      pid === 100 ? { running: true } : pid === 200 || pid === 400 ? { running: false } : undefined,
  };
  const readStat = async (pid: number): Promise<ProcStat | undefined> => {
    const entry = tree[pid];
    if (!entry) return undefined;
    return { pid, comm: 'x', state: 'S', ppid: entry[0], pgrp: pid, session: entry[1] };
  };
  const cases: [pid: number, owner: number | undefined][] = [
    [100, 100],
    [101, 100],
    [102, 100],
    [103, 100],
    [104, 100],
    [201, 200],
    [202, undefined],
    [300, undefined],
    [999, undefined],
    [1, undefined],
    [process.pid, undefined],
  ];
  for (const [pid, owner] of cases) {
    test(`${pid === process.pid ? 'the daemon itself' : pid} → ${owner ?? 'none'}`, async () => {
      assert.equal(await owningProcess(table, pid, readStat), owner);
    });
  }
  test('a pid the table knows as ended, in a session of its own making, is not taken', async () => {
    const reused = { find: (pid: number) => (pid === 500 ? { running: false } : undefined) };
    const stat = async (pid: number): Promise<ProcStat | undefined> =>
      pid === 500 ? { pid, comm: 'x', state: 'S', ppid: 1, pgrp: 500, session: 500 } : undefined;
    assert.equal(await owningProcess(reused, 500, stat), undefined);
  });
});

describe('eachLimited', () => {
  test('runs every item, never more than the limit at once, and stops taking items when done', async () => {
    let running = 0;
    let most = 0;
    const seen: number[] = [];
    await eachLimited([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 3, async (item) => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setImmediate(resolve));
      seen.push(item);
      running--;
    });
    assert.equal(most, 3);
    assert.deepEqual(
      seen.sort((a, b) => a - b),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    const taken: number[] = [];
    await eachLimited(
      [1, 2, 3, 4, 5],
      1,
      async (item) => void taken.push(item),
      () => taken.length === 2,
    );
    assert.deepEqual(taken, [1, 2]);
  });
});

/** A /proc of a test's own making: net tables, and processes with their descriptors. */
async function fakeProc(
  tcp: string,
  tcp6: string,
  processes: Record<number, { cmdline: string; comm: string; sockets: number[] }>,
): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'fake-proc-'));
  await mkdir(join(root, 'net'));
  await writeFile(join(root, 'net', 'tcp'), tcp);
  await writeFile(join(root, 'net', 'tcp6'), tcp6);
  await mkdir(join(root, 'self'));
  for (const [pid, { cmdline, comm, sockets }] of Object.entries(processes)) {
    await mkdir(join(root, pid, 'fd'), { recursive: true });
    await writeFile(join(root, pid, 'cmdline'), cmdline);
    await writeFile(join(root, pid, 'stat'), `${pid} (${comm}) S 1 ${pid} ${pid} 0 -1`);
    await symlink('/dev/null', join(root, pid, 'fd', '0'));
    await symlink('pipe:[77]', join(root, pid, 'fd', '1'));
    for (const [i, inode] of sockets.entries())
      await symlink(`socket:[${inode}]`, join(root, pid, 'fd', String(i + 3)));
  }
  return root;
}

describe('the scan', () => {
  test('each socket with the lowest pid that holds it, its command, its owner, and whether it is public', async () => {
    const v4 =
      HEADER4 +
      line4(0, '0100007F:0BB8', '00000000:0000', '0A', 501) + // 127.0.0.1:3000
      line4(1, '00000000:1F90', '00000000:0000', '0A', 502) + // 0.0.0.0:8080, SO_REUSEPORT …
      line4(2, '00000000:1F90', '00000000:0000', '0A', 503) + // … twice
      line4(3, '00000000:0016', '00000000:0000', '0A', 504) + // 0.0.0.0:22, held by no one seen
      line4(4, '0100007F:0BB8', '0100007F:D431', '01', 505);
    const v6 =
      HEADER6 +
      line4(0, '00000000000000000000000000000000:1F90', '00000000000000000000000000000000:0000', '0A', 506);
    const root = await fakeProc(v4, v6, {
      10: { cmdline: 'node\0server.js\0--port\x003000\0', comm: 'node', sockets: [501] },
      11: { cmdline: 'node\0server.js\0--port\x003000\0', comm: 'node', sockets: [501] }, // a forked worker
      20: { cmdline: '', comm: 'gunicorn: worker', sockets: [503, 506] },
      21: { cmdline: 'python3\0app.py\0', comm: 'python3', sockets: [502] },
      30: { cmdline: 'sleep\x00100\0', comm: 'sleep', sockets: [] },
    });
    try {
      const asked: number[] = [];
      const ports = new ListeningPorts({
        procRoot: root,
        publicPorts: new Set([8080]),
        ownerOf: async (pid) => {
          asked.push(pid);
          return pid === 10 ? 9 : undefined;
        },
      });
      assert.deepEqual(await ports.list(), [
        { port: 22, address: '0.0.0.0', pid: null, processPid: undefined, command: null, public: false },
        {
          port: 3000,
          address: '127.0.0.1',
          pid: 10,
          processPid: 9,
          command: 'node server.js --port 3000',
          public: false,
        },
        {
          port: 8080,
          address: '0.0.0.0',
          pid: 20,
          processPid: undefined,
          command: 'gunicorn: worker',
          public: true,
        },
        {
          port: 8080,
          address: '::',
          pid: 20,
          processPid: undefined,
          command: 'gunicorn: worker',
          public: true,
        },
      ]);
      assert.deepEqual(asked.sort(), [10, 20], 'each holder is described once');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  test('callers at the same time share one scan', async () => {
    const root = await fakeProc(HEADER4 + line4(0, '0100007F:0BB8', '00000000:0000', '0A', 601), HEADER6, {
      10: { cmdline: 'srv\0', comm: 'srv', sockets: [601] },
    });
    try {
      let scans = 0;
      const ports = new ListeningPorts({
        procRoot: root,
        publicPorts: new Set(),
        ownerOf: async () => {
          scans++;
          return undefined;
        },
      });
      const [a, b, c] = await Promise.all([ports.list(), ports.list(), ports.list()]);
      assert.equal(scans, 1);
      assert.equal(a, b);
      assert.equal(b, c);
      await ports.list();
      assert.equal(scans, 2, 'a call after the scan ended starts a new one');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  test('a later scan follows a socket to a new holder, and finds a new socket beside one no one is seen to hold', async () => {
    // Ports 3000, 3001, … on 127.0.0.1, one per inode.
    const hexPort = (i: number) => (3000 + i).toString(16).toUpperCase().padStart(4, '0');
    const v4 = (inodes: number[]) =>
      HEADER4 +
      inodes.map((inode, i) => line4(i, `0100007F:${hexPort(i)}`, '00000000:0000', '0A', inode)).join('');
    const root = await fakeProc(v4([701, 702]), HEADER6, {
      10: { cmdline: 'first\0', comm: 'first', sockets: [701] },
    });
    try {
      const ports = new ListeningPorts({
        procRoot: root,
        publicPorts: new Set(),
        ownerOf: async () => undefined,
      });
      const holderOf = async (port: number) => (await ports.list()).find((p) => p.port === port)?.pid;
      assert.equal(await holderOf(3000), 10);
      assert.equal(await holderOf(3001), null, 'no process holds 702');
      // The first holder ends; its child (a higher pid) holds the socket on.
      await rm(join(root, '10'), { recursive: true });
      await mkdir(join(root, '11', 'fd'), { recursive: true });
      await writeFile(join(root, '11', 'cmdline'), 'second\0');
      await symlink('socket:[701]', join(root, '11', 'fd', '5'));
      assert.equal(await holderOf(3000), 11);
      // A new socket is found although 702 still has no holder to be seen.
      await writeFile(join(root, 'net', 'tcp'), v4([701, 702, 703]));
      await mkdir(join(root, '12', 'fd'), { recursive: true });
      await writeFile(join(root, '12', 'cmdline'), 'third\0');
      await symlink('socket:[703]', join(root, '12', 'fd', '3'));
      const listed = await ports.list();
      assert.deepEqual(
        listed.map((p) => [p.port, p.pid, p.command]),
        [
          [3000, 11, 'second'],
          [3001, null, null],
          [3002, 12, 'third'],
        ],
      );
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  test('the real /proc: a listener of this process on 127.0.0.1 and on ::1', async () => {
    const listen = async (host: string) => {
      const server = createServer();
      server.listen(0, host);
      await once(server, 'listening');
      return server;
    };
    const servers: [Server, string][] = [
      [await listen('127.0.0.1'), '127.0.0.1'],
      [await listen('::1'), '::1'],
    ];
    try {
      const ports = new ListeningPorts({ publicPorts: new Set(), ownerOf: async () => undefined });
      const found = await ports.list();
      for (const [server, address] of servers) {
        const { port } = server.address() as { port: number };
        const entry = found.find((p) => p.port === port && p.address === address);
        assert.ok(entry, `${address}:${port} in ${JSON.stringify(found)}`);
        assert.equal(entry.pid, process.pid);
        assert.match(entry.command ?? '', /node/);
      }
    } finally {
      for (const [server] of servers) server.close();
    }
  });
});

describe('waitForPort', () => {
  /** Timers and sockets this process holds, by kind. */
  const resources = () => {
    const counts: Record<string, number> = {};
    for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
    return counts;
  };
  const freePort = async () => {
    const server = createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    server.close();
    await once(server, 'close');
    return port;
  };

  test('a timeout of 0 tries once; a listening port answers at once', async () => {
    const port = await freePort();
    assert.equal(await waitForPort(port, { timeoutMs: 0 }), undefined);
    const server = createServer().listen(port, '127.0.0.1');
    await once(server, 'listening');
    try {
      const ready = await waitForPort(port, { timeoutMs: 0 });
      assert.equal(ready?.address, '127.0.0.1');
    } finally {
      server.close();
    }
  });

  test('an abort ends the wait with its reason and leaves no timer or socket behind', async () => {
    const port = await freePort();
    await new Promise((resolve) => setTimeout(resolve, 20)); // Closes of earlier tests, done.
    const before = resources();
    const controller = new AbortController();
    const waiting = waitForPort(port, { timeoutMs: 60_000, signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 120)); // A few rounds of attempts.
    const reason = new Error('client gone');
    controller.abort(reason);
    await assert.rejects(waiting, (error) => error === reason);
    await new Promise((resolve) => setImmediate(resolve));
    const left = resources();
    for (const kind of ['Timeout', 'TCPSocketWrap', 'TCPWrap', 'ConnectWrap']) {
      assert.ok((left[kind] ?? 0) <= (before[kind] ?? 0), `${kind}: ${JSON.stringify({ before, left })}`);
    }
  });
});
