import { readFile, stat } from 'node:fs/promises';
import { SandboxError } from './errors.ts';

export type UserSpec = string | { name?: string; uid?: number; gid?: number };

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** From the password database, when the user is listed there. */
  name?: string;
  home?: string;
  /** The groups the process gets: gid and, for a listed user, every group naming it (initgroups). */
  groups: number[];
}

export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface Database {
  /** Identifies the files' contents: their sizes and modification times. */
  stamp: string;
  byName: Map<string, Account>;
  byUid: Map<number, Account>;
  groupNames: Map<number, string>;
  /** The groups that list each user as a member. */
  memberships: Map<string, number[]>;
}

export interface AccountFiles {
  passwd: string;
  group: string;
}

/**
 * The password and group databases. They are read asynchronously, kept, and read again only
 * when a look-up finds them changed (checked at most once a second), so that a look-up on a
 * request path costs no disk read.
 */
export class Accounts {
  private latest: Promise<Database> | undefined;
  private checkedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly files: AccountFiles = { passwd: '/etc/passwd', group: '/etc/group' },
    private readonly recheckMs = 1000,
  ) {}

  async byName(name: string): Promise<Account | undefined> {
    return (await this.database()).byName.get(name);
  }

  async byUid(uid: number): Promise<Account | undefined> {
    return (await this.database()).byUid.get(uid);
  }

  /** The user's name, or the number when the database has none. */
  async userName(uid: number): Promise<string> {
    return (await this.byUid(uid))?.name ?? String(uid);
  }

  /** The groups that list the user as a member, as initgroups(3) finds them. */
  async memberships(name: string): Promise<number[]> {
    return (await this.database()).memberships.get(name) ?? [];
  }

  /** The group's name, or the number when the database has none. */
  async groupName(gid: number): Promise<string> {
    return (await this.database()).groupNames.get(gid) ?? String(gid);
  }

  private database(): Promise<Database> {
    const now = Date.now();
    if (this.latest === undefined || now - this.checkedAt >= this.recheckMs) {
      this.checkedAt = now;
      this.latest = this.refresh(this.latest);
    }
    return this.latest;
  }

  private async refresh(previous: Promise<Database> | undefined): Promise<Database> {
    const stamp = await this.stamp();
    const old = await previous;
    if (old?.stamp === stamp) return old;
    const [passwd, group] = await Promise.all([
      readOrEmpty(this.files.passwd),
      readOrEmpty(this.files.group),
    ]);
    const byName = new Map<string, Account>();
    const byUid = new Map<number, Account>();
    for (const [name = '', , uid, gid, , home = '/'] of records(passwd, 7)) {
      const account = { name, uid: Number(uid), gid: Number(gid), home };
      byName.set(name, account);
      // The first entry for a uid names it, as getpwuid(3) does.
      if (!byUid.has(account.uid)) byUid.set(account.uid, account);
    }
    const groupNames = new Map<number, string>();
    const memberships = new Map<string, number[]>();
    for (const [name = '', , gid, members = ''] of records(group, 3)) {
      if (!groupNames.has(Number(gid))) groupNames.set(Number(gid), name);
      for (const member of members.split(',')) {
        if (member !== '') memberships.set(member, [...(memberships.get(member) ?? []), Number(gid)]);
      }
    }
    return { stamp, byName, byUid, groupNames, memberships };
  }

  private async stamp(): Promise<string> {
    const parts = await Promise.all(
      [this.files.passwd, this.files.group].map((path) =>
        stat(path).then(
          (s) => `${s.size}:${s.mtimeMs}`,
          () => 'missing',
        ),
      ),
    );
    return parts.join('/');
  }
}

function readOrEmpty(path: string): Promise<string> {
  return readFile(path, 'utf8').catch(() => '');
}

/** The colon-separated records of a database file with at least `fields` fields and numeric ids. */
function records(text: string, fields: number): string[][] {
  return text
    .split('\n')
    .map((line) => line.split(':'))
    .filter(
      (record) => record.length >= fields && isId(record[2] ?? '') && (fields < 4 || isId(record[3] ?? '')),
    );
}

const isId = (text: string) => /^\d+$/.test(text);

/** Accepts a user name, "uid", "uid:gid", or { name | uid, gid }; an unknown name is invalid_user. */
export async function resolveUser(accounts: Accounts, spec: UserSpec): Promise<ResolvedUser> {
  const wanted = typeof spec === 'string' ? parseUserString(spec) : spec;
  let account: Account | undefined;
  if (wanted.name !== undefined) {
    account = await accounts.byName(wanted.name);
    if (!account) throw new SandboxError('invalid_user', `user '${wanted.name}' does not exist`);
  } else if (wanted.uid !== undefined) {
    account = await accounts.byUid(wanted.uid);
  } else {
    throw new SandboxError('invalid_argument', 'user: give a name or a uid');
  }
  const uid = wanted.uid ?? (account as Account).uid;
  const gid = wanted.gid ?? account?.gid ?? uid;
  const supplementary = account ? await accounts.memberships(account.name) : [];
  const groups = [...new Set([gid, ...supplementary])];
  return { uid, gid, groups, ...(account ? { name: account.name, home: account.home } : {}) };
}

function parseUserString(text: string): { name?: string; uid?: number; gid?: number } {
  const [user = '', group, ...rest] = text.split(':');
  if (rest.length > 0 || user === '' || (group !== undefined && !isId(group))) {
    throw new SandboxError('invalid_argument', `user: '${text}' is not a name, "uid" or "uid:gid"`);
  }
  const gid = group === undefined ? undefined : Number(group);
  return isId(user) ? { uid: Number(user), gid } : { name: user, gid };
}
