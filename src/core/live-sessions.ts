import { readdirSync, readFileSync } from 'node:fs';

/**
 * The sessions whose leader's process group still has a live member, by session id (which is
 * the leader's pid). The daemon starts every process as such a leader, so a process that has
 * ended still has descendants to signal exactly when its pid is in this set; a pid the kernel
 * gave to an unrelated process since is not, unless that process too leads a session of its own.
 */
export function liveSessions(): Set<number> {
  const sessions = new Set<number>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return sessions;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // Gone meanwhile.
    }
    // After the parenthesised command name: state, ppid, pgrp, session, …
    const [state, , pgrp, session] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (state !== 'Z' && pgrp === session) sessions.add(Number(session));
  }
  return sessions;
}
