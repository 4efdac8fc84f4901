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

/**
 * The listening TCP ports of the sandbox's network, read from /proc: the LISTEN sockets of
 * /proc/net/tcp and tcp6, and which process holds each (the socket's inode among the links in
 * /proc/<pid>/fd). Every read is asynchronous; concurrent callers share the scan in flight.
 */
export class ListeningPorts {
  private inFlight: Promise<ListeningPort[]> | undefined;
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
    const described = new Map<number, Promise<{ command: string; owner: number | undefined }>>();
    const describe = (pid: number) => {
      let description = described.get(pid);
      if (!description) {
        description = Promise.all([this.commandOf(pid), this.options.ownerOf(pid)]).then(
          ([command, owner]) => ({ command, owner }),
        );
        described.set(pid, description);
      }
      return description;
    };
    const ports = await Promise.all(
      sockets.map(async ({ address, port, inode }): Promise<ListeningPort> => {
        const pid = holders.get(inode);
        const about = pid === undefined ? undefined : await describe(pid);
        return {
          port,
          address,
          pid: pid ?? null,
          processPid: about?.owner,
          command: about?.command ?? null,
          public: this.options.publicPorts.has(port),
        };
      }),
    );
    return ports.sort(
      (a, b) =>
        a.port - b.port ||
        Number(a.address.includes(':')) - Number(b.address.includes(':')) ||
        a.address.localeCompare(b.address),
    );
  }

  /**
   * Socket inode → the lowest pid holding it (a socket shared by a server's forked workers is
   * named by the parent that opened it). Processes are looked at in pid order and the walk
   * stops once every socket has a holder.
   */
  private async holders(inodes: ReadonlySet<string>): Promise<Map<string, number>> {
    const names = await readdir(this.procRoot).catch(() => [] as string[]);
    const pids = names
      .filter((name) => /^\d+$/.test(name))
      .map(Number)
      .sort((a, b) => a - b);
    const holders = new Map<string, number>();
    await eachLimited(
      pids,
      this.concurrency,
      async (pid) => {
        // Another user's process, without privilege, or one gone meanwhile: not to be seen.
        const fds = await readdir(`${this.procRoot}/${pid}/fd`).catch(() => [] as string[]);
        for (const fd of fds) {
          const link = await readlink(`${this.procRoot}/${pid}/fd/${fd}`).catch(() => '');
          const inode = SOCKET_LINK.exec(link)?.[1];
          if (inode === undefined || !inodes.has(inode)) continue;
          const known = holders.get(inode);
          if (known === undefined || pid < known) holders.set(inode, pid);
        }
      },
      () => holders.size === inodes.size,
    );
    return holders;
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
