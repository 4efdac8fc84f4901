import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadNative } from '../core/native/libc.ts';

/**
 * Memory handed back once a burst of output is over. Output passes through the daemon in
 * Buffers, and those that live a while (kept in a process's log, queued for a slow reader)
 * reach V8's old generation, where only a full collection frees their bytes: a stream of 200
 * MiB left ~195 MiB of dead ones behind, which a heap of a few MiB gave V8 no reason to
 * collect, and malloc kept what it got back below the top of its heap. The idle daemon stayed
 * at ~290 MiB resident, on Node 20 and 24 alike. When the bytes held outside V8's heap have
 * grown well past where they were and the daemon has gone quiet, it collects and has malloc
 * return its free pages to the system (glibc's malloc_trim; musl's malloc does it by itself).
 * A release blocks the event loop for a full collection or two, once per burst.
 */
export interface MemoryReleaseOptions {
  /** How often the bytes held outside the heap are looked at (no I/O: V8's own count). */
  checkEveryMs: number;
  /** Growth past the level left by the last release that is worth a release. */
  minimumBytes: number;
}

/** What the policy sees and does; the daemon's are below, a test gives its own. */
export interface MemoryProbes {
  externalBytes(): number;
  /** CPU time the daemon has used so far, µs (user and system, all threads). */
  cpuMicros(): number;
  /** A full collection, and a malloc trim where there is one. */
  release(): void;
}

/**
 * A check counts as quiet when the daemon used less CPU than this share of its period. Quiet is
 * told by CPU, not by the bytes alone: mid-stream they also stop growing at times, when V8
 * collects, and a release then cost the stream its pace (malloc had to fault the pages it gave
 * back in again).
 */
export const QUIET_CPU_SHARE = 0.05;
/** Quiet checks in a row before a burst counts as over. */
export const QUIET_CHECKS = 2;

/**
 * The decision, one check at a time: release once the bytes outside the heap are well above
 * the floor (what the last release left, or less if V8 collected since) and the daemon has
 * been quiet for QUIET_CHECKS checks in a row.
 */
export class ReleasePolicy {
  private floor: number;
  private quiet = 0;

  constructor(
    start: number,
    private readonly minimumBytes: number,
  ) {
    this.floor = start;
  }

  /** Whether to release now, given the bytes outside the heap and the CPU share of the period. */
  observe(bytes: number, cpuShare: number): boolean {
    this.quiet = cpuShare < QUIET_CPU_SHARE ? this.quiet + 1 : 0;
    this.floor = Math.min(this.floor, bytes);
    return this.quiet >= QUIET_CHECKS && bytes >= this.floor + this.minimumBytes;
  }

  /** After a release: what is left is the new floor. */
  released(bytes: number): void {
    this.floor = bytes;
    this.quiet = 0;
  }
}

export function startMemoryRelease(
  options: MemoryReleaseOptions,
  probes: MemoryProbes = daemonProbes(),
): { stop(): void } {
  const policy = new ReleasePolicy(probes.externalBytes(), options.minimumBytes);
  let cpuBefore = probes.cpuMicros();
  const timer = setInterval(() => {
    const cpu = probes.cpuMicros();
    const share = (cpu - cpuBefore) / 1000 / options.checkEveryMs;
    cpuBefore = cpu;
    if (!policy.observe(probes.externalBytes(), share)) return;
    probes.release();
    policy.released(probes.externalBytes());
    // The release's own CPU is not the daemon's work.
    cpuBefore = probes.cpuMicros();
  }, options.checkEveryMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

let collect: (() => void) | undefined;
let trim: ((pad: number) => number) | undefined | null;

/** The daemon's own: V8's count of bytes outside its heap, and a real collection and trim. */
export function daemonProbes(): MemoryProbes {
  return {
    externalBytes: () => getHeapStatistics().external_memory,
    cpuMicros: () => {
      const { user, system } = process.cpuUsage();
      return user + system;
    },
    release() {
      // Node offers no call for a collection but the one --expose-gc gives a new context.
      if (!collect) {
        setFlagsFromString('--expose-gc');
        collect = runInNewContext('gc') as () => void;
      }
      // Twice: V8 frees a dead Buffer's bytes in the sweep after a collection, and the next
      // collection waits for that sweep to finish.
      collect();
      collect();
      if (trim === undefined) {
        trim = loadNative((self) => self.func('int malloc_trim(size_t pad)')).value ?? null;
      }
      trim?.(0);
    },
  };
}
