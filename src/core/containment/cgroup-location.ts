import { readFile } from 'node:fs/promises';
import { join, posix } from 'node:path';

/** A mounted cgroup hierarchy and where the daemon itself sits in it. */
export interface CgroupLocation {
  /** Where the hierarchy is mounted. */
  mountPoint: string;
  /** The daemon's own cgroup, as a directory. */
  ownDirectory: string;
}

interface Mount {
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

/** The cgroup v2 hierarchy, if mounted; the one at /sys/fs/cgroup first. */
export async function cgroup2Location(): Promise<CgroupLocation | undefined> {
  const mounts = (await mountTable()).filter((m) => m.fsType === 'cgroup2');
  mounts.sort(
    (a, b) => Number(b.mountPoint === '/sys/fs/cgroup') - Number(a.mountPoint === '/sys/fs/cgroup'),
  );
  const own = (await ownCgroups()).find((line) => line.hierarchy === '0');
  return locate(mounts[0], own?.path);
}

/** The cgroup v1 hierarchy that has this controller, if mounted. */
export async function cgroup1Location(controller: string): Promise<CgroupLocation | undefined> {
  const mount = (await mountTable()).find(
    (m) => m.fsType === 'cgroup' && m.superOptions.includes(controller),
  );
  const own = (await ownCgroups()).find((line) => line.controllers.includes(controller));
  return locate(mount, own?.path);
}

function locate(mount: Mount | undefined, ownPath: string | undefined): CgroupLocation | undefined {
  if (!mount || ownPath === undefined) return undefined;
  // A mount of part of the hierarchy (a container's) shows the daemon's cgroup below its root.
  const relative = posix.relative(mount.root, ownPath);
  if (relative.startsWith('..')) return undefined;
  return { mountPoint: mount.mountPoint, ownDirectory: join(mount.mountPoint, relative) };
}

async function mountTable(): Promise<Mount[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const mounts: Mount[] = [];
  for (const line of text.split('\n')) {
    // id parent major:minor root mount-point options [optional…] - type source super-options
    const [before, after] = line.split(' - ');
    if (!before || !after) continue;
    const fields = before.split(' ');
    const [fsType = '', , superOptions = ''] = after.split(' ');
    mounts.push({
      root: unescapeField(fields[3] ?? ''),
      mountPoint: unescapeField(fields[4] ?? ''),
      fsType,
      superOptions: superOptions.split(','),
    });
  }
  return mounts;
}

/** /proc/self/cgroup: `hierarchy-id:controllers:path` per line. */
async function ownCgroups(): Promise<{ hierarchy: string; controllers: string[]; path: string }[]> {
  const text = await readFile('/proc/self/cgroup', 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [hierarchy = '', controllers = '', ...path] = line.split(':');
      return { hierarchy, controllers: controllers.split(','), path: path.join(':') };
    });
}

/** mountinfo writes space, tab, newline and backslash as octal escapes. */
function unescapeField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}
