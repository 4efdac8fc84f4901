import { readFile } from 'node:fs/promises';

/** What /proc/<pid>/stat says of a process that the daemon cares about. */
export interface ProcStat {
  pid: number;
  /** The command name the kernel keeps (at most 15 bytes), without its parentheses. */
  comm: string;
  /** One letter: R, S, D, T, Z, X, … */
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
}

/**
 * Parses /proc/<pid>/stat. The command name is parenthesised and may hold spaces and
 * parentheses itself, so the fields after it are found from the last `)`.
 */
export function parseProcStat(text: string): ProcStat | undefined {
  const open = text.indexOf(' (');
  const close = text.lastIndexOf(')');
  if (open <= 0 || close < open) return undefined;
  const [state, ppid, pgrp, session] = text.slice(close + 2).split(' ');
  const numbers = [text.slice(0, open), ppid, pgrp, session].map(Number);
  if (state === undefined || state === '' || numbers.some((n) => !Number.isInteger(n))) return undefined;
  const [pid, parent, group, sid] = numbers as [number, number, number, number];
  return { pid, comm: text.slice(open + 2, close), state, ppid: parent, pgrp: group, session: sid };
}

/** A process's stat, read without blocking the event loop; undefined once it has gone. */
export async function readProcStat(pid: number, procRoot = '/proc'): Promise<ProcStat | undefined> {
  const text = await readFile(`${procRoot}/${pid}/stat`, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : parseProcStat(text);
}
