import { setFlagsFromString } from 'node:v8';

/**
 * V8 set up for a long-lived daemon that idles most of its life, before its modules load (a
 * start grows the heap and compiles as it goes). Only for `serve`: client commands are short.
 *
 * The young generation: V8 doubles it whenever much of it survives a scavenge, as a start's
 * modules and a thousand followers do (Node 24 goes from 1 MiB to 4 while the bundle loads; both
 * reach 32 under load), and keeps it resident, where the daemon's own live objects are a few MiB.
 * Growth by a factor of 1 is none. Given on the command line, V8 raises the factor to at least
 * 2 as it sets the heap up; set from here it holds, since V8 reads it each time it would grow.
 * Scavenges are then more frequent, but each is short: what a request allocates dies young.
 *
 * TurboFan, the optimising compiler, waits until the daemon has started and warmed up. Start-up
 * runs a few loops hot enough to be optimised (protobuf decoding its embedded descriptors, paths
 * being normalised) that never run again, and compiling them pages in the compiler's own code
 * and leaves its working memory in malloc's arenas: 4.5 MiB of an idle daemon's resident memory
 * on Node 20, for nothing. Node 22 and 24 tier such loops up with Maglev first; holding Maglev
 * back too, from here, did not lower their figure, so only TurboFan waits. A choice of
 * compilers made on the command line or in NODE_OPTIONS is left as it is.
 */
let optimiserPaused = false;

export function tuneV8ForDaemon(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
  const chosen = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
  if (/turbofan|jitless|--(no-)?opt\b/.test(chosen)) return;
  setFlagsFromString('--no-turbofan');
  optimiserPaused = true;
}

/** Once the daemon has started and warmed up: from here on, hot code is what requests run. */
export function resumeOptimiser(): void {
  if (!optimiserPaused) return;
  optimiserPaused = false;
  setFlagsFromString('--turbofan');
}
