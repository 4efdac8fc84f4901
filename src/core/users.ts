import { readFileSync } from 'node:fs';
import { SandboxError } from './errors.ts';

export type UserSpec = string | { name?: string; uid?: number; gid?: number };

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** From the password database, when the user is listed there. */
  name?: string;
  home?: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

function passwd(): PasswdEntry[] {
  let text: string;
  try {
    text = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((line) => line.split(':'))
    .filter((fields) => fields.length >= 7)
    .map(([name, , uid, gid, , home]) => ({
      name: name as string,
      uid: Number(uid),
      gid: Number(gid),
      home: home as string,
    }));
}

const isId = (text: string) => /^\d+$/.test(text);

/** Accepts a user name, "uid", "uid:gid", or { name | uid, gid }. */
export function resolveUser(spec: UserSpec): ResolvedUser {
  const wanted = typeof spec === 'string' ? parseUserString(spec) : spec;
  const entries = passwd();
  let entry: PasswdEntry | undefined;
  if (wanted.name !== undefined) {
    entry = entries.find((e) => e.name === wanted.name);
    if (!entry) throw new SandboxError('spawn_failed', `user '${wanted.name}' does not exist`);
  } else if (wanted.uid !== undefined) {
    entry = entries.find((e) => e.uid === wanted.uid);
  } else {
    throw new SandboxError('invalid_argument', 'user: give a name or a uid');
  }
  const uid = wanted.uid ?? (entry as PasswdEntry).uid;
  const gid = wanted.gid ?? entry?.gid ?? uid;
  return { uid, gid, ...(entry ? { name: entry.name, home: entry.home } : {}) };
}

function parseUserString(text: string): { name?: string; uid?: number; gid?: number } {
  const [user = '', group, ...rest] = text.split(':');
  if (rest.length > 0 || user === '' || (group !== undefined && !isId(group))) {
    throw new SandboxError('invalid_argument', `user: '${text}' is not a name, "uid" or "uid:gid"`);
  }
  const gid = group === undefined ? undefined : Number(group);
  return isId(user) ? { uid: Number(user), gid } : { name: user, gid };
}
