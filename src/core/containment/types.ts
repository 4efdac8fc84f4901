import type { Limits } from '../start-request.ts';

/** How the daemon keeps track of every descendant of the processes it starts. */
export type ContainmentMode = 'cgroup2' | 'cgroup1' | 'proc';

/** What the daemon is asked to use: a mode, or the best one this machine allows. */
export type ContainmentChoice = ContainmentMode | 'auto';

export const CONTAINMENT_CHOICES: readonly ContainmentChoice[] = ['auto', 'cgroup2', 'cgroup1', 'proc'];

/**
 * Where one process and all its descendants live: a cgroup, or (walking /proc) its tree.
 * A cell is made before the spawn, entered by it, and goes once its last member has.
 */
export interface Cell {
  /**
   * Runs a synchronous spawn so that the child starts inside the cell: whatever it forks,
   * however early, is inside too.
   */
  enter<T>(spawn: () => T): T;
  /** The leader's pid, once it runs. */
  adopt(pid: number): void;
  /** Nothing more will enter (the leader was reaped, or never started): remove the cell once empty. */
  release(): void;
  /** SIGKILL to every member, also after the leader has gone; resolves once sent. Never throws. */
  kill(): Promise<void>;
  /** What the cell's cgroups count now, each figure only where one can; undefined when none can. */
  usage(): Promise<Usage | undefined>;
  /**
   * How many members the kernel's OOM killer has ended; undefined when no cgroup of the cell
   * counts it. Read it before release: the count goes with the cgroup.
   */
  oomKills(): Promise<number | undefined>;
}

/** What one process and its descendants use together, as their cgroups count it. */
export interface Usage {
  memoryBytes?: number;
  /** The most the memory has been (since the cgroup was made). */
  memoryPeakBytes?: number;
  /** CPU time used, user and system together. */
  cpuUsec?: number;
  /** Processes and threads now. */
  pids?: number;
}

export interface Containment {
  readonly mode: ContainmentMode;
  /** Which mode, and where: for the start-up line. */
  readonly description: string;
  /**
   * A new cell for the next process, enforcing the limits if any are given; refused
   * (invalid_argument, naming what is missing) when one of them cannot be enforced here.
   */
  cell(limits?: Limits): Promise<Cell>;
  /** A signal to every descendant of every process the daemon started. */
  signalAll(signal: number): Promise<void>;
  /** SIGKILL to every descendant; no cell can be entered afterwards. */
  killAll(): Promise<void>;
  /** Waits (a while) for the last members to go, then removes what the daemon created. */
  close(): Promise<void>;
}
