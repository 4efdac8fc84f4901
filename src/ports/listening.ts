import { readdir, readFile, readlink } from 'node:fs/promises';
import { readProcStat } from '../core/proc-stat.ts';
import { eachLimited } from './each-limited.ts';
import { type ListeningSocket, parseListeningSockets } from './proc-net-tcp.ts';

/** A port some process listens on, and who holds it. */
export interface ListeningPort {
  port: number;
  address: string;
  /** The OS process holding the socket; null when no process this daemon can see holds it. */
  pid: number | null;
  /** The daemon's process that the holder descends from (or is), when there is one. */
  processPid: number | undefined;
  /** The holder's command line (its command name when it has none); null with `pid`. */
  command: string | null;
  /** Opened to anyone, without the daemon's credentials. */
  public: boolean;
}

export interface ListeningOptions {
  /** The rule that maps an OS process to the daemon's process it belongs to. */
  ownerOf(pid: number): Promise<number | undefined>;
  /** Ports opened to anyone. */
  publicPorts: ReadonlySet<number>;
  /** Where /proc is (tests point this at a tree of their own). */
  procRoot?: string;
  /** At most this many file system calls at once. */
  concurrency?: number;
}

// Few enough not to crowd libuv's four threads; enough to hide each call's latency.
const DEFAULT_CONCURRENCY = 8;
const SOCKET_LINK = /^socket:\[(\d+)\]$/;
const UNSEEN_RECHECK_MS = 10_000;

/** One descriptor of one process: /proc/<pid>/fd/<fd>. */
interface Descriptor {
  pid: number;
  fd: string;
}

/**
 * The listening TCP ports of the sandbox's network, read from /proc: the LISTEN sockets of
 * /proc/net/tcp and tcp6, and which process holds each (the socket's inode among the links in
 * /proc/<pid>/fd). Every read is asynchronous; concurrent callers share the scan in flight.
 */
export class ListeningPorts {
  private inFlight: Promise<ListeningPort[]> | undefined;
  /** Where each socket's holder was found by the last scan. */
  private lastSeen = new Map<string, Descriptor>();
  /** Sockets the last walk for them found no holder of. */
  private unseen = new Set<string>();
  private unseenCheckedAt = Number.NEGATIVE_INFINITY;
  private readonly procRoot: string;
  private readonly concurrency: number;

  constructor(private readonly options: ListeningOptions) {
    this.procRoot = options.procRoot ?? '/proc';
    this.concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  }

  /** The ports, by port number, IPv4 before IPv6; one per address and port. */
  list(): Promise<ListeningPort[]> {
    if (!this.inFlight) {
      this.inFlight = this.scan().finally(() => {
        this.inFlight = undefined;
      });
    }
    return this.inFlight;
  }

  private async scan(): Promise<ListeningPort[]> {
    const tables = await Promise.all(
      ['tcp', 'tcp6'].map((name) => readFile(`${this.procRoot}/net/${name}`, 'utf8').catch(() => '')),
    );
    const all = tables.flatMap((table) => parseListeningSockets(table));
    if (all.length === 0) return [];
    const holders = await this.holders(new Set(all.map((socket) => socket.inode)));
    const sockets = oneSocketPerAddress(all, holders);
    // Each holder once, a few at a time: its command line and the walk up to its owner.
    const described = new Map<number, { command: string; owner: number | undefined }>();
    const holderPids = [...new Set(sockets.flatMap(({ inode }) => holders.get(inode) ?? []))];
    await eachLimited(holderPids, this.concurrency, async (pid) => {
      const command = await this.commandOf(pid);
      described.set(pid, { command, owner: await this.options.ownerOf(pid) });
    });
    const ports = sockets.map(({ address, port, inode }): ListeningPort => {
      const pid = holders.get(inode);
      const about = pid === undefined ? undefined : described.get(pid);
      return {
        port,
        address,
        pid: pid ?? null,
        processPid: about?.owner,
        command: about?.command ?? null,
        public: this.options.publicPorts.has(port),
      };
    });
    return ports.sort(
      (a, b) =>
        a.port - b.port ||
        Number(a.address.includes(':')) - Number(b.address.includes(':')) ||
        a.address.localeCompare(b.address),
    );
  }

  /**
   * Socket inode → the lowest pid holding it (a socket shared by a server's forked workers is
   * named by the parent that opened it). A socket found before is looked for where it was (one
   * link to read); the others by a walk of every process's descriptors, in pid order, which
   * stops once each has a holder. A socket no walk finds a holder for (its holder is in another
   * PID namespace, say) would make every walk a whole one: it is looked for again only every
   * UNSEEN_RECHECK_MS.
   */
  private async holders(inodes: ReadonlySet<string>): Promise<Map<string, number>> {
    const found = new Map<string, Descriptor>();
    await eachLimited([...inodes], this.concurrency, async (inode) => {
      const last = this.lastSeen.get(inode);
      if (last && (await this.socketAt(last)) === inode) found.set(inode, last);
    });
    const recheckUnseen = performance.now() - this.unseenCheckedAt >= UNSEEN_RECHECK_MS;
    const missing = [...inodes].filter((inode) => !found.has(inode));
    const wanted = new Set(recheckUnseen ? missing : missing.filter((inode) => !this.unseen.has(inode)));
    const stillUnseen = recheckUnseen ? [] : missing.filter((inode) => this.unseen.has(inode));
    if (wanted.size > 0) {
      for (const [inode, descriptor] of await this.walk(wanted)) found.set(inode, descriptor);
    }
    if (recheckUnseen) this.unseenCheckedAt = performance.now();
    this.unseen = new Set([...stillUnseen, ...[...wanted].filter((inode) => !found.has(inode))]);
    this.lastSeen = found;
    return new Map([...found].map(([inode, { pid }]) => [inode, pid]));
  }

  /** Every process's descriptors, in pid order, until each wanted socket has its holder. */
  private async walk(wanted: ReadonlySet<string>): Promise<Map<string, Descriptor>> {
    const names = await readdir(this.procRoot).catch(() => [] as string[]);
    const pids = names
      .filter((name) => /^\d+$/.test(name))
      .map(Number)
      .sort((a, b) => a - b);
    const found = new Map<string, Descriptor>();
    await eachLimited(
      pids,
      this.concurrency,
      async (pid) => {
        // Another user's process, without privilege, or one gone meanwhile: not to be seen.
        const fds = await readdir(`${this.procRoot}/${pid}/fd`).catch(() => [] as string[]);
        for (const fd of fds) {
          const inode = await this.socketAt({ pid, fd });
          if (inode === undefined || !wanted.has(inode)) continue;
          const known = found.get(inode);
          if (known === undefined || pid < known.pid) found.set(inode, { pid, fd });
        }
      },
      () => found.size === wanted.size,
    );
    return found;
  }

  /** The inode of the socket a descriptor is, if it is one. */
  private async socketAt({ pid, fd }: Descriptor): Promise<string | undefined> {
    const link = await readlink(`${this.procRoot}/${pid}/fd/${fd}`).catch(() => '');
    return SOCKET_LINK.exec(link)?.[1];
  }

  /** The command line as `ps` shows it: its words joined by spaces; the command name without one. */
  private async commandOf(pid: number): Promise<string> {
    const cmdline = await readFile(`${this.procRoot}/${pid}/cmdline`, 'utf8').catch(() => '');
    const words = cmdline.split('\0');
    if (words.at(-1) === '') words.pop();
    if (words.length > 0) return words.join(' ');
    return (await readProcStat(pid, this.procRoot))?.comm ?? '';
  }
}

/**
 * One socket per address and port (SO_REUSEPORT lets several processes listen on the same):
 * the one with the lowest holder, a socket with a holder before one without.
 */
function oneSocketPerAddress(
  sockets: ListeningSocket[],
  holders: ReadonlyMap<string, number>,
): ListeningSocket[] {
  const chosen = new Map<string, ListeningSocket>();
  const rank = (socket: ListeningSocket) => holders.get(socket.inode) ?? Number.POSITIVE_INFINITY;
  for (const socket of sockets) {
    const key = `${socket.address} ${socket.port}`;
    const known = chosen.get(key);
    if (known === undefined || rank(socket) < rank(known)) chosen.set(key, socket);
  }
  return [...chosen.values()];
}
